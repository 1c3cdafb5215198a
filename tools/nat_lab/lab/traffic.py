"""The traffic: an echo service on "the internet" that answers with (and records) the source address
it saw, and per zone a private host that opens new connections to it at a fixed rate.

Both run as threads of the lab process with their sockets created inside their namespace (a socket
keeps the namespace it was created in), so no process runs in the namespaces for them.

The echo speaks just enough HTTP for `curl` (the probes' echo, and the NATs' check endpoints, which
are echoes of their own at other addresses): the answer to any GET is the caller's address and a
newline, as https://checkip.amazonaws.com answers. A probe is one new TCP connection and one GET; it fails when it has no answer within its
timeout (a dropped SYN is retransmitted only after a second: a probe started during an outage fails).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import socketserver
import threading
import time
from dataclasses import dataclass

from . import netns
from .fabric import ECHO_ADDRESS

ECHO_PORT = 80


@dataclass
class Seen:
    at: float
    source: str
    path: str


class Echo:
    def __init__(self, ns: str, clock, address: str = ECHO_ADDRESS):
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        echo = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 5

            def handle(self) -> None:
                try:
                    request = self.rfile.readline(4096).decode("latin-1").split()
                    while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                        pass
                except OSError:
                    return
                source = self.client_address[0]
                with echo._lock:
                    echo.seen.append(Seen(clock(), source, request[1] if len(request) > 1 else ""))
                body = f"{source}\n".encode()
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 512

        self.server: Server = netns.call_in(ns, lambda: Server((address, ECHO_PORT), Handler))  # type: ignore[assignment]
        self.url = f"http://{address}/"
        self._thread = threading.Thread(target=self.server.serve_forever, name="echo", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Probe:
    zone: str
    seq: int
    start: float
    end: float = 0.0
    ok: bool = False
    source: str = ""
    error: str = ""


@dataclass
class _Open:
    probe: Probe
    sock: socket.socket
    sent: bool = False
    data: bytes = b""


class Prober:
    """One zone's private host: a new connection every 1/rate seconds, each bounded by `timeout`;
    runs until `stop()`, at most `max_seconds` and `max_probes`."""

    def __init__(self, ns: str, zone: str, clock, rate: float = 20.0, timeout: float = 1.0, max_seconds: float = 900.0):
        self.ns = ns
        self.zone = zone
        self.clock = clock
        self.rate = rate
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.max_probes = int(rate * max_seconds) + 1
        self.probes: list[Probe] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = netns.thread_in(ns, self._run, f"probe-{zone}")

    def halt(self) -> None:
        """No new probe from now on (the open ones still finish)."""
        self._stop.set()

    def stop(self) -> None:
        self.halt()
        self._thread.join(timeout=self.timeout + 2)

    def snapshot(self) -> list[Probe]:
        with self._lock:
            return list(self.probes)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        opened: dict[int, _Open] = {}
        interval = 1.0 / self.rate
        started = time.monotonic()
        next_at = started
        seq = 0

        def finish(entry: _Open, ok: bool, error: str = "") -> None:
            entry.probe.end = self.clock()
            entry.probe.ok = ok
            entry.probe.error = error
            if ok:
                text = entry.data.split(b"\r\n\r\n", 1)[-1].decode("latin-1").strip()
                entry.probe.source = text
                entry.probe.ok = bool(text)
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(entry.sock)
            entry.sock.close()
            opened.pop(id(entry), None)

        while not self._stop.is_set() or opened:
            now = time.monotonic()
            sending = not self._stop.is_set() and now - started < self.max_seconds and seq < self.max_probes
            if sending and now >= next_at:
                next_at += interval
                if next_at < now:  # never a burst to catch up: the rate is the bound
                    next_at = now + interval
                seq += 1
                probe = Probe(self.zone, seq, self.clock())
                with self._lock:
                    self.probes.append(probe)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                code = sock.connect_ex((ECHO_ADDRESS, ECHO_PORT))
                entry = _Open(probe, sock)
                opened[id(entry)] = entry
                if code not in (0, errno.EINPROGRESS):
                    finish(entry, False, errno.errorcode.get(code, str(code)))
                else:
                    selector.register(sock, selectors.EVENT_WRITE, entry)
            if not sending and not opened:
                break
            wait = max(0.0, min(next_at - time.monotonic(), 0.02)) if sending else 0.02
            for key, _ in selector.select(timeout=wait):
                entry = key.data
                if not entry.sent:
                    code = entry.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        finish(entry, False, errno.errorcode.get(code, str(code)))
                        continue
                    try:
                        entry.sock.send(f"GET /{self.zone}/{entry.probe.seq} HTTP/1.1\r\nHost: echo\r\n\r\n".encode())
                    except OSError as exc:
                        finish(entry, False, type(exc).__name__)
                        continue
                    entry.sent = True
                    selector.modify(entry.sock, selectors.EVENT_READ, entry)
                    continue
                try:
                    chunk = entry.sock.recv(4096)
                except OSError as exc:
                    finish(entry, False, type(exc).__name__)
                    continue
                if chunk:
                    entry.data += chunk
                else:
                    finish(entry, entry.data.startswith(b"HTTP/1.1 200"), "" if entry.data else "closed")
            deadline = self.clock() - self.timeout
            for entry in [e for e in opened.values() if e.probe.start < deadline]:
                finish(entry, False, "timeout")
        selector.close()
