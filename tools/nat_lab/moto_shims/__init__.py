"""What the moto server needs to stand in for AWS here, patched into the server process itself.

`nat_lab.moto.Moto` starts every moto server with `site/` on its PYTHONPATH: Python imports
`site/sitecustomize.py` at start-up, which calls `install()` below, so the patches are in place
before the server answers its first request. By hand (docs/local-development.md):

    PYTHONPATH=tools/nat_lab/moto_shims/site .venv/bin/python -m moto.server -p 5000

- `fidelity`: fields moto drops or misfiles (Lambda's DeadLetterConfig and LoggingConfig, launch
  template tags), and Lambda's SigV4 check under IAM enforcement.
- `lifecycle`: Auto Scaling lifecycle actions, which moto does not implement:
  CompleteLifecycleAction and RecordLifecycleActionHeartbeat answered and recorded, and, with
  NAT_LAB_MOTO_LIFECYCLE=hooks (`Moto(lifecycle="hooks")`), lifecycle hooks honoured
  (Pending:Wait, Terminating:Wait, CONTINUE, ABANDON, heartbeat timeouts). See its docstring.
"""

from pathlib import Path

SITE = Path(__file__).resolve().parent / "site"  # the directory to put on the moto server's PYTHONPATH


def install() -> None:
    from . import fidelity, lifecycle

    fidelity.install()
    lifecycle.install()
