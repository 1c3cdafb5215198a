"""`make watch`: the function served locally the way Lambda runs it, until Ctrl-C, SIGTERM or SIGHUP.

`cargo lambda watch --only-lambda-apis` on 127.0.0.1:9000 (where `make invoke` and `cargo lambda
invoke` look by default) emulates the Lambda control plane; the function is the binary `make bin`
built, so the AWS SDK is not compiled a second time with other features (plain `cargo lambda watch`
would). The function reads NAT_ASG_HOOK_CONFIG from the file given and reaches AWS as this shell
does (set AWS_ENDPOINT_URL for an emulator).

It refuses to start when the port is already taken (a `make watch` left running elsewhere would
answer with its own, older configuration), naming the process that holds it. Stopped by Ctrl-C,
SIGTERM or SIGHUP (a closed terminal), it stops cargo lambda watch and the function, each with its
whole process group, before it exits: nothing is left holding the port."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
from pathlib import Path

from . import hook

PORT = 9000  # cargo lambda's default


class Stopped(BaseException):
    """A stop signal, raised where the program is so that every `with` block stops what it started
    (a BaseException, like KeyboardInterrupt: no `except Exception` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum, _frame) -> None:
    # One stop is enough: a second signal must not interrupt the stopping itself.
    for other in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)
    raise Stopped(signum)


def port_holder(port: int) -> str | None:
    """Who listens on TCP `port` (any address), as "PID 1234 (command line)", from /proc; None when
    it cannot tell (another user's process, no /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                return f"PID {pid} ({cmdline[:120]})"
        except OSError:
            continue
    return None


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens where cargo lambda watch would (a socket in TIME_WAIT does
    not count: SO_REUSEADDR, as servers bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path, help="the hook's configuration (NAT_ASG_HOOK_CONFIG), e.g. terraform output -raw hook_config")
    parser.add_argument("--port", type=int, default=PORT, help=f"where cargo lambda watch listens (default {PORT}: make invoke)")
    args = parser.parse_args(argv)
    try:
        config = args.config.read_text()
    except OSError as e:
        hint = "make watch CONFIG=hook.json (terraform output -raw hook_config > hook.json)"
        print(f"watch: cannot read the configuration {args.config}: {e.strerror}; {hint}", file=sys.stderr)
        return 2
    if port_taken(args.port):
        holder = port_holder(args.port)
        who = f"by {holder}" if holder else f"by another process (ss -ltnp | grep :{args.port} names it)"
        stop = f"stop it (kill {holder.split()[1]})" if holder else "stop it"
        print(f"watch: port {args.port} is already taken {who}: {stop}, or serve on another port (--port); not starting", file=sys.stderr)
        return 1

    # From here on a stop signal unwinds through the `with` block, which stops both children.
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _raise_stopped)
    logs = hook.cargo_target() / "watch"
    try:
        with hook.LambdaWatch(dict(os.environ), config, logs, port=args.port) as served:
            print(f"nat-asg-hook served on 127.0.0.1:{args.port}; its logs: {served.function_log_path}; Ctrl-C stops it", flush=True)
            served.function.wait()
    except Stopped as stop:
        print(f"stopped ({stop}): cargo lambda watch and the function are stopped", file=sys.stderr, flush=True)
        return 0
    print(f"the function exited ({served.function.returncode}); see {served.function_log_path}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
