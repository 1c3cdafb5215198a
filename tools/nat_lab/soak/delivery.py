"""Delivering the stream's events to the real binary (`replay`) through the fault-injecting proxy,
as Lambda's asynchronous invocation does: a failed delivery is delivered again, at most
`Settings.deliveries` times in all (the first attempt and two retries); a share of first attempts
meets an outage of one action. After every invocation the state is read and the invariants are
checked. At the end, a reconcile, retried as the schedule would retry it."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import hook
from ..proxy import Faults, Proxy
from ..state import StateReader
from ..world import World
from .invariants import Invariants
from .stream import Event, Settings

# An outage for one delivery attempt: every request to these actions fails this way.
OUTAGES = (
    ("throttle", {"ReplaceRoute", "CreateRoute"}),  # throttled before the write: nothing changes
    ("error500", {"AssociateAddress"}),  # the EIP moves, the hook is told it failed
    ("reset", {"DescribeRouteTables"}),  # the observe round cannot finish
    ("throttle", {"CompleteLifecycleAction"}),  # the zone handed over, the terminate action not completed
)
FINAL_RECONCILE_ATTEMPTS = 5
# The CLI's statuses that mean "the handler returned an error", what Lambda reports and redelivers:
# 1 it failed part-way; 3 it could not look (an endpoint that resets, throttling beyond every retry).
# 0 is a success and is checked as one; 2 (bad input) or anything else is a defect.
FAILURE_CODES = (1, 3)


@dataclass
class Result:
    settings: Settings
    events: int = 0
    labels: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)  # launch-successful, terminate, scheduled
    invocations: int = 0
    successes: int = 0
    errors_reported: int = 0
    redeliveries: int = 0
    undelivered: int = 0  # failed every delivery: Lambda would send it to the dead-letter queue
    outages: int = 0
    outcomes: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    proxy: dict = field(default_factory=dict)
    final_reconcile_attempts: int = 0
    seconds: float = 0.0
    world: World | None = None

    @property
    def false_successes(self) -> int:
        return sum(1 for v in self.violations if v.startswith("false success"))

    def summary(self) -> str:
        p = self.proxy
        return (
            f"soak seed={self.settings.seed}: {self.events} events ({dict(self.labels)}; {dict(self.kinds)}), "
            f"{self.invocations} invocations "
            f"in {self.seconds:.0f}s; outcomes {dict(self.outcomes)}; errors reported {self.errors_reported}, "
            f"redeliveries {self.redeliveries}, undelivered {self.undelivered}, outages {self.outages}; "
            f"proxy: {p.get('requests')} requests, faults {p.get('faults')} "
            f"({p.get('faults_after_forwarding')} after forwarding), SDK retries {p.get('sdk_retries')}; "
            f"final reconcile attempts {self.final_reconcile_attempts}; violations {len(self.violations)}, "
            f"false successes {self.false_successes}"
        )

    def as_dict(self) -> dict:
        return {
            "seed": self.settings.seed,
            "fault_rate": self.settings.fault_rate,
            "events": self.events,
            "labels": dict(self.labels),
            "kinds": dict(self.kinds),
            "invocations": self.invocations,
            "successes": self.successes,
            "errors_reported": self.errors_reported,
            "redeliveries": self.redeliveries,
            "undelivered": self.undelivered,
            "outages": self.outages,
            "outcomes": dict(self.outcomes),
            "proxy": self.proxy,
            "final_reconcile_attempts": self.final_reconcile_attempts,
            "violations": self.violations,
            "false_successes": self.false_successes,
            "seconds": round(self.seconds, 1),
        }


class Delivery:
    def __init__(
        self,
        moto,
        proxy: Proxy,
        world: World,
        config: Path,
        settings: Settings,
        rng: random.Random,
        result: Result,
        log: Callable[[str], None],
    ):
        self.proxy = proxy
        self.config = config
        self.s = settings
        self.rng = rng
        self.result = result
        self.log = log
        self.normal = Faults.uniform(settings.fault_rate)
        self.env = proxy.env(moto.env())
        self.reader = StateReader(moto, world)
        self.invariants = Invariants(moto, world, result.violations)

    def deliver(self, ev: Event, label: str) -> None:
        r = self.result
        r.events += 1
        r.labels[label] += 1
        r.kinds[ev.kind] += 1
        state = self.reader.read()
        if ev.group is None:
            targets = {name: zone.in_service[0].eni for name, zone in state.zones.items()}
            live = True
        elif ev.kind == "terminate":
            targets = {ev.group: state.zone(ev.group).owner_eni}
            live = False
        else:
            live = ev.instance in [i.id for i in state.zone(ev.group).in_service]
            targets = {ev.group: state.zone(ev.group).instance(ev.instance).eni} if live else {}
        before = state.movable()
        what = f"event {ev.number} ({label}, {ev.kind}, {ev.group or 'all groups'} {ev.instance or ''}, {'live' if live else 'stale'})"
        outage = self.rng.random() < self.s.outage_share
        for attempt in range(self.s.deliveries):
            faults = self.normal
            if attempt == 0 and outage:
                kind, actions = self.rng.choice(OUTAGES)
                faults = Faults.always(kind, actions)
                r.outages += 1
                self.log(f"{what}: outage {kind} on {sorted(actions)}")
            self.proxy.set(faults=faults)
            run = hook.run(self.env, "replay", str(ev.path), "--timeout", str(self.s.timeout), config=self.config, timeout=60)
            r.invocations += 1
            r.redeliveries += attempt > 0
            state = self.reader.read()
            self.invariants.check_moves(what, before, state.movable(), targets)
            if run.code == 0:
                r.successes += 1
                result = run.result
                r.outcomes[result["outcome"]] += 1
                self.log(f"{what}: attempt {attempt + 1}: {result['outcome']} {[a['action'] for a in result.get('actions', [])]}")
                self.invariants.check_success(what, ev, live, result, state)
                break
            r.errors_reported += 1
            r.outcomes["error"] += 1
            reason = run.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
            self.log(f"{what}: attempt {attempt + 1}: exit {run.code}: {reason[0][:300]}")
            if run.code not in FAILURE_CODES:
                r.violations.append(
                    f"{what}: a failure must exit 1 (the handler failed) or 3 (could not look), "
                    f"both a Lambda error; exit {run.code}: {reason[0]}"
                )
        else:
            r.undelivered += 1
        self.proxy.set(faults=self.normal)

    def final_reconcile(self) -> None:
        self.proxy.set(faults=self.normal)
        for attempt in range(1, FINAL_RECONCILE_ATTEMPTS + 1):
            self.result.final_reconcile_attempts = attempt
            run = hook.run(self.env, "reconcile", "--timeout", str(self.s.timeout), config=self.config, timeout=60)
            self.log(f"final reconcile attempt {attempt}: exit {run.code}")
            if run.code == 0:
                break
        else:
            self.result.violations.append("the final reconcile never succeeded")
            return
        self.invariants.check_final()
