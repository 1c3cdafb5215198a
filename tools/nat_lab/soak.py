"""The fault-injection soak: a seeded stream of launch events over a 3-zone world, delivered to the
real binary (`replay`) through the fault-injecting proxy, the way EventBridge and Lambda deliver
them: late, twice, out of order, for instances already replaced, and retried when the function
reports an error.

After every invocation the emulator's state is read directly (boto3 against moto, not through the
proxy) and checked:

- a stale event (its instance is no longer the group's) moves nothing at all, even when it fails;
- any other event moves its own group only, and only towards its instance's ENI;
- a success is never false: exit 0 with `applied`/`unchanged` means the group's EIP, source/dest
  check and every default route are on that instance right now; exit 0 with `stale` means the
  instance is not the group's; a scheduled reconcile that exits 0 left every group converged;
- a failure is reported as such (exit 1, the Lambda error that makes Lambda retry), never as a
  usage or malformed-event error.

A failed delivery is delivered again, at most `deliveries` times in all (Lambda's asynchronous
invocation: the first attempt and two retries). At the end, a reconcile (retried like the
schedule would be) must leave every group on its current instance.

Everything random comes from one seed: the event stream, the outages and the proxy's draws. The
proxy's draws follow the arrival order of concurrent requests, so a rerun with the same seed is the
same stream of events, with nearly the same faults.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import events, hook
from .proxy import Faults, Proxy
from .state import DESTINATION, State, StateReader
from .world import World, assert_converged, replace_instance, seed_world, unrelated_touched

# An outage for one delivery attempt: every request to these actions fails this way.
OUTAGES = (
    ("throttle", {"ReplaceRoute", "CreateRoute"}),  # throttled before the write: nothing changes
    ("error500", {"AssociateAddress"}),  # the EIP moves, the hook is told it failed
    ("reset", {"DescribeRouteTables"}),  # the observe round cannot finish
    ("throttle", {"CompleteLifecycleAction"}),  # routes moved, the lifecycle action not completed
)


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
    kind: str
    path: Path


@dataclass
class Result:
    settings: Settings
    events: int = 0
    labels: Counter = field(default_factory=Counter)
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
            f"soak seed={self.settings.seed}: {self.events} events ({dict(self.labels)}), {self.invocations} invocations "
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


class Soak:
    def __init__(self, moto, proxy: Proxy, workdir: Path, settings: Settings | None = None):
        self.moto = moto
        self.proxy = proxy
        self.workdir = workdir
        self.s = settings or Settings()
        self.rng = random.Random(self.s.seed)
        self.result = Result(self.s)
        self.normal = Faults.uniform(self.s.fault_rate)
        self.log = open(workdir / "soak.log", "w")

    # --- the world -------------------------------------------------------------------------------

    def setup(self) -> None:
        self.world: World = seed_world(self.moto, tables_per_zone=self.s.tables_per_zone)
        self.config = self.world.write_config(self.workdir / "soak-config.json")
        self.env = self.proxy.env(self.moto.env())
        self.reader = StateReader(self.moto, self.world)
        state = self.reader.read()
        self.history = {g: [i.id for i in state.zone(g).in_service] for g in self.world.groups}
        self.pending: dict[str, list[Event]] = {g: [] for g in self.world.groups}
        self.delivered: list[Event] = []
        self.numbers = 0
        for g, [instance] in self.history.items():
            self.pending[g].append(self.event(g, instance))

    def event(self, group: str | None, instance: str | None) -> Event:
        self.numbers += 1
        if group is None:
            body, kind = events.scheduled(), "scheduled"
        else:
            kind = self.rng.choice(("launch-successful", "launch-successful", "lifecycle-action"))
            body = events.launch(group, instance, self.world.groups[group].zone, kind)
        path = events.write(body, self.workdir, f"event-{self.numbers:03d}.json")
        return Event(self.numbers, group, instance, kind, path)

    # --- the stream ------------------------------------------------------------------------------

    def run(self) -> Result:
        started = time.monotonic()
        self.proxy.set(latency=0.0, faults=self.normal)
        mark = self.proxy.mark()
        self.setup()
        groups = sorted(self.world.groups)
        while self.result.events < self.s.events:
            op = self.rng.choices(("replace", "deliver", "duplicate", "stale", "schedule"), weights=(25, 40, 15, 12, 8))[0]
            g = self.rng.choice(groups)
            if op == "replace":
                if len(self.pending[g]) >= 3:
                    continue
                _, new = replace_instance(self.moto, g)
                self.history[g].append(new)
                self.pending[g].append(self.event(g, new))
                self._log(f"replaced {g}: {new}")
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
                self.deliver(ev, label)
                self.delivered.append(ev)
            elif op == "duplicate":
                if self.delivered:
                    self.deliver(self.rng.choice(self.delivered), "duplicate")
            elif op == "stale":
                old = self.history[g][:-1]
                if old:
                    self.deliver(self.event(g, self.rng.choice(old)), "stale")
            else:
                self.deliver(self.event(None, None), "scheduled")
        self.final_reconcile()
        self.result.proxy = self.proxy.stats(self.proxy.since(mark))
        self.result.seconds = time.monotonic() - started
        self.result.world = self.world
        self._log(self.result.summary())
        self.log.close()
        return self.result

    def deliver(self, ev: Event, label: str) -> None:
        r = self.result
        r.events += 1
        r.labels[label] += 1
        state = self.reader.read()
        if ev.group is None:
            targets = {name: zone.in_service[0].eni for name, zone in state.zones.items()}
            live = True
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
                self._log(f"{what}: outage {kind} on {sorted(actions)}")
            self.proxy.set(faults=faults)
            run = hook.run(self.env, "replay", str(ev.path), "--timeout", str(self.s.timeout), config=self.config, timeout=60)
            r.invocations += 1
            r.redeliveries += attempt > 0
            state = self.reader.read()
            self.check_moves(what, before, state.movable(), targets)
            if run.code == 0:
                r.successes += 1
                result = run.result
                r.outcomes[result["outcome"]] += 1
                self._log(f"{what}: attempt {attempt + 1}: {result['outcome']} {[a['action'] for a in result.get('actions', [])]}")
                self.check_success(what, ev, live, result, state)
                break
            r.errors_reported += 1
            r.outcomes["error"] += 1
            reason = run.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
            self._log(f"{what}: attempt {attempt + 1}: exit {run.code}: {reason[0][:300]}")
            if run.code != 1:
                r.violations.append(f"{what}: a failure must exit 1 (a Lambda error), exit {run.code}: {reason[0]}")
        else:
            r.undelivered += 1
        self.proxy.set(faults=self.normal)

    # --- the checks ------------------------------------------------------------------------------

    def check_moves(self, what: str, before: dict, after: dict, targets: dict[str, str]) -> None:
        """Only the targeted groups may change, and only towards their target ENI."""
        for group, b in before.items():
            a = after[group]
            target = targets.get(group)
            if target is None:
                if a != b:
                    self.result.violations.append(f"moved: {what} changed {group}: {b} -> {a}")
                continue
            if a["eip_eni"] not in (b["eip_eni"], target):
                self.result.violations.append(f"moved: {what}: {group} EIP went to {a['eip_eni']}, not {target}")
            for table, routes in a["routes"].items():
                for dest, hop in routes.items():
                    allowed = (b["routes"][table].get(dest), target) if dest == DESTINATION else (b["routes"][table].get(dest),)
                    if hop not in allowed:
                        self.result.violations.append(f"moved: {what}: {table} {dest} went to {hop}, allowed {allowed}")
                if set(routes) != set(b["routes"][table]):
                    self.result.violations.append(f"moved: {what}: {table} routes {set(b['routes'][table])} -> {set(routes)}")
            for instance, check in a["sdc"].items():
                if check != b["sdc"].get(instance) and check is not False:
                    self.result.violations.append(f"moved: {what}: source/dest check of {instance} turned on")

    def check_success(self, what: str, ev: Event, live: bool, result: dict, state: State) -> None:
        outcome = result["outcome"]
        try:
            if ev.group is None:
                for group, zone in state.zones.items():
                    self.converged_on(state, group, zone.in_service[0].id)
            elif live:
                assert outcome in ("applied", "unchanged"), f"outcome {outcome} for the group's own instance"
                assert result["instance_id"] == ev.instance, f"reported {result['instance_id']}"
                self.converged_on(state, ev.group, ev.instance)
                if ev.kind == "lifecycle-action":
                    assert result.get("lifecycle_action") in ("CONTINUE", "already completed"), result.get("lifecycle_action")
            else:
                assert outcome == "stale", f"outcome {outcome} for an instance the group no longer holds"
                assert result["actions"] == [], result["actions"]
        except AssertionError as e:
            self.result.violations.append(f"false success: {what}: exit 0 but {e}")

    def converged_on(self, state: State, group: str, instance: str) -> None:
        """The group holds `instance` alone InService and is converged on it, unrelated routes untouched."""
        zone = state.zone(group)
        held = [i.id for i in zone.in_service]
        assert held == [instance], f"{group} holds {held}, not {instance}"
        problems = zone.problems(instance) + unrelated_touched(self.world, zone)
        assert not problems, "; ".join(problems)

    def final_reconcile(self) -> None:
        self.proxy.set(faults=self.normal)
        for attempt in range(1, 6):
            self.result.final_reconcile_attempts = attempt
            run = hook.run(self.env, "reconcile", "--timeout", str(self.s.timeout), config=self.config, timeout=60)
            self._log(f"final reconcile attempt {attempt}: exit {run.code}")
            if run.code == 0:
                break
        else:
            self.result.violations.append("the final reconcile never succeeded")
            return
        for group in self.world.groups:
            try:
                assert_converged(self.moto, self.world, group)
            except AssertionError as e:
                self.result.violations.append(f"false success: final reconcile exit 0 but {e}")

    def _log(self, line: str) -> None:
        self.log.write(line + "\n")
        self.log.flush()


def run_soak(moto, proxy: Proxy, workdir: Path, settings: Settings | None = None) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    result = Soak(moto, proxy, workdir, settings).run()
    (workdir / "soak-result.json").write_text(json.dumps(result.as_dict(), indent=2))
    return result
