"""`make demo` is part of the suite: a smoke run that fails when any story ends wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_every_story_ends_right():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "demo.py")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "every story ended right" in proc.stdout
    for story in ("Story 1", "Story 2", "Story 3", "Story 4"):
        assert story in proc.stdout
