"""A recording, fault-injecting HTTP proxy between the hook and the AWS emulator.

The hook reaches AWS through `AWS_ENDPOINT_URL`; point that at `Proxy.endpoint` (or use
`Proxy.env(moto.env())`) and every request passes through here, where the proxy

- adds a fixed latency to every request (`latency`, seconds), the stand-in for the round trip to a
  real AWS endpoint, so that the critical path shows up in wall time;
- records each request: service, action (the `Action=` of the EC2 / Auto Scaling query protocol),
  SDK attempt number, start and end (monotonic seconds), status, and any fault it injected;
- injects faults at set rates (`Faults`), each answered the way AWS answers it.

Everything else is the emulator's: Auto Scaling's lifecycle calls, which moto lacks, are answered by
the moto server itself (`nat_lab.moto_shims.lifecycle`), so they behave the same with or without
the proxy in between.

When a fault happens relative to forwarding decides what the emulator sees:

| fault      | phase   | what the client sees                                                        |
|------------|---------|-----------------------------------------------------------------------------|
| `throttle` | before  | EC2: HTTP 503 `RequestLimitExceeded`; Auto Scaling: HTTP 400 `Throttling`   |
| `error500` | after   | HTTP 500 `InternalError` (EC2) / `InternalFailure` (Auto Scaling)           |
| `reset`    | either  | the connection closed with a TCP RST and no answer; half before, half after |
| `spike`    | before  | the normal answer, `spike_seconds` late                                     |

A throttled request never reaches the service (AWS throttles at its front door). An HTTP 500 and
half of the resets come *after* the request was forwarded: the write happened, but the client
cannot know it. That is the case that matters for "never a false success": the hook must neither
report success for a write that did not happen nor be confused by a retry of one that did.

`rounds(records)` groups the requests by the longest chain of requests before them, each starting
after the previous one ended; its length is the number of round trips on the critical path.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MUTATING = frozenset(
    {
        "AssociateAddress",
        "DisassociateAddress",
        "ModifyNetworkInterfaceAttribute",
        "ModifyInstanceAttribute",
        "ReplaceRoute",
        "CreateRoute",
        "DeleteRoute",
        "CompleteLifecycleAction",
    }
)
FAULT_KINDS = ("throttle", "error500", "reset", "spike")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te", "upgrade"}
GATE_TIMEOUT = 10.0
AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


@dataclass
class Faults:
    """Per-request probabilities of each fault (their sum is the fault rate), and which actions
    they may hit (None: every action)."""

    throttle: float = 0.0
    error500: float = 0.0
    reset: float = 0.0
    spike: float = 0.0
    spike_seconds: float = 0.8
    actions: frozenset[str] | None = None

    @classmethod
    def uniform(cls, rate: float, **kwargs) -> Faults:
        """`rate` split evenly over the four kinds."""
        share = rate / len(FAULT_KINDS)
        return cls(**{kind: share for kind in FAULT_KINDS}, **kwargs)

    @classmethod
    def always(cls, kind: str, actions: set[str] | frozenset[str] | None = None) -> Faults:
        """Every request (to `actions`) gets `kind`: an outage."""
        return cls(**{kind: 1.0}, actions=frozenset(actions) if actions is not None else None)


@dataclass
class Record:
    service: str
    action: str
    attempt: int
    start: float
    end: float = 0.0
    status: int = 0  # 0: no answer (connection reset)
    fault: str | None = None
    phase: str | None = None  # "before" or "after" forwarding, for a fault
    params: dict[str, str] = field(default_factory=dict)  # the query parameters (first values)

    @property
    def mutating(self) -> bool:
        return self.action in MUTATING

    @property
    def seconds(self) -> float:
        return self.end - self.start


def rounds(records: list[Record]) -> list[list[Record]]:
    """The requests by round: a request's round is the length of the longest chain of requests
    ending with it, each starting after the previous one ended. As many rounds as dependent round
    trips."""
    ordered = sorted(records, key=lambda r: r.start)
    depth: list[int] = []
    for i, r in enumerate(ordered):
        depth.append(1 + max((depth[j] for j in range(i) if ordered[j].end <= r.start), default=0))
    out: list[list[Record]] = [[] for _ in range(max(depth, default=0))]
    for d, r in zip(depth, ordered, strict=True):
        out[d - 1].append(r)
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 50+ concurrent connections in one act round: no SYN backlog drops
    proxy: Proxy

    def handle_error(self, request, client_address) -> None:
        # A client that goes away (a hook process exiting, an SDK attempt timing out) is normal here.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's connection pool works as against AWS
    # Headers and body leave in two writes: with Nagle's algorithm the body would wait for the
    # client's delayed ACK (40 ms on Linux), a stall that AWS does not have.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self.server.proxy._handle(self)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()


class Proxy:
    """The proxy, serving on a free loopback port from a background thread until `stop()`."""

    def __init__(self, upstream: str, latency: float = 0.0, faults: Faults | None = None, seed: int = 0):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.latency = latency
        self.faults = faults or Faults()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.records: list[Record] = []
        self._gate: tuple[int, threading.Event, frozenset[str] | None] | None = None
        self._gated = 0
        self.gate_timeouts = 0  # held requests released by the timeout, not by the last arrival
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    # --- control -----------------------------------------------------------------------------------

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` (e.g. `moto.env()`) with the AWS endpoint pointed at this proxy."""
        return {**base, "AWS_ENDPOINT_URL": self.endpoint}

    def set(self, latency: float | None = None, faults: Faults | None = None) -> None:
        with self._lock:
            if latency is not None:
                self.latency = latency
            if faults is not None:
                self.faults = faults

    def gate(self, n: int, actions: set[str] | frozenset[str] | None = None) -> None:
        """Hold the next `n` requests (to `actions`, if given) until all `n` have arrived, then let
        them go together: the observe rounds of concurrent invocations then see the same state, the
        worst case for a race. A held request waits at most `GATE_TIMEOUT` seconds."""
        with self._lock:
            self._gate, self._gated = (n, threading.Event(), frozenset(actions) if actions else None), 0

    def held(self) -> int:
        """How many requests the current gate holds (0 once it has opened)."""
        with self._lock:
            return self._gated if self._gate is not None else 0

    def mark(self) -> int:
        """An index into `records`: `since(mark)` gives the requests after it."""
        with self._lock:
            return len(self.records)

    def since(self, mark: int = 0) -> list[Record]:
        with self._lock:
            return list(self.records[mark:])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- one request -------------------------------------------------------------------------------

    def _draw(self, action: str) -> tuple[str | None, str | None, float, float]:
        """(fault, phase, latency, spike seconds) for one request."""
        with self._lock:
            faults, latency = self.faults, self.latency
            roll = self._rng.random()
            coin = self._rng.random()
        if faults.actions is not None and action not in faults.actions:
            return None, None, latency, 0.0
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(faults, kind)
            if roll < edge:
                phase = {"throttle": "before", "error500": "after", "spike": "before"}.get(kind)
                if kind == "reset":
                    phase = "before" if coin < 0.5 else "after"
                return kind, phase, latency, faults.spike_seconds
        return None, None, latency, 0.0

    def _handle(self, h: _Handler) -> None:
        body = _read_body(h)
        query = body.decode("utf-8", "replace") if h.command == "POST" else urllib.parse.urlsplit(h.path).query
        form = urllib.parse.parse_qs(query)
        action = form.get("Action", ["?"])[0]
        service = _service(h.headers.get("Authorization", ""))
        attempt = _attempt(h.headers.get("amz-sdk-request", ""))
        record = Record(
            service=service,
            action=action,
            attempt=attempt,
            start=time.monotonic(),
            params={k: v[0] for k, v in form.items()},
        )
        with self._lock:
            self.records.append(record)
        self._pass_gate(action)
        fault, phase, latency, spike = self._draw(action)
        record.fault, record.phase = fault, phase

        if latency:
            time.sleep(latency)
        if fault == "spike":
            time.sleep(spike)
        if phase == "before":
            if fault == "throttle":
                return self._answer(h, record, *_throttled(service))
            if fault == "reset":
                return self._reset(h, record)

        status, headers, payload = self._forward(h, body)

        if phase == "after":
            if fault == "error500":
                return self._answer(h, record, *_internal_error(service))
            if fault == "reset":
                return self._reset(h, record)
        return self._answer(h, record, status, headers, payload)

    def _pass_gate(self, action: str) -> None:
        with self._lock:
            if self._gate is None:
                return
            n, opened, actions = self._gate
            if actions is not None and action not in actions:
                return
            self._gated += 1
            if self._gated >= n:
                opened.set()
                self._gate = None
        if not opened.wait(GATE_TIMEOUT):
            with self._lock:
                self.gate_timeouts += 1

    def _forward(self, h: _Handler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for name, value in h.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Connection", "close")
            conn.endheaders(body)
            response = conn.getresponse()
            payload = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, headers, payload
        finally:
            conn.close()

    def _answer(self, h: _Handler, record: Record, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        record.status = status
        # The end is taken before the answer leaves: the client cannot start a dependent request
        # before it, so "starts after the previous ended" is causal, never a scheduling artefact.
        record.end = time.monotonic()
        try:
            h.send_response(status)
            for name, value in headers:
                if name.lower() not in ("server", "date"):
                    h.send_header(name, value)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    def _reset(self, h: _Handler, record: Record) -> None:
        record.status = 0
        record.end = time.monotonic()
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.rfile.close()
            h.wfile.close()
            h.connection.close()  # the last reference: with linger 0, a TCP RST and no answer
        except OSError:
            pass
        h.wfile = io.BytesIO()  # what the handler still flushes goes nowhere

    # --- reading the records -----------------------------------------------------------------------

    def stats(self, records: list[Record]) -> dict:
        faults = {kind: 0 for kind in FAULT_KINDS}
        after = 0
        for r in records:
            if r.fault:
                faults[r.fault] += 1
                after += r.phase == "after"
        return {
            "requests": len(records),
            "faults": faults,
            "faults_after_forwarding": after,
            "sdk_retries": sum(1 for r in records if r.attempt > 1),
            "mutating": sum(1 for r in records if r.mutating),
        }


def _read_body(h: _Handler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def _service(authorization: str) -> str:
    """The service from the SigV4 credential scope: Credential=KEY/DATE/REGION/SERVICE/aws4_request."""
    for part in authorization.replace(",", " ").split():
        if part.startswith("Credential="):
            scope = part.split("=", 1)[1].split("/")
            if len(scope) >= 4:
                return scope[3]
    return "?"


def _attempt(header: str) -> int:
    """The SDK's attempt number from `amz-sdk-request: attempt=2; max=5` (1 when absent)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "attempt" and value.isdigit():
            return int(value)
    return 1


def _ec2_error(status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    )
    return status, [("Content-Type", "text/xml;charset=UTF-8")], xml.encode()


def _query_error(status: int, kind: str, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    xml = (
        f'<ErrorResponse xmlns="{AUTOSCALING_NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return status, [("Content-Type", "text/xml")], xml.encode()


def _throttled(service: str) -> tuple[int, list[tuple[str, str]], bytes]:
    if service == "autoscaling":
        return _query_error(400, "Sender", "Throttling", "Rate exceeded")
    return _ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.")


def _internal_error(service: str) -> tuple[int, list[tuple[str, str]], bytes]:
    if service == "autoscaling":
        return _query_error(500, "Receiver", "InternalFailure", "An internal error has occurred.")
    return _ec2_error(500, "InternalError", "An internal error has occurred.")
