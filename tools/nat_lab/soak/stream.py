"""The soak's event stream: seeded, over a seeded world, the way EventBridge and Lambda deliver
events: late, twice, out of order, for instances already replaced, and the schedule. It replaces
instances as it goes; what it yields is delivered (and retried) by `delivery`."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import events
from ..world import World, primary_eni, replace_instance


@dataclass
class Settings:
    events: int = 50
    fault_rate: float = 0.20
    seed: int = 20261127
    tables_per_zone: int = 2
    deliveries: int = 3  # Lambda async invocation: the first attempt and two retries
    timeout: int = 10  # replay --timeout: the hook's own deadline
    outage_share: float = 0.10  # deliveries whose first attempt meets an outage


@dataclass
class Event:
    number: int
    group: str | None  # None: the scheduled reconcile
    instance: str | None
    kind: str  # launch-successful, terminate (the group's terminate action for a replaced instance), scheduled
    path: Path
    eni: str | None = None  # terminate: the leaving instance's ENI, which no table may keep


# What the stream does next, and how often.
OPERATIONS = ("replace", "deliver", "duplicate", "stale", "schedule")
WEIGHTS = (25, 40, 15, 12, 8)
MAX_PENDING = 3  # launch events of a group waiting for delivery before it is replaced again


class Stream:
    """Iterating yields (event, label) to deliver, label one of in-order, reordered, duplicate,
    stale, scheduled. `rng` is shared with the delivery (one seed for everything), so the draws
    here and there interleave exactly as the deliveries do."""

    def __init__(self, moto, world: World, workdir: Path, rng: random.Random, first: dict[str, str], log: Callable[[str], None]):
        self.moto = moto
        self.log = log
        self.world = world
        self.workdir = workdir
        self.rng = rng
        self.history = {g: [instance] for g, instance in first.items()}  # every instance each group held, in order
        self.pending: dict[str, list[Event]] = {g: [] for g in world.groups}
        self.delivered: list[Event] = []
        self.numbers = 0
        for g, instance in first.items():
            self.pending[g].append(self.event(g, instance))

    def event(self, group: str | None, instance: str | None) -> Event:
        self.numbers += 1
        if group is None:
            body, kind = events.scheduled(), "scheduled"
        else:
            body, kind = events.launch(group, instance, self.world.groups[group].zone), "launch-successful"
        path = events.write(body, self.workdir, f"event-{self.numbers:03d}.json")
        return Event(self.numbers, group, instance, kind, path)

    def terminating(self, group: str, instance: str, eni: str) -> Event:
        """The group's terminate lifecycle action for an instance it is replacing."""
        self.numbers += 1
        path = events.write(events.terminate(group, instance), self.workdir, f"event-{self.numbers:03d}.json")
        return Event(self.numbers, group, instance, "terminate", path, eni)

    def __iter__(self) -> Iterator[tuple[Event, str]]:
        groups = sorted(self.world.groups)
        while True:
            op = self.rng.choices(OPERATIONS, weights=WEIGHTS)[0]
            g = self.rng.choice(groups)
            if op == "replace":
                if len(self.pending[g]) >= MAX_PENDING:
                    continue
                old = self.history[g][-1]
                leaving_eni = primary_eni(self.moto, old)
                _, new = replace_instance(self.moto, g)
                self.history[g].append(new)
                if self.rng.random() < 0.4:  # the old instance's terminate action, in the same queue
                    self.pending[g].append(self.terminating(g, old, leaving_eni))
                self.pending[g].append(self.event(g, new))
                self.log(f"replaced {g}: {new}")
            elif op == "deliver":
                waiting = [name for name in groups if self.pending[name]]
                if not waiting:
                    continue
                g = self.rng.choice(waiting)
                queue = self.pending[g]
                if len(queue) > 1 and self.rng.random() < 0.5:
                    ev, label = queue.pop(self.rng.randrange(1, len(queue))), "reordered"
                else:
                    ev, label = queue.pop(0), "in-order"
                yield ev, label
                self.delivered.append(ev)
            elif op == "duplicate":
                if self.delivered:
                    yield self.rng.choice(self.delivered), "duplicate"
            elif op == "stale":
                old = self.history[g][:-1]
                if old:
                    yield self.event(g, self.rng.choice(old)), "stale"
            else:
                yield self.event(None, None), "scheduled"
