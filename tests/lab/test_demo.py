"""`make demo` is part of the suite: a smoke run that fails when any story ends wrong, and when it
leaves a process or (as root, where its live-egress part runs in the data-plane lab) a network
namespace behind.

What the demo started is told by a marker in its environment, which every process it starts
inherits (moto, terraform and its providers, cargo lambda, the function): on a machine shared with
other runs, their emulators and providers are not the demo's."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from nat_lab.lab import netns

MARKER = "NAT_LAB_DEMO_RUN"


def carrying(marker: bytes) -> set[tuple[int, str]]:
    """The processes whose environment holds `marker`."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
        found.add((int(proc.name), cmdline.strip()))
    return found


def test_demo_every_story_ends_right_and_nothing_is_left_running():
    run = str(uuid.uuid4())
    env = {**os.environ, MARKER: run}
    demo = subprocess.Popen([sys.executable, "-m", "nat_lab.demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = demo.communicate(timeout=900)
    finally:
        demo.kill()
    assert demo.returncode == 0, stdout[-4000:] + stderr[-4000:]
    assert "every story ended right" in stdout
    for story in ("Story 1", "Story 2", "Story 3", "Story 4", "Story 5", "Story 6", "Destroy complete"):
        assert story in stdout
    left = carrying(f"{MARKER}={run}".encode())
    assert not left, f"the demo left processes behind: {left}"
    if netns.unavailable() is None:  # the live part ran, and every check in it held (exit 0 above)
        assert "Live egress" in stdout and "live egress skipped" not in stdout
        assert "✘" not in stdout
        namespaces = [n for n in netns.lab_namespaces() if n.startswith(f"nl{demo.pid}-")]
        assert not namespaces, f"the demo left network namespaces behind: {namespaces}"
    else:
        assert "live egress skipped" in stdout
