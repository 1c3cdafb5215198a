"""A recording, fault-injecting HTTP proxy between the hook and the AWS emulator.

The hook reaches AWS through `AWS_ENDPOINT_URL`; point that at `Proxy.endpoint` (or use
`Proxy.env(moto.env())`) and every request passes through here, where the proxy

- adds a fixed latency to every request (`latency`, seconds), the stand-in for the round trip to a
  real AWS endpoint, so that the critical path shows up in wall time;
- records each request: service, action (the `Action=` of the EC2 / Auto Scaling query protocol),
  SDK attempt number, start and end (monotonic seconds), status, and any fault it injected;
- injects faults at set rates (`Faults`), each answered the way AWS answers it (see `faults`).

Everything else is the emulator's: Auto Scaling's lifecycle calls, which moto lacks, are answered by
the moto server itself (`nat_lab.moto_shims.lifecycle`), so they behave the same with or without
the proxy in between.

`rounds(records)` groups the requests by the longest chain of requests before them, each starting
after the previous one ended; its length is the number of round trips on the critical path.

The parts: `transport` (the HTTP server, forwarding, answers and resets), `faults` (latency, the
seeded fault draws, the gate, AWS's error answers), `recording` (the records, rounds, stats).
"""

from __future__ import annotations

import time
import urllib.parse

from .faults import FAULT_KINDS, GATE_TIMEOUT, Faults, Gate, Policy, internal_error, throttled
from .recording import MUTATING, Record, Recorder, rounds, stats
from .transport import Listener, Request

__all__ = ["FAULT_KINDS", "GATE_TIMEOUT", "MUTATING", "Faults", "Proxy", "Record", "rounds", "stats"]


class Proxy:
    """The proxy, serving on a free loopback port from a background thread until `stop()`."""

    def __init__(self, upstream: str, latency: float = 0.0, faults: Faults | None = None, seed: int = 0):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.policy = Policy(latency, faults, seed)
        self.recorder = Recorder()
        self._gate = Gate()
        self._listener = Listener(self._handle)
        self.port = self._listener.port
        self.endpoint = f"http://127.0.0.1:{self.port}"

    # --- control -----------------------------------------------------------------------------------

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` (e.g. `moto.env()`) with the AWS endpoint pointed at this proxy."""
        return {**base, "AWS_ENDPOINT_URL": self.endpoint}

    @property
    def latency(self) -> float:
        return self.policy.latency

    @property
    def faults(self) -> Faults:
        return self.policy.faults

    def set(self, latency: float | None = None, faults: Faults | None = None) -> None:
        self.policy.set(latency, faults)

    def gate(self, n: int, actions: set[str] | frozenset[str] | None = None) -> None:
        """Hold the next `n` requests (to `actions`, if given) until all `n` have arrived (`Gate`)."""
        self._gate.arm(n, actions)

    def held(self) -> int:
        """How many requests the current gate holds (0 once it has opened)."""
        return self._gate.held()

    @property
    def gate_timeouts(self) -> int:
        """Held requests released by the timeout, not by the last arrival."""
        return self._gate.timeouts

    def mark(self) -> int:
        """An index into the records: `since(mark)` gives the requests after it."""
        return self.recorder.mark()

    def since(self, mark: int = 0) -> list[Record]:
        return self.recorder.since(mark)

    def stats(self, records: list[Record]) -> dict:
        return stats(records)

    def stop(self) -> None:
        self._listener.stop()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- one request -------------------------------------------------------------------------------

    def _handle(self, request: Request) -> None:
        form = request.form
        action = form.get("Action", ["?"])[0]
        service = request.service
        record = Record(
            service=service,
            action=action,
            attempt=request.attempt,
            start=time.monotonic(),
            params={k: v[0] for k, v in form.items()},
        )
        self.recorder.add(record)
        self._gate.passing(action)
        draw = self.policy.draw(action)
        record.fault, record.phase = draw.fault, draw.phase

        if draw.latency:
            time.sleep(draw.latency)
        if draw.fault == "spike":
            time.sleep(draw.spike)
        if draw.phase == "before":
            if draw.fault == "throttle":
                return self._answer(request, record, *throttled(service))
            if draw.fault == "reset":
                return self._reset(request, record)

        answer = request.forward(self.upstream)

        if draw.phase == "after":
            if draw.fault == "error500":
                return self._answer(request, record, *internal_error(service))
            if draw.fault == "reset":
                return self._reset(request, record)
        return self._answer(request, record, *answer)

    def _answer(self, request: Request, record: Record, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        record.status = status
        # The end is taken before the answer leaves: the client cannot start a dependent request
        # before it, so "starts after the previous ended" is causal, never a scheduling artefact.
        record.end = time.monotonic()
        request.answer(status, headers, payload)

    def _reset(self, request: Request, record: Record) -> None:
        record.status = 0
        record.end = time.monotonic()
        request.reset()
