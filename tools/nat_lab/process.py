"""One way to run a helper process: the emulator, `cargo lambda watch`, the function under test.

Each runs in its own session (so that stopping it stops its children), logs to a file, and is always
stopped: SIGTERM to its process group, then SIGKILL when it has not left within the grace period.
Waiting for it to listen has a deadline and says what it waited for."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """`argv` started in a new session with its output in `log_path`; `stop()` (or leaving the
    `with` block) ends it and its children."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None, grace: float = 10.0):
        self.name = Path(argv[0]).name if len(argv) == 1 else " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:3]))
        self.log_path = log_path
        self.grace = grace
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")
        try:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        except Exception:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_for_port(self, port: int, timeout: float = 30.0) -> None:
        """Until something listens on 127.0.0.1:`port`; an error naming the process when it exits
        first or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll() is not None:
                tail = self.log_tail()
                raise RuntimeError(f"{self.name} exited with {self.returncode} before listening on {port}; {self.log_path}:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{self.name}: nothing listens on 127.0.0.1:{port} after {timeout:.0f}s; {self.log_path}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=self.grace)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
