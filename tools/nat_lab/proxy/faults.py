"""The proxy's policy for each request: the latency it adds, the fault it injects (if any, and
whether before or after forwarding), the gate that holds concurrent requests together, and the
answers AWS gives for those faults.

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
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass

FAULT_KINDS = ("throttle", "error500", "reset", "spike")
PHASES = {"throttle": "before", "error500": "after", "spike": "before"}  # reset: either, by a coin
GATE_TIMEOUT = 10.0
AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"

Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body


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


@dataclass(frozen=True)
class Draw:
    """What happens to one request."""

    fault: str | None
    phase: str | None  # "before" or "after" forwarding
    latency: float
    spike: float  # extra seconds, for a spike


class Policy:
    """The latency and the faults now in force, and the seeded draws (two per request, in arrival
    order: a rerun with the same seed draws the same sequence)."""

    def __init__(self, latency: float = 0.0, faults: Faults | None = None, seed: int = 0):
        self.latency = latency
        self.faults = faults or Faults()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def set(self, latency: float | None = None, faults: Faults | None = None) -> None:
        with self._lock:
            if latency is not None:
                self.latency = latency
            if faults is not None:
                self.faults = faults

    def draw(self, action: str) -> Draw:
        with self._lock:
            faults, latency = self.faults, self.latency
            roll = self._rng.random()
            coin = self._rng.random()
        if faults.actions is not None and action not in faults.actions:
            return Draw(None, None, latency, 0.0)
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(faults, kind)
            if roll < edge:
                phase = PHASES.get(kind) or ("before" if coin < 0.5 else "after")
                return Draw(kind, phase, latency, faults.spike_seconds)
        return Draw(None, None, latency, 0.0)


class Gate:
    """Holds the next `n` requests (to `actions`, if given) until all `n` have arrived, then lets
    them go together: the observe rounds of concurrent invocations then see the same state, the
    worst case for a race. A held request waits at most `GATE_TIMEOUT` seconds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._gate: tuple[int, threading.Event, frozenset[str] | None] | None = None
        self._gated = 0
        self.timeouts = 0  # held requests released by the timeout, not by the last arrival

    def arm(self, n: int, actions: set[str] | frozenset[str] | None = None) -> None:
        with self._lock:
            self._gate, self._gated = (n, threading.Event(), frozenset(actions) if actions else None), 0

    def held(self) -> int:
        """How many requests the gate holds (0 once it has opened)."""
        with self._lock:
            return self._gated if self._gate is not None else 0

    def passing(self, action: str) -> None:
        """Called by each request: returns when the gate lets it through."""
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
                self.timeouts += 1


def throttled(service: str) -> Answer:
    if service == "autoscaling":
        return _query_error(400, "Sender", "Throttling", "Rate exceeded")
    return _ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.")


def internal_error(service: str) -> Answer:
    if service == "autoscaling":
        return _query_error(500, "Receiver", "InternalFailure", "An internal error has occurred.")
    return _ec2_error(500, "InternalError", "An internal error has occurred.")


def _ec2_error(status: int, code: str, message: str) -> Answer:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    )
    return status, [("Content-Type", "text/xml;charset=UTF-8")], xml.encode()


def _query_error(status: int, kind: str, code: str, message: str) -> Answer:
    xml = (
        f'<ErrorResponse xmlns="{AUTOSCALING_NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return status, [("Content-Type", "text/xml")], xml.encode()
