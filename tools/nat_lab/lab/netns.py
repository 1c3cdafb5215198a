"""Network namespaces for the lab, and the only place that runs `ip` and `nft`.

Every namespace is named `nl<pid>-<role>` after the lab process that made it, so that a later run
can tell a live lab's namespaces from the leftovers of a crashed one (`sweep`). Nothing here ever
creates an interface in the machine's own namespace: veth pairs are created inside a lab namespace
with their peer placed directly in another (`ip -n A link add X type veth peer name Y netns B`), so
the lab has no link to the machine's network at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

PREFIX = f"nl{os.getpid()}-"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT = 20.0

_libc = ctypes.CDLL(None, use_errno=True)
_labs = itertools.count(1)


class LabError(RuntimeError):
    pass


def unavailable() -> str | None:
    """Why the lab cannot run on this machine, or None when it can: root, `ip`, `nft`, `unshare`,
    `nsenter`."""
    if os.geteuid() != 0:
        return "the data-plane lab needs root (network namespaces, nftables, mount namespaces)"
    missing = [tool for tool in ("ip", "nft", "unshare", "nsenter", "curl") if shutil.which(tool) is None]
    if missing:
        return f"the data-plane lab needs {', '.join(missing)} (scripts/lab-deps.sh installs them)"
    return None


def run(*cmd: str, input: str | None = None, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("ip", "-n", ns, *args, check=check)


def ip_batch(ns: str, commands: list[str]) -> None:
    """Several `ip` commands in one process (`ip -batch`): the fabric's route changes land together."""
    if commands:
        run("ip", "-n", ns, "-force", "-batch", "-", input="\n".join(commands) + "\n")


def nft(ns: str, ruleset: str) -> None:
    """Load `ruleset` into `ns` in one transaction (all or nothing)."""
    run("ip", "netns", "exec", ns, "nft", "-f", "-", input=ruleset)


def sysctl(ns: str, **settings: str | int) -> None:
    args = [f"{key.replace('__', '.')}={value}" for key, value in settings.items()]
    run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", *args)


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def pids(name: str) -> list[int]:
    proc = run("ip", "netns", "pids", name, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def kill_all(name: str, grace: float = 1.0) -> None:
    """Every process in the namespace: SIGTERM, then SIGKILL after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        found = pids(name)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pids(name):
            time.sleep(0.05)


def delete(name: str) -> None:
    if not exists(name):
        return
    kill_all(name)
    run("ip", "netns", "del", name, check=False)


def add(name: str) -> str:
    run("ip", "netns", "add", name)
    ip(name, "link", "set", "lo", "up")
    return name


def veth(ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
    """A veth pair between two lab namespaces; neither end ever exists in the machine's namespace."""
    ip(ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lab_namespaces() -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if re.match(r"nl\d+-", p.name))


def sweep() -> list[str]:
    """Remove the namespaces of lab runs whose process is gone (a crash, a SIGKILL): returns their
    names. Namespaces of a lab still running (another test, `make lab`) are left alone."""
    removed = []
    for name in lab_namespaces():
        owner = int(re.match(r"nl(\d+)-", name).group(1))
        if owner != os.getpid() and not _alive(owner):
            delete(name)
            removed.append(name)
    return removed


class Registry:
    """The namespaces of one lab, named `nl<pid>-<n>-<role>` (two labs of one process never share
    one), removed by `close()` in reverse order of creation (the lab calls it from `finally` and
    from `atexit`)."""

    def __init__(self) -> None:
        self.prefix = f"{PREFIX}{next(_labs)}-"
        self._names: list[str] = []
        self._lock = threading.Lock()

    def add(self, role: str) -> str:
        name = self.prefix + role
        if exists(name):
            delete(name)
        add(name)
        with self._lock:
            self._names.append(name)
        return name

    def remove(self, name: str) -> None:
        delete(name)
        with self._lock:
            if name in self._names:
                self._names.remove(name)

    def close(self) -> None:
        with self._lock:
            names, self._names = list(reversed(self._names)), []
        for name in names:
            delete(name)


def enter(name: str) -> None:
    """Move the calling thread (only it) into the namespace: every socket it creates from now on
    lives there. For threads that belong to one namespace for their whole life."""
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def thread_in(name: str, target: Callable[[], None], label: str) -> threading.Thread:
    """A daemon thread that runs `target` inside the namespace."""

    def body() -> None:
        enter(name)
        target()

    thread = threading.Thread(target=body, name=label, daemon=True)
    thread.start()
    return thread


def call_in(name: str, fn: Callable[[], object]) -> object:
    """`fn()` run by a short-lived thread inside the namespace (e.g. to create a listening socket
    there; a socket keeps its namespace for life)."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            enter(name)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")
