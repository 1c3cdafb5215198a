"""`make watch` (nat_lab.watch) leaves nothing behind: stopped by SIGTERM, SIGHUP (a closed terminal) or
Ctrl-C, it stops cargo lambda watch and the function with their whole process groups, and the port is
free again; started on a port that is already taken, it refuses, naming the process that holds it,
instead of claiming to serve while a stale process answers.

The process tree is real: watch.py started as `make watch` starts it, signalled from outside, its
descendants read from /proc. cargo lambda watch is the real one from .venv when it is installed
(`make venv`), and the function the real binary when it is built (HOOK_BIN); otherwise stand-ins
take their place through the same seams (CARGO_LAMBDA, HOOK_BIN): a stand-in cargo-lambda that
listens on the port and starts a child of its own (so a stop that spares grandchildren fails), and a
stand-in function that sleeps. The test id says which ran."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nat_lab import hook
from nat_lab.process import free_port

REPO = Path(__file__).resolve().parents[2]

STAND_IN_CARGO_LAMBDA = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    # Stand-in for `cargo lambda watch -A HOST -P PORT`: listens, and keeps a child of its own.
    import socket, subprocess, sys, time
    args = sys.argv[1:]
    port = int(args[args.index("-P") + 1])
    child = subprocess.Popen(["sleep", "3600"])
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
    while True:
        time.sleep(1)
    """
)


def real_tools() -> bool:
    try:
        hook.cargo_lambda()
        hook.hook_bin()
    except FileNotFoundError:
        return False
    return True


@pytest.fixture(params=["real" if real_tools() else "stand-in"])
def tools(request, tmp_path) -> dict[str, str]:
    """The environment for watch.py: the real cargo lambda and function, or the stand-ins."""
    env = dict(os.environ, AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", CARGO_TARGET_DIR=str(tmp_path / "target"))
    if request.param == "stand-in":
        cargo_lambda = tmp_path / "cargo-lambda"
        cargo_lambda.write_text(STAND_IN_CARGO_LAMBDA)
        cargo_lambda.chmod(0o755)
        function = tmp_path / "function"
        function.write_text("#!/bin/sh\nexec sleep 3600\n")
        function.chmod(0o755)
        env.update(CARGO_LAMBDA=str(cargo_lambda), HOOK_BIN=str(function))
    else:
        env.update(CARGO_LAMBDA=hook.cargo_lambda(), HOOK_BIN=str(hook.hook_bin()))
    return env


def config(tmp_path: Path) -> Path:
    path = tmp_path / "hook.json"
    group = {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]}
    path.write_text(json.dumps({"groups": {"nat-a": group}}))
    return path


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(pid))
    return tree


def descendants(pid: int) -> list[int]:
    tree, out, todo = children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    """Running (a zombie, already dead and waiting to be reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_watch(env: dict, config_path: Path, port: int) -> subprocess.Popen:
    # Its own session, as a shell's job: the signal reaches watch.py alone, as `kill PID` would.
    return subprocess.Popen(
        [sys.executable, "-m", "nat_lab.watch", str(config_path), "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_served(watch: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    line = ""
    os.set_blocking(watch.stdout.fileno(), False)
    while time.monotonic() < deadline:
        chunk = watch.stdout.readline()
        line += chunk or ""
        if "served on" in line:
            return line
        if watch.poll() is not None:
            raise AssertionError(f"watch exited {watch.returncode}: {line}{watch.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"watch did not serve within {timeout}s: {line}")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_stops_cargo_lambda_watch_and_the_function_and_frees_the_port(tools, tmp_path, stop):
    port = free_port()
    watch = start_watch(tools, config(tmp_path), port)
    started: list[int] = []
    try:
        assert f"served on 127.0.0.1:{port}" in wait_served(watch)
        started = descendants(watch.pid)
        assert len(started) >= 2, f"cargo lambda watch and the function: {started}"
        assert listening(port)

        os.kill(watch.pid, stop)
        assert watch.wait(timeout=30) == 0, watch.stderr.read()
        assert f"stopped ({stop.name})" in watch.stderr.read()
        survivors = [pid for pid in started if alive(pid)]
        assert survivors == [], f"left running after {stop.name}: {survivors}"
        assert not listening(port), f"port {port} still answers after {stop.name}"
    finally:
        # Whatever the outcome, this test leaves nothing running: the processes it saw start.
        if watch.poll() is None:
            os.killpg(watch.pid, signal.SIGKILL)
        for pid in [*started, *descendants(watch.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_taken_port_is_refused_naming_the_process_that_holds_it(tools, tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        watch = start_watch(tools, config(tmp_path), port)
        out, err = watch.communicate(timeout=30)
        assert watch.returncode == 1, err
        assert "served on" not in out
        assert f"port {port} is already taken by PID {os.getpid()} (" in err, err
        assert f"kill {os.getpid()}" in err and "--port" in err
        assert not (Path(tools["CARGO_TARGET_DIR"]) / "watch").exists(), "nothing was started"


def test_a_missing_configuration_is_one_line_not_a_traceback(tools, tmp_path):
    watch = start_watch(tools, tmp_path / "nope.json", free_port())
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 2
    assert "Traceback" not in err and err.startswith("watch: cannot read the configuration"), err
