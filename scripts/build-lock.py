#!/usr/bin/env python3
"""Writes requirements-build.txt: the release build's tools (cargo-lambda, ziglang) with exactly the
pins and hashes requirements.txt holds for them. `make lock` runs it after every lock, so the two
cannot drift. Both tools are single binary wheels without dependencies."""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("cargo-lambda", "ziglang")
HEADER = """\
# The release build's tools, and nothing else: cargo-lambda (cargo lambda build --output-format zip)
# and zig (the arm64 linker it drives). Written by `make lock` (scripts/build-lock.py) from
# requirements.txt's pins and hashes for them; .github/workflows/release.yml installs this file
# with `pip install --require-hashes --no-deps --only-binary :all:`, so the job that builds the
# released zip runs no other package from PyPI.
"""


def main() -> int:
    lock = (REPO / "requirements.txt").read_text()
    blocks = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock):
        name = re.match(r"([A-Za-z0-9_.\-]+)==", block)
        if name and name.group(1).lower() in TOOLS:
            lines = [line for line in block.rstrip().splitlines() if not line.strip().startswith("#")]
            blocks[name.group(1).lower()] = "\n".join(lines).rstrip(" \\")
    missing = [tool for tool in TOOLS if tool not in blocks]
    if missing:
        print(f"requirements.txt locks no {', '.join(missing)}", file=sys.stderr)
        return 1
    (REPO / "requirements-build.txt").write_text(HEADER + "\n".join(blocks[tool] for tool in TOOLS) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
