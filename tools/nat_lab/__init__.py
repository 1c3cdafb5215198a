"""nat_lab: the local laboratory for nat-asg-hook.

Starts the AWS emulator (moto server) on a free loopback port, seeds a NAT world through the AWS
SDK, builds events, and runs the real binary (`replay`, `verify`, `reconcile`, or the Lambda path
under `cargo lambda watch`). Used by the tests, the demo (`python -m nat_lab.demo`), the benchmarks
(`python -m nat_lab.bench`) and `make watch` (`python -m nat_lab.watch`). Installed editable by
`make venv` (pyproject.toml at the repository root).
"""

from pathlib import Path

# The repository this package is installed from (editable: the modules stay in tools/nat_lab), for
# the files it reads (events/, terraform/) and the build output it runs (target/).
REPO = Path(__file__).resolve().parents[2]
