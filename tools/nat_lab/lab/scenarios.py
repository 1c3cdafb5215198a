"""The scenarios: what happens to a zone's NAT, and what the probes measured while it happened.

One vocabulary, two backends: a scenario's act runs against a `Backend`, the lab's (network
namespaces and the emulator, `LabBackend`) or a real account's (`nat_lab.trial`). Most acts are AWS
API calls both answer (an instance refresh, SetInstanceHealth, TerminateInstances); a scenario that
needs more names it (`needs`), and runs only where the backend offers it (`offers`): the lab offers
everything, a real account what it can do (a Spot interruption only through Fault Injection Service).

Each run starts from a converged world (every zone on its own NAT: EIP, source/dest check off,
default route), probes every zone for a lead-in, acts, waits until the run is done (by default: the
zone is whole again on its group's new instance, EIP and route, and the old one is gone; a scenario
that keeps its NAT says what done is) or the run's bound, keeps probing for a tail, and measures.
The group's behaviour is AWS's (see motoserver.py); the lab only does what an operator, AWS or a
failure would do: start a refresh, terminate, kill, break the forwarding, block an instance's
network, lose an event, drain a zone with the hook's own command.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .. import fis as fis_template
from .. import hook as hook_lab
from ..constants import DESTINATION
from ..events import LAUNCH_SUCCESSFUL
from ..state import Snapshot, StateReader
from . import netns
from .core import Lab
from .eventbridge import EventBridge

LEAD_IN = 2.0
TAIL = 2.0

# What a scenario may need beyond the AWS APIs every backend answers.
LAB = "lab"  # the lab's own hands: namespaces, the emulator's faults, the EventBridge stand-in
SPOT_INTERRUPTION = "spot-interruption"  # EC2's interruption warning and reclaim of a Spot NAT
PORTABLE: frozenset[str] = frozenset()


class Backend(Protocol):
    """Where a scenario runs: the AWS APIs (`client`), a note on the run's timeline (`mark`), the
    zone's NAT when the zone is whole on it (`own_nat`), and what it can do beyond the APIs."""

    offers: frozenset[str]
    refresh_warmup: float  # an instance refresh's InstanceWarmup
    fis_role_arn: str  # the role Fault Injection Service assumes ("" when there is none)

    def client(self, service: str): ...

    def mark(self, label: str, zone: str = "") -> None: ...

    def own_nat(self, zone: str) -> str | None: ...


@dataclass
class Scenario:
    name: str
    title: str
    act: Callable[[Run], None]
    needs: frozenset[str] = frozenset({LAB})  # what the backend must offer beyond the AWS APIs
    zones: int = 1  # how many zones it hits (the first ones)
    bound: float = 90.0  # the longest the run waits for the zones to be whole again
    needs_hook: bool = True
    # When the run is over, once the act returned and no event is in flight (default: every zone
    # it hit is whole on a new NAT, `on_new_nat`).
    done: Callable[[Run, Snapshot], bool] | None = None
    # After the run, whether it went well or not: what the act changed in the world is put back.
    cleanup: Callable[[Run], None] | None = None


@dataclass
class Run:
    backend: Backend
    lab: Lab | None  # None outside the lab (a real account)
    bridge: EventBridge | None
    scenario: Scenario
    failover: bool
    hook: bool
    zones: list[str]
    started: float = 0.0  # probes start
    acted: float = 0.0
    old: dict[str, str] = field(default_factory=dict)  # zone -> the NAT it had before the act
    abandoned: set[str] = field(default_factory=set)  # instances whose launch was abandoned
    notes: list[str] = field(default_factory=list)
    # What the act read from the emulator at its steps (step -> facts), e.g. a drain's mark and routes.
    seen: dict[str, dict] = field(default_factory=dict)

    groups: dict[str, str] = field(default_factory=dict)  # zone -> its NAT group

    @property
    def autoscaling(self):
        return self.backend.client("autoscaling")

    @property
    def ec2(self):
        return self.backend.client("ec2")

    def group(self, zone: str) -> str:
        return self.groups[zone]

    def mark(self, label: str, zone: str = "") -> None:
        self.backend.mark(label, zone)


# --- what the world looks like ---------------------------------------------------------------------


class Judge:
    """The lab's judgements of the control plane, made with the one state reader (nat_lab.state),
    read again only when the emulator changed."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.reader = StateReader(lab.emulator, lab.world)
        self._generation: int | None = None
        self._state = None

    def state(self):
        generation = self.lab.state.generation
        if generation != self._generation or self._state is None:
            self._generation = generation
            self._state = self.reader.read()
        return self._state

    def own_nat(self, zone: str) -> str | None:
        """The zone's NAT when the zone is whole: converged (EIP, source/dest check off, every
        default route) on the newest instance its group holds InService, no other instance left in
        the group (a refresh or a replacement is over), and its namespace up in the lab."""
        found = self.state().zone(zone)
        owner = found.owner
        if owner is None or len(found.instances) != 1 or not found.converged():
            return None
        return owner.id if owner.id in self.lab.instances.live else None


def judge(lab: Lab) -> Judge:
    found = getattr(lab, "judge", None)
    if found is None:
        found = lab.judge = Judge(lab)
    return found


def own_nat(state: Snapshot, lab: Lab, zone: str) -> str | None:
    """`Judge.own_nat`; `state` (the snapshot a wait hands over) only says when to read again."""
    return judge(lab).own_nat(zone)


def whole(lab: Lab, zones) -> bool:
    return all(own_nat(lab.state, lab, z) for z in zones)


def on_new_nat(run: Run, state: Snapshot | None = None) -> bool:
    """Every zone the run hit is whole on another NAT than the one it had before the act."""
    return all((run.backend.own_nat(z) or run.old[z]) != run.old[z] for z in run.zones)


def on_same_nat(run: Run, state: Snapshot | None = None) -> bool:
    """Every zone the run hit is whole on the NAT it had before the act (a drain gives it back)."""
    return all(run.backend.own_nat(z) == run.old[z] for z in run.zones)


# The role the lab's Fault Injection Service experiments name (the emulator checks none).
LAB_FIS_ROLE = "arn:aws:iam::123456789012:role/nat-lab-fis"


class LabBackend:
    """The lab: the emulator's APIs, the lab's timeline, its judge, and every act of its own."""

    offers = frozenset({LAB, SPOT_INTERRUPTION})
    fis_role_arn = LAB_FIS_ROLE

    def __init__(self, lab: Lab, bridge: EventBridge | None):
        self.lab = lab
        self.bridge = bridge
        self.refresh_warmup = lab.settings.refresh_warmup

    def client(self, service: str):
        return self.lab.emulator.client(service)

    def mark(self, label: str, zone: str = "") -> None:
        self.lab.timeline.add(self.lab.clock(), "action", zone, label)

    def own_nat(self, zone: str) -> str | None:
        return judge(self.lab).own_nat(zone)


def converge_by_hand(lab: Lab) -> None:
    """What an operator does without the hook: each zone's EIP, source/dest check and default route
    onto its group's InService instance."""
    ec2 = lab.emulator.client("ec2")
    for zone in lab.world.zones.values():
        in_service = lab.in_service(zone.zone)
        if not in_service:
            continue
        eni = lab.state.instances[in_service[-1]].eni
        ec2.associate_address(AllocationId=zone.eip_allocation_id, NetworkInterfaceId=eni, AllowReassociation=True)
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
        [table] = zone.route_table_ids
        if lab.state.default_route(table) is not None:
            ec2.replace_route(RouteTableId=table, DestinationCidrBlock=DESTINATION, NetworkInterfaceId=eni)
        else:
            ec2.create_route(RouteTableId=table, DestinationCidrBlock=DESTINATION, NetworkInterfaceId=eni)


# --- the acts --------------------------------------------------------------------------------------


# An instance refresh as the nat-instance module's maintenance policy makes it: launch before
# terminate (min healthy 100 %, max 200 %).
REFRESH_PREFERENCES = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200}


def refresh(run: Run, zone: str) -> None:
    """StartInstanceRefresh of the zone's group, launch before terminate: one more instance, and once
    it is InService and warmed up, the old one terminates through the terminate hook. Its ID is
    kept in `seen` (the trial cancels it if it is interrupted)."""
    run.mark("instance refresh starts", zone)
    started = run.autoscaling.start_instance_refresh(
        AutoScalingGroupName=run.group(zone),
        Strategy="Rolling",
        Preferences={**REFRESH_PREFERENCES, "InstanceWarmup": int(run.backend.refresh_warmup)},
    )
    run.seen.setdefault("instance_refreshes", {})[zone] = started["InstanceRefreshId"]


def planned_refresh(run: Run) -> None:
    refresh(run, run.zones[0])


def terminated_by_group(run: Run) -> None:
    """The group replaces its NAT (its health check found it impaired: SetInstanceHealth Unhealthy,
    as EC2's status checks or the NAT's own self-check would). Under the module's instance
    maintenance policy (min healthy 100 %, max 200 %) the replacement launches first; the old NAT
    enters its terminate hook only once the new one is InService."""
    for zone in run.zones:
        run.mark("group replaces the NAT (Unhealthy)", zone)
        run.autoscaling.set_instance_health(InstanceId=run.old[zone], HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)


def terminated_by_operator(run: Run) -> None:
    """TerminateInstanceInAutoScalingGroup (an operator, a scale-in): no maintenance policy applies;
    the NAT waits in Terminating:Wait while the hook hands its zone over."""
    for zone in run.zones:
        run.mark("TerminateInstanceInAutoScalingGroup", zone)
        run.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=run.old[zone], ShouldDecrementDesiredCapacity=False)


OUTSIDE_SECONDS = 60.0


def check_endpoints_unreachable(run: Run) -> None:
    """Outside trouble: every check endpoint hangs for every NAT for a minute; the internet (the
    probes' echo) works. Nothing may be replaced; every zone reports it (the fleet alarm's metric)."""
    fabric = run.lab.fabric
    run.mark("check endpoints unreachable from every NAT")
    fabric.checks_unreachable = True
    fabric.follow(run.lab.state)
    try:
        time.sleep(OUTSIDE_SECONDS)
    finally:
        fabric.checks_unreachable = False
        fabric.follow(run.lab.state)
        run.mark("check endpoints reachable again")


def killed(run: Run) -> None:
    ids = [run.old[z] for z in run.zones]
    for zone in run.zones:
        run.mark("NAT killed (TerminateInstances)", zone)
    run.ec2.terminate_instances(InstanceIds=ids)


def forwarding_breaks(run: Run) -> None:
    zone = run.zones[0]
    instance = run.lab.instances.live[run.old[zone]]
    run.mark("forwarding breaks (ip_forward=0)", zone)
    netns.sysctl(instance.ns, **{"net.ipv4.ip_forward": 0})


# EC2 warns two minutes before it reclaims a Spot instance; the lab's emulator keeps the order
# (warning, the zone handed over, the replacement, the reclaim) and shortens the notice
# (Settings.spot_notice).


def spot_interruption(run: Run) -> None:
    """EC2's Spot interruption warning for the zone's NAT, then, when the notice runs out, the
    instance reclaimed, unless its group replaced it first: as AWS Fault Injection Service sends
    them, in the lab (the emulator carries the experiment out) and on a real account alike."""
    zone = run.zones[0]
    instance = run.old[zone]
    fis = run.backend.client("fis")
    sts = run.backend.client("sts").get_caller_identity()
    region = run.backend.client("ec2").meta.region_name
    arn = f"arn:aws:ec2:{region}:{sts['Account']}:instance/{instance}"
    template = fis.create_experiment_template(
        **fis_template.spot_interruption(
            arn,
            run.backend.fis_role_arn,
            str(uuid.uuid4()),
            f"nat-asg-hook: Spot interruption of {instance}",
            {"nat-asg-hook:purpose": "spot-interruption"},
        )
    )["experimentTemplate"]["id"]
    run.seen.setdefault("experiments", {})[zone] = {"template": template}
    run.mark("EC2 Spot Instance Interruption Warning (FIS)", zone)
    experiment = fis.start_experiment(clientToken=str(uuid.uuid4()), experimentTemplateId=template)["experiment"]["id"]
    run.seen["experiments"][zone]["experiment"] = experiment


def end_experiments(run: Run) -> list[str]:
    """After the run, whatever became of it: each experiment it started stopped if it still runs,
    and its template deleted. Returns what it did."""
    done = []
    fis = run.backend.client("fis")
    for zone, found in run.seen.get("experiments", {}).items():
        try:
            if "experiment" in found:
                status = fis.get_experiment(id=found["experiment"])["experiment"]["state"]["status"]
                if status in ("pending", "initiating", "running"):
                    fis.stop_experiment(id=found["experiment"])
                    done.append(f"{zone}: experiment {found['experiment']} stopped")
            fis.delete_experiment_template(id=found["template"])
        except Exception as exc:  # noqa: BLE001 (said; the other zones' still end)
            done.append(f"{zone}: experiment {found}: {exc}")
    return done


# Spot with an on-demand fallback: the lab's hook is configured with it (a group that buys
# on-demand never sees the difference); the wait before Spot is tried again outlasts every run.
SPOT_RETRY_SECONDS = 3600
SPOT_TAG = "nat-asg-hook:spot-unavailable"


def hook_config(lab: Lab, failover: bool) -> dict:
    """The lab's hook configuration: the world's, in the mode's failover, with the Spot fallback."""
    return lab.world.config(failover=failover, spot_retry_seconds=SPOT_RETRY_SECONDS)


def buy_spot(autoscaling, group) -> None:
    """The group (a `nat_lab.world.Group`) buys Spot, as the nat-instance module's capacity
    "spot-with-fallback" makes it: a mixed instances policy over its launch template, no on-demand
    base, 0 % on-demand. Its next launch is a Spot instance."""
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=group.name,
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": group.launch_template, "Version": "$Latest"},
                "Overrides": [{"InstanceType": "t4g.nano"}, {"InstanceType": "t4g.micro"}],
            },
            "InstancesDistribution": {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 0},
        },
    )


def purchase(run: Run, zone: str) -> dict:
    """The group's on-demand base capacity and Spot mark, as the emulator holds them now."""
    found = run.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[run.group(zone)])["AutoScalingGroups"][0]
    distribution = (found.get("MixedInstancesPolicy") or {}).get("InstancesDistribution") or {}
    return {
        "on_demand_base_capacity": int(distribution.get("OnDemandBaseCapacity", 0)),
        "spot_unavailable": next((t["Value"] for t in found.get("Tags", []) if t["Key"] == SPOT_TAG), None),
    }


def spot_unavailable(run: Run) -> None:
    """The zone's Spot NAT is warned and reclaimed (as `spot-interruption`) while its AZ has no Spot
    capacity left: the group's Spot launch fails (`EC2 Instance Launch Unsuccessful`), the hook
    switches the group to on-demand, and Auto Scaling's next attempt launches an on-demand NAT,
    which takes the zone back. Spot stays short for the whole run."""
    zone = run.zones[0]
    group = run.group(zone)
    buy_spot(run.autoscaling, run.lab.world.zones[zone])
    run.lab.emulator.spot_short(group)
    run.mark("no Spot capacity left in the zone", zone)
    run.seen["before"] = purchase(run, zone)
    run.seen["failures_before"] = failed_launches(run, zone)
    spot_interruption(run)


def failed_launches(run: Run, zone: str) -> int:
    """How many launches of the zone's group have failed since the emulator started."""
    return sum(1 for f in run.lab.emulator.state().get("launch_failures", []) if f["group"] == run.group(zone))


def spot_back(run: Run) -> None:
    """After the run, whatever became of it: what the group buys now and how many launches failed,
    then Spot capacity is back for the runs that follow."""
    zone = run.zones[0]
    run.seen["after"] = purchase(run, zone)
    run.seen["launch_failures"] = failed_launches(run, zone) - run.seen.pop("failures_before", 0)
    run.lab.emulator.spot_short(run.group(zone), short=False)
    end_experiments(run)


# An operator's maintenance: `nat-asg-hook drain`, a few seconds on the sibling (the schedule fires
# once meanwhile), then `nat-asg-hook undrain`.
DRAIN_TAG = "nat-asg-hook:drained"
DRAIN_HOLD = 5.0
OPERATOR = "operator"  # $USER, who the drain mark names


def look(run: Run, zone: str) -> dict:
    """The zone as the emulator has it now (read afresh, not the follower's copy): the group's drain
    mark, the group whose NAT each of its default routes goes through, the NAT holding its EIP, and
    the zone's NAT before the act: its EC2 state and its group's lifecycle state."""
    group = run.group(zone)
    found = run.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    state = judge(run.lab).reader.read()
    holder = state.holder(state.zone(group).eip.eni)
    nat = state.instances.get(run.old[zone])
    return {
        "group": group,
        "mark": next((t["Value"] for t in found.get("Tags", []) if t["Key"] == DRAIN_TAG), None),
        "routes_via": state.serving(group),
        "eip_on": holder.id if holder else None,
        "nat": {"id": run.old[zone], "state": nat.state if nat else None, "lifecycle": nat.lifecycle if nat else None},
    }


def operator(run: Run, *args: str) -> hook_lab.Run:
    """The hook's CLI as an operator runs it, with the lab's hook configuration (the mode's failover)."""
    config = run.lab.run_dir / f"hook-config-failover-{'on' if run.failover else 'off'}.json"
    config.write_text(json.dumps(hook_config(run.lab, run.failover)))
    return hook_lab.run(dict(run.lab.emulator.env(), USER=OPERATOR), *args, config=config)


def refusal(done: hook_lab.Run) -> str | None:
    """Why the command failed (its last line on stderr), or None when it did not."""
    return None if done.code == 0 else " ".join(done.stderr.strip().splitlines()[-1:])


def drain(run: Run) -> None:
    """`nat-asg-hook drain` of the zone's group: the zone goes to a sibling's NAT while its own keeps
    running; the schedule keeps it there; after a few seconds `undrain` gives it back (EIP, which
    never moved, then routes). With failover off the hook refuses the drain (exit 2) and nothing
    changes: the act records the refusal and the zone stays on its NAT."""
    zone = run.zones[0]
    group = run.group(zone)
    run.mark("nat-asg-hook drain", zone)
    drained = operator(run, "drain", group, "--reason", "nat-lab maintenance")
    run.seen["drain"] = {"exit": drained.code, "error": refusal(drained), **look(run, zone)}
    if drained.code != 0:
        run.notes.append(f"{zone}: drain refused (exit {drained.code}): {refusal(drained)}")
        return
    run.mark("the schedule fires while drained")
    run.bridge.reconcile_now()
    time.sleep(DRAIN_HOLD)
    run.lab.wait(lambda s: not run.bridge.pending(), 30)
    run.seen["held"] = look(run, zone)
    run.mark("nat-asg-hook undrain", zone)
    undrained = operator(run, "undrain", group)
    run.seen["undrain"] = {"exit": undrained.code, "error": refusal(undrained), **look(run, zone)}
    if undrained.code != 0:
        run.notes.append(f"{zone}: undrain failed (exit {undrained.code}): {refusal(undrained)}")


def self_check_fails(run: Run) -> None:
    """A refresh whose first new instance has no egress (its network is broken): its self-check
    fails, it abandons its launch; the group launches another, which works."""
    zone = run.zones[0]
    lab = run.lab
    blocked: list[str] = []

    def block_first(instance_id: str, booted_zone: str) -> None:
        if booted_zone == zone and not blocked:
            blocked.append(instance_id)
            lab.fabric.blocked.add(instance_id)
            run.abandoned.add(instance_id)
            lab.timeline.add(lab.clock(), "action", zone, f"{instance_id}: egress blocked")

    lab.on_boot.append(block_first)
    run.seen["on_boot"] = block_first
    refresh(run, zone)


def stop_blocking(run: Run) -> None:
    """After the run: the next instance to boot is not blocked."""
    hook = run.seen.pop("on_boot", None)
    if hook in run.lab.on_boot:
        run.lab.on_boot.remove(hook)


def launch_event_lost(run: Run) -> None:
    zone = run.zones[0]
    group = run.group(zone)
    old = run.old[zone]
    run.bridge.lose(
        lambda e: (
            e["detail-type"] == LAUNCH_SUCCESSFUL
            and e["detail"].get("AutoScalingGroupName") == group
            and e["detail"].get("EC2InstanceId") != old
        )
    )
    run.mark("the replacement's Launch Successful will be lost", zone)
    killed(run)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("planned-refresh", "Planned instance refresh (launch before terminate)", planned_refresh, needs=PORTABLE),
        Scenario(
            "terminated-by-group",
            "NAT replaced by its group (health replacement, launch before terminate)",
            terminated_by_group,
            needs=PORTABLE,
        ),
        Scenario(
            "terminated-by-operator",
            "NAT terminated in its group by an operator (no maintenance policy)",
            terminated_by_operator,
            needs=PORTABLE,
        ),
        Scenario("killed", "NAT killed outside its group (TerminateInstances)", killed, needs=PORTABLE),
        Scenario("forwarding-breaks", "NAT whose forwarding breaks (it takes itself out and reports)", forwarding_breaks, bound=150.0),
        Scenario(
            "spot-interruption",
            "Spot NAT warned of its interruption (EC2's two-minute notice; the lab's is shortened)",
            spot_interruption,
            needs=frozenset({SPOT_INTERRUPTION}),
            cleanup=end_experiments,
        ),
        Scenario(
            "spot-unavailable",
            "Spot NAT reclaimed with no Spot capacity left: the group falls back to on-demand",
            spot_unavailable,
            cleanup=spot_back,
        ),
        Scenario("drain", "Zone drained by hand for maintenance, then undrained (its NAT keeps running)", drain, done=on_same_nat),
        Scenario(
            "self-check-fails",
            "New NAT fails its self-check (ABANDON): nothing may move",
            self_check_fails,
            bound=150.0,
            cleanup=stop_blocking,
        ),
        Scenario("launch-event-lost", "NAT killed, its replacement's launch event lost (the schedule heals)", launch_event_lost),
        Scenario("two-zones-down", "Two zones' NATs killed at once", killed, zones=2),
        Scenario(
            "check-endpoints-unreachable",
            "Check endpoints unreachable from every NAT for 60 s, the internet fine: nothing replaced",
            check_endpoints_unreachable,
            zones=3,
            bound=OUTSIDE_SECONDS + 15.0,
        ),
        Scenario("no-hook", "Baseline, no hook at all: NAT killed", killed, bound=15.0, needs_hook=False),
    )
}


# --- running one -----------------------------------------------------------------------------------


def settle(lab: Lab, bridge: EventBridge | None, timeout: float = 60.0) -> bool:
    """Wait until every zone is whole; a reconcile is asked for when it takes long (the schedule
    would come), and without a hook the lab converges by hand."""
    zones = list(lab.world.zones)
    if lab.wait(lambda s: whole(lab, zones), min(10.0, timeout)):
        return True
    if bridge is None or bridge.target is None:
        converge_by_hand(lab)
    else:
        bridge.reconcile_now()
    return lab.wait(lambda s: whole(lab, zones), timeout)


def execute(
    lab: Lab, bridge: EventBridge, scenario: Scenario, failover: bool, hook: bool, zones: list[str] | None = None
) -> tuple[Run, dict]:
    """One run: returns it and the probes per zone. `zones`: the zones it hits (default: the first
    `scenario.zones`)."""
    zones = zones or list(lab.world.zones)[: scenario.zones]
    groups = {z: g.name for z, g in lab.world.zones.items()}
    run = Run(LabBackend(lab, bridge), lab, bridge, scenario, failover, hook, zones, groups=groups)
    run.old = {z: own_nat(lab.state, lab, z) or "" for z in lab.world.zones}
    if not scenario.needs <= run.backend.offers:
        raise ValueError(f"{scenario.name} needs {', '.join(sorted(scenario.needs - run.backend.offers))}")
    lab.start_probes()
    run.started = lab.clock()
    time.sleep(LEAD_IN)
    over = scenario.done or on_new_nat

    def done(state) -> bool:
        if not scenario.needs_hook or not hook:
            return False  # nothing will make it whole: the run lasts its bound
        return over(run, state) and not bridge.pending()

    try:
        run.acted = lab.clock()
        lab.timeline.add(run.acted, "act", "", scenario.name)
        scenario.act(run)
        lab.wait(done, max(0.0, scenario.bound - (lab.clock() - run.acted)))
        time.sleep(TAIL)
    finally:
        if scenario.cleanup is not None:
            scenario.cleanup(run)
    probes = lab.stop_probes()
    run.notes.append(f"window {run.started:.1f}-{lab.clock():.1f} s")
    return run, probes
