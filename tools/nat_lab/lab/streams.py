"""Long-lived connections through the NATs: do established connections survive what a scenario
does to a zone's NAT?

Per zone, the private host holds `count` connections of each kind to a stream service on "the
internet", each exchanging a line every 100 ms for the whole run:
- **client-led**: the private host speaks first, every interval; the service answers;
- **server-led**: the service speaks first, every interval; the private host answers.
After a NAT is replaced the two differ: a client-led connection's next packet reaches the new NAT
from inside, which can pick the flow up mid-stream; a server-led connection's next packet reaches
the new NAT from the internet, addressed to a flow it holds no state for.

A connection survived when it never failed (no reset, no close) and a line still went both ways in
the run's last second: the service answered on the same socket, so it saw the same address and port
throughout; and the address it saw at the start was the zone's EIP. Sockets are made inside their
namespaces by threads of the lab process, as the probes' are (nat_lab.lab.traffic).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass

from . import netns
from .fabric import ECHO_ADDRESS

STREAM_PORT = 7000
INTERVAL = 0.1  # a line every 100 ms, each way
LAST = 1.0  # a survivor exchanged a line within this many seconds of the end
KINDS = ("client_led", "server_led")


@dataclass
class Stream:
    zone: str
    kind: str
    seq: int
    opened: float = 0.0
    last: float = 0.0  # the last line the private host received (an answer, or the service's own)
    lines: int = 0
    error: str = ""

    @property
    def key(self) -> str:
        return f"{self.zone} {self.kind} {self.seq}"


class StreamService:
    """On "the internet": accepts the private hosts' connections, records the address and port each
    came from, answers client-led lines and speaks first on server-led ones."""

    def __init__(self, ns: str, address: str = ECHO_ADDRESS, port: int = STREAM_PORT):
        self.peers: dict[str, tuple[str, int]] = {}  # stream key -> (address, port) it came from
        self._stop = threading.Event()
        self._sock: socket.socket = netns.call_in(ns, lambda: socket.create_server((address, port), backlog=512))  # type: ignore[assignment]
        self._sock.setblocking(False)
        self._thread = threading.Thread(target=self._serve, name="streams", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ, None)
        # socket -> [key, kind, buffer, next tick]
        open_: dict[socket.socket, list] = {}

        def drop(sock: socket.socket) -> None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(sock)
            open_.pop(sock, None)
            sock.close()

        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.02):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        conn, peer = self._sock.accept()
                        conn.setblocking(False)
                        open_[conn] = ["", "", b"", 0.0, peer]
                        selector.register(conn, selectors.EVENT_READ, conn)
                    continue
                sock = key.data
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    drop(sock)
                    continue
                if not chunk:
                    drop(sock)
                    continue
                state = open_[sock]
                state[2] += chunk
                while b"\n" in state[2]:
                    line, state[2] = state[2].split(b"\n", 1)
                    words = line.decode("latin-1").split()
                    if words[:1] == ["HELLO"] and len(words) == 4:
                        state[0], state[1] = " ".join(words[1:]), words[2]
                        self.peers[state[0]] = state[4]
                        state[3] = time.monotonic() + INTERVAL
                    elif words[:1] == ["PING"]:
                        with contextlib.suppress(OSError):
                            sock.send(b"PONG " + line[5:] + b"\n")
            now = time.monotonic()
            for sock, state in list(open_.items()):
                if state[1] == "server_led" and now >= state[3]:
                    state[3] = now + INTERVAL
                    try:
                        sock.send(b"TICK\n")
                    except BlockingIOError:
                        pass  # the path is stalled: the kernel's buffer is full
                    except OSError:
                        drop(sock)
        for sock in list(open_):
            drop(sock)
        selector.close()


class StreamClients:
    """One zone's private host: `count` connections of each kind, opened at once, kept until stop()."""

    def __init__(self, ns: str, zone: str, clock, count: int, address: str = ECHO_ADDRESS, port: int = STREAM_PORT):
        self.zone = zone
        self.clock = clock
        self.streams = [Stream(zone, kind, seq) for kind in KINDS for seq in range(count)]
        self._target = (address, port)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = netns.thread_in(ns, self._run, f"streams-{zone}")

    def stop(self) -> list[Stream]:
        self._stop.set()
        self._thread.join(timeout=3)
        with self._lock:
            return [Stream(**vars(s)) for s in self.streams]

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        buffers: dict[socket.socket, bytes] = {}
        by_sock: dict[socket.socket, Stream] = {}

        def fail(sock: socket.socket, error: str) -> None:
            stream = by_sock.pop(sock)
            with self._lock:
                stream.error = stream.error or error
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(sock)
            sock.close()

        for stream in self.streams:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(2.0)
            try:
                sock.connect(self._target)
                sock.sendall(f"HELLO {stream.key}\n".encode())
            except OSError as exc:
                stream.error = f"open: {type(exc).__name__}"
                sock.close()
                continue
            sock.setblocking(False)
            stream.opened = stream.last = self.clock()
            by_sock[sock] = stream
            buffers[sock] = b""
            selector.register(sock, selectors.EVENT_READ, sock)
        next_ping = time.monotonic()
        seq = 0
        while not self._stop.is_set() and by_sock:
            if time.monotonic() >= next_ping:
                next_ping += INTERVAL
                seq += 1
                for sock, stream in list(by_sock.items()):
                    if stream.kind != "client_led":
                        continue
                    try:
                        sock.send(f"PING {seq}\n".encode())
                    except BlockingIOError:
                        pass  # stalled: the kernel keeps retransmitting what it holds
                    except OSError as exc:
                        fail(sock, type(exc).__name__)
            for key, _ in selector.select(timeout=max(0.0, min(0.02, next_ping - time.monotonic()))):
                sock = key.data
                if sock not in by_sock:
                    continue
                try:
                    chunk = sock.recv(4096)
                except OSError as exc:
                    fail(sock, type(exc).__name__)
                    continue
                if not chunk:
                    fail(sock, "closed")
                    continue
                buffers[sock] += chunk
                stream = by_sock[sock]
                while b"\n" in buffers[sock]:
                    line, buffers[sock] = buffers[sock].split(b"\n", 1)
                    if stream.kind == "server_led" and line == b"TICK":
                        try:
                            sock.send(b"TOCK\n")
                        except BlockingIOError:
                            continue
                        except OSError as exc:
                            fail(sock, type(exc).__name__)
                            break
                    with self._lock:
                        stream.last = self.clock()
                        stream.lines += 1
        for sock in list(by_sock):
            sock.close()
        selector.close()


def survivors(streams: list[Stream], service: StreamService, eip: str, ended: float) -> dict[str, list[int]]:
    """Per kind, [survived, total]: no failure, a line within the last second before `ended`, and
    the service saw the connection come from the zone's EIP."""
    found = {kind: [0, 0] for kind in KINDS}
    for stream in streams:
        found[stream.kind][1] += 1
        peer = service.peers.get(stream.key)
        if not stream.error and stream.last >= ended - LAST and peer is not None and peer[0] == eip:
            found[stream.kind][0] += 1
    return found
