"""The proxy's HTTP side: a threaded loopback server, the request's identity (service, action,
SDK attempt), forwarding to the emulator, and the two ways a request ends: an answer, or a TCP
reset with none. It decides nothing: `Listener(handle)` calls `handle(request)` for every request."""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import struct
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .faults import Answer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te", "upgrade"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 50+ concurrent connections in one act round: no SYN backlog drops
    on_request: Callable[[Request], None]

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
        self.server.on_request(Request(self, _read_body(self)))

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()


@dataclass
class Request:
    """One request as the SDK sent it, and its way back."""

    handler: _Handler
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        """The query parameters: the POST body of the EC2 / Auto Scaling query protocol, or the URL's."""
        h = self.handler
        query = self.body.decode("utf-8", "replace") if h.command == "POST" else urllib.parse.urlsplit(h.path).query
        return urllib.parse.parse_qs(query)

    @property
    def service(self) -> str:
        """The service from the SigV4 credential scope: Credential=KEY/DATE/REGION/SERVICE/aws4_request."""
        for part in self.handler.headers.get("Authorization", "").replace(",", " ").split():
            if part.startswith("Credential="):
                scope = part.split("=", 1)[1].split("/")
                if len(scope) >= 4:
                    return scope[3]
        return "?"

    @property
    def attempt(self) -> int:
        """The SDK's attempt number from `amz-sdk-request: attempt=2; max=5` (1 when absent)."""
        for part in self.handler.headers.get("amz-sdk-request", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == "attempt" and value.isdigit():
                return int(value)
        return 1

    def forward(self, upstream: tuple[str, int]) -> Answer:
        """The same request to the emulator; its answer."""
        h = self.handler
        conn = http.client.HTTPConnection(*upstream, timeout=60)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for name, value in h.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(self.body)))
            conn.putheader("Connection", "close")
            conn.endheaders(self.body)
            response = conn.getresponse()
            payload = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, headers, payload
        finally:
            conn.close()

    def answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        h = self.handler
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

    def reset(self) -> None:
        """Closes the connection with a TCP RST and no answer."""
        h = self.handler
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.rfile.close()
            h.wfile.close()
            h.connection.close()  # the last reference: with linger 0, a TCP RST and no answer
        except OSError:
            pass
        h.wfile = io.BytesIO()  # what the handler still flushes goes nowhere


class Listener:
    """Serves on a free loopback port from a background thread until `stop()`."""

    def __init__(self, handle: Callable[[Request], None]):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.on_request = handle
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
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
