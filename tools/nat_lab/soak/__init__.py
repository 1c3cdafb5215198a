"""The fault-injection soak: a seeded stream of launch events over a 3-zone world, delivered to the
real binary (`replay`) through the fault-injecting proxy, the way EventBridge and Lambda deliver
them: late, twice, out of order, for instances already replaced, and retried when the function
reports an error. After every invocation the emulator's state is read directly (boto3 against
moto, not through the proxy) and checked. At the end, a reconcile (retried like the schedule would
be) must leave every group on its current instance.

- `stream`: the seeded events (replacements, in-order and reordered deliveries, duplicates, stale
  events, the schedule);
- `delivery`: each event delivered with Lambda's retries and the proxy's faults and outages; the
  final reconcile; the `Result` counts;
- `invariants`: what must hold after every invocation (no stale move, no move but towards the
  event's own instance, never a false success).

Everything random comes from one seed: the event stream, the outages and the proxy's draws. The
proxy's draws follow the arrival order of concurrent requests, so a rerun with the same seed is the
same stream of events, with nearly the same faults.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from ..proxy import Faults, Proxy
from ..state import read_state
from ..world import seed_world
from .delivery import OUTAGES, Delivery, Result
from .stream import Event, Settings, Stream

__all__ = ["OUTAGES", "Event", "Result", "Settings", "Soak", "run_soak"]


class Soak:
    def __init__(self, moto, proxy: Proxy, workdir: Path, settings: Settings | None = None):
        self.moto = moto
        self.proxy = proxy
        self.workdir = workdir
        self.s = settings or Settings()
        self.rng = random.Random(self.s.seed)
        self.result = Result(self.s)
        self.log_file = open(workdir / "soak.log", "w")

    def run(self) -> Result:
        started = time.monotonic()
        self.proxy.set(latency=0.0, faults=Faults.uniform(self.s.fault_rate))
        mark = self.proxy.mark()
        world = seed_world(self.moto, tables_per_zone=self.s.tables_per_zone)
        config = world.write_config(self.workdir / "soak-config.json")
        state = read_state(self.moto, world)
        first = {}
        for g in world.groups:
            [first[g]] = [i.id for i in state.zone(g).in_service]
        stream = Stream(self.moto, world, self.workdir, self.rng, first, self.log)
        delivery = Delivery(self.moto, self.proxy, world, config, self.s, self.rng, self.result, self.log)
        if self.result.events < self.s.events:
            for ev, label in stream:
                delivery.deliver(ev, label)
                if self.result.events >= self.s.events:
                    break
        delivery.final_reconcile()
        self.result.proxy = self.proxy.stats(self.proxy.since(mark))
        self.result.seconds = time.monotonic() - started
        self.result.world = world
        self.log(self.result.summary())
        self.log_file.close()
        return self.result

    def log(self, line: str) -> None:
        self.log_file.write(line + "\n")
        self.log_file.flush()


def run_soak(moto, proxy: Proxy, workdir: Path, settings: Settings | None = None) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    result = Soak(moto, proxy, workdir, settings).run()
    (workdir / "soak-result.json").write_text(json.dumps(result.as_dict(), indent=2))
    return result
