"""Running a trial: the lab's scenarios against a real account (`AccountBackend`), one zone at a
time, each measured by the zones' egress probes, reported by the lab's one report code path.

Whatever way it ends (done, a failure, Ctrl-C, SIGTERM), the trial stops its probes, cancels an
instance refresh and an experiment it started, and waits until every zone is whole again on its own
group's NAT, as it found them; it says so, or says what is not."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from ..lab import report
from ..lab.scenarios import SPOT_INTERRUPTION, Run, Scenario, end_experiments, on_new_nat
from ..state import StateReader
from .environment import Account, Environment
from .probes import Probes, TrialError


@dataclass
class Settings:
    url: str = "http://checkip.amazonaws.com"  # plain HTTP, as the lab's echo: no TLS handshake in each probe
    rate: float = 20.0  # the lab's probe rate
    timeout: float = 1.0  # the lab's probe timeout
    lead_in: float = 15.0
    tail: float = 15.0
    bound: float = 900.0  # the longest a run waits for its zone to be whole on a new NAT
    settle: float = 900.0  # the longest the trial waits for every zone to be whole between runs
    poll: float = 2.0
    refresh_warmup: float | None = None  # default: the group's DefaultInstanceWarmup
    fis_role_arn: str = ""


def offers(settings: Settings) -> frozenset[str]:
    """What a real account offers beyond the AWS APIs: a Spot interruption, given a role for FIS."""
    return frozenset({SPOT_INTERRUPTION}) if settings.fis_role_arn else frozenset()


class AccountBackend:
    """A real account (or the emulator in the tests): its APIs and the state reader; a Spot
    interruption (through Fault Injection Service) only when a role for it is given."""

    def __init__(self, account: Account, env: Environment, settings: Settings):
        self.account = account
        self.env = env
        self.settings = settings
        self.offers = offers(settings)
        warmups = list(env.warmup.values()) or [60]
        self.refresh_warmup = settings.refresh_warmup if settings.refresh_warmup is not None else max(warmups)
        self.reader = StateReader(account, env.world)
        self.fis_role_arn = settings.fis_role_arn
        self.marks: list[tuple[float, str, str]] = []  # (epoch, zone, what)
        self._state = None
        self._read_at = 0.0

    def client(self, service: str):
        return self.account.client(service)

    def mark(self, label: str, zone: str = "") -> None:
        self.marks.append((time.time(), zone, label))
        print(f"aws-trial: {datetime.now(UTC):%H:%M:%S} {zone or 'all zones'}: {label}", flush=True)

    def state(self, fresh: bool = False):
        """The account's state, read again when `fresh` or older than a second. A read that fails
        (EC2's eventual consistency: an instance Auto Scaling lists that DescribeInstances does not
        know yet; a throttle past the SDK's retries) leaves None: no zone is whole on it, and the
        next poll reads again."""
        if fresh or self._state is None or time.monotonic() - self._read_at > 1.0:
            try:
                self._state = self.reader.read()
            except (ClientError, BotoCoreError) as exc:
                print(f"aws-trial: could not read the zones now, reading again: {exc}", flush=True)
                self._state = None
            self._read_at = time.monotonic()
        return self._state

    def own_nat(self, zone: str) -> str | None:
        """The zone's NAT when the zone is whole on it: converged (EIP, source/dest check off, every
        default route) on its group's newest InService instance, running, the group holding no
        other."""
        state = self.state()
        if state is None:
            return None
        found = state.zone(zone)
        # A NAT killed a moment ago is still InService, with the EIP and the routes, until its
        # group's health check notices: it is not whole unless EC2 has it running.
        if found.owner is None or not found.owner.alive or len(found.instances) != 1 or not found.converged():
            return None
        return found.owner.id

    def undo(self, runs: list[Run]) -> list[str]:
        """What a trial started and did not finish: instance refreshes cancelled, experiments
        stopped, their templates deleted. Returns what it did."""
        done = []
        autoscaling = self.client("autoscaling")
        for run in runs:
            for zone, refresh in run.seen.get("instance_refreshes", {}).items():
                try:
                    found = autoscaling.describe_instance_refreshes(AutoScalingGroupName=run.group(zone), InstanceRefreshIds=[refresh])
                    status = (found.get("InstanceRefreshes") or [{}])[0].get("Status")
                    if status in ("Pending", "InProgress", "Baking"):
                        autoscaling.cancel_instance_refresh(AutoScalingGroupName=run.group(zone))
                        done.append(f"{zone}: instance refresh {refresh} cancelled")
                except ClientError as exc:  # ended meanwhile (ActiveInstanceRefreshNotFound), or refused: said
                    done.append(f"{zone}: instance refresh {refresh}: {exc}")
            done += end_experiments(run)
        return done


@dataclass
class Trial:
    env: Environment
    account: Account
    settings: Settings
    out: Path
    backend: AccountBackend = field(init=False)
    runs: list[Run] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    pictures: dict[tuple[str, str], str] = field(default_factory=dict)
    probes: Probes | None = None
    stamp: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))

    def __post_init__(self):
        self.backend = AccountBackend(self.account, self.env, self.settings)

    def whole(self) -> list[str]:
        """The zones not whole on a NAT of their own group (one instance, converged)."""
        self.backend.state(fresh=True)
        return [z for z in self.env.zones if self.backend.own_nat(z) is None]

    def settle(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            missing = self.whole()
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(self.settings.poll)

    def one(self, index: int, scenario: Scenario, zone: str) -> None:
        s = self.settings
        missing = self.settle(s.settle)
        if missing:
            raise TrialError(f"not every zone is whole before {scenario.name} in {zone}: {', '.join(missing)}; the trial stops here")
        if not scenario.needs <= self.backend.offers:
            raise TrialError(
                f"{scenario.name} needs {', '.join(sorted(scenario.needs - self.backend.offers))}, which this account does not offer"
            )
        groups = {z: self.env.group(z) for z in self.env.zones}
        run = Run(self.backend, None, None, scenario, self.env.failover, True, [zone], groups=groups)
        run.old = {z: self.backend.own_nat(z) or "" for z in self.env.zones}
        self.runs.append(run)
        most = s.lead_in + s.bound + s.tail + 120  # the probers' own bound, should the trial die
        self.probes = Probes(self.account.client("ssm"), self.env.probes, f"{self.stamp}-{index}", s.url, s.rate, s.timeout, most)
        marks_before = len(self.backend.marks)
        self.probes.start(f"{scenario.name} {zone}")
        run.started = time.time()
        time.sleep(s.lead_in)
        run.acted = time.time()
        scenario.act(run)
        over = scenario.done or on_new_nat
        deadline = time.monotonic() + s.bound
        while time.monotonic() < deadline:
            self.backend.state(fresh=True)
            if over(run):
                break
            time.sleep(s.poll)
        else:
            run.notes.append(f"{zone}: not whole on a new NAT within {s.bound:.0f} s")
        time.sleep(s.tail)
        self.probes.stop()
        collected = self.probes.collect()
        self.probes = None
        run.notes.append(f"window {run.started:.1f}-{time.time():.1f} (epoch s)")
        found = self.measure(run, collected)
        self.rows += found
        relative = f"egress/{scenario.name}-{zone}.png"
        actions = [at - run.acted for at, _, _ in self.backend.marks[marks_before:]]
        title = f"{scenario.title}, {zone} ({self.env.region}, {self.stamp[:8]})"
        report.draw(collected, found, self.out / relative, self.env.eips, actions, title, run.acted)
        self.pictures[(scenario.name, zone)] = relative

    def measure(self, run: Run, probes: dict) -> list[dict]:
        s = self.settings
        state = self.backend.state(fresh=True)
        while state is None:  # eventual consistency: read until the account answers
            time.sleep(self.settings.poll)
            state = self.backend.state(fresh=True)
        all_eips = set(self.env.eips.values())
        rows = []
        for zone in run.zones + [z for z in self.env.zones if z not in run.zones]:
            old = run.old.get(zone)
            held = {i.id for i in state.zone(zone).instances}
            rows.append(
                {
                    "scenario": run.scenario.name,
                    "title": run.scenario.title,
                    "failover": run.failover,
                    "hook": True,
                    "zone": zone,
                    "hit": zone in run.zones,
                    **report.egress(probes.get(zone, []), s.rate, self.env.eips[zone], all_eips, run.acted),
                    "replaced": int(bool(old) and old not in held),
                    "connections": {},
                    "seen": run.seen if zone in run.zones else {},
                    "events": [],
                    "notes": list(run.notes),
                    "probe_rate": s.rate,
                    "region": self.env.region,
                    "account": self.env.account,
                    "date": self.stamp,
                    "parameters": self.parameters(),
                }
            )
        return rows

    def parameters(self) -> dict:
        s = self.settings
        return {
            "account": self.env.account,
            "region": self.env.region,
            "started": self.stamp,
            "check_ip_url": s.url,
            "probe_rate_per_s": s.rate,
            "probe_timeout_s": s.timeout,
            "lead_in_s": s.lead_in,
            "tail_s": s.tail,
            "run_bound_s": s.bound,
            "refresh_warmup_s": self.backend.refresh_warmup,
            "hook_failover": self.env.failover,
            "nat_instance_types": ", ".join(f"{z}: {t}" for z, t in self.env.instance_types.items()),
        }

    def finish(self) -> list[str]:
        """On every way out: what the trial started undone (an instance refresh cancelled, an
        experiment stopped), the zones whole again (so that every probe's agent reaches SSM), then
        the probes stopped. Each step runs whatever the one before it did. Returns what is not as
        the trial found it (empty when everything is)."""
        left = []
        try:
            for line in self.backend.undo(self.runs):
                print(f"aws-trial: {line}", flush=True)
        except Exception as exc:  # noqa: BLE001 (said; the zones and the probes still come next)
            left.append(f"could not undo what the runs started: {exc}")
        missing = self.settle(self.settings.settle)
        left += [f"{zone} is not whole on a NAT of its own group" for zone in missing]
        if self.probes is not None:
            left += self.probes.stop()
            self.probes = None
        return left
