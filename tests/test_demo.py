"""`make demo` is part of the suite: a smoke run that fails when any story ends wrong, and when it
leaves a process behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STARTED_BY_THE_DEMO = ("moto.server", "cargo-lambda", "nat-asg-hook", "terraform")


def processes() -> set[tuple[int, str]]:
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(name in cmdline for name in STARTED_BY_THE_DEMO) and "pytest" not in cmdline:
            found.add((int(proc.name), cmdline.strip()))
    return found


def test_demo_every_story_ends_right_and_nothing_is_left_running():
    before = processes()
    proc = subprocess.run([sys.executable, "-m", "nat_lab.demo"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "every story ended right" in proc.stdout
    for story in ("Story 1", "Story 2", "Story 3", "Story 4", "Destroy complete"):
        assert story in proc.stdout
    left = processes() - before
    assert not left, f"the demo left processes behind: {left}"
