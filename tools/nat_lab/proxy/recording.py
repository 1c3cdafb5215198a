"""What the proxy records of each request, and what is read from the records: the round trips on
the critical path (`rounds`) and the counts a soak reports (`stats`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .faults import FAULT_KINDS

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
        "RecordLifecycleActionHeartbeat",
        "CreateOrUpdateTags",  # drain's mark on a group
        "DeleteTags",  # undrain
    }
)


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


class Recorder:
    """The records, in arrival order, shared by the proxy's request threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._records: list[Record] = []

    def add(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    def mark(self) -> int:
        """An index into the records: `since(mark)` gives the requests after it."""
        with self._lock:
            return len(self._records)

    def since(self, mark: int = 0) -> list[Record]:
        with self._lock:
            return list(self._records[mark:])


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


def stats(records: list[Record]) -> dict:
    """Requests, faults by kind, faults after forwarding, SDK retries, mutating calls."""
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
