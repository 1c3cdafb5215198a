"""What only the data-plane lab needs of the emulator, on top of nat_lab's moto patches
(`nat_lab.moto_shims`: Auto Scaling's lifecycle, Pending:Wait, Terminating:Wait, heartbeats,
Unhealthy replaced), and a change feed for the fabric.

Loaded into the patched moto server process by `Moto(data_plane=True)`
(`python -m nat_lab.moto_shims.server --data-plane`), which checks it at start like every patch:

- the launch template's `AssociatePublicIpAddress` gives a group's instance a temporary public IP
  (moto only honours it for launch configurations and `RunInstances`): the NAT proves itself with
  it before it holds the EIP;
- an instance the group holds that stops running outside the group (TerminateInstances) is
  replaced after `LAB_HEALTH_CHECK_SECONDS` (the group's health check; moto replaces it at once);
- a group's instance maintenance policy (`InstanceMaintenancePolicy`, which moto ignores): with a
  minimum healthy percentage of 100, an InService instance marked Unhealthy stays in service while
  its replacement launches, and enters its terminate hook only once the replacement is InService
  (launch before terminate, as Auto Scaling replaces an unhealthy instance under such a policy);
- events put on a bus (PutEvents: the NATs' "NAT Self-Check Failed") are kept, in order, for the
  EventBridge stand-in to deliver by the hook's rules (moto matches rules to its own targets only);
- Spot capacity running short (`POST /lab-api/spot-short?group=G&short=1`): while a group is short
  and its mixed instances policy buys Spot (no on-demand base, less than 100 % on-demand), its launch
  fails as Auto Scaling's does, recorded for the EventBridge stand-in as an `EC2 Instance Launch
  Unsuccessful` ("Could not launch Spot Instances. InsufficientInstanceCapacity"), and is tried again
  every `LAUNCH_RETRY_SECONDS`; a group that buys on-demand launches;
- Auto Scaling instance refresh (moto has none): StartInstanceRefresh (Rolling; Preferences
  MinHealthyPercentage, MaxHealthyPercentage, InstanceWarmup; the others accepted and ignored),
  DescribeInstanceRefreshes, CancelInstanceRefresh, in AWS's shapes and errors
  (InstanceRefreshInProgress, ActiveInstanceRefreshNotFound, ValidationError), driven by `tick`,
  one instance at a time (`_drive_refresh`): with a max healthy percentage of 200 or more (launch
  before terminate) the desired capacity rises by one, and once a new instance has been InService
  for the warm-up an original one is terminated with decrement (through the terminate hook); below
  200 an original one is terminated first (no decrement: the group launches its replacement) and the
  next waits for that replacement's warm-up. Successful once no original instance is left in the
  group. Cancelled at once; a rise not yet spent is undone, and the instance it launched leaves
  through the terminate hook (the original ones stay: see `cancel_refresh`). Defaults: the group's
  instance maintenance policy's percentages (else 90/100, as AWS), the warm-up the group's
  DefaultInstanceWarmup (else 0: AWS would take the health check grace period). Not modelled:
  batches (AWS replaces several at once when the percentages allow), checkpoints, skip matching,
  rollback, alarms, desired configuration, warm pools; the rise shows in DesiredCapacity (AWS
  launches above it without changing it);
- a group's Spot launch is a Spot instance (`InstanceLifecycle` spot);
- Fault Injection Service's Spot interruption (moto keeps experiments and does nothing): an
  experiment with `aws:ec2:send-spot-instance-interruptions` has EC2 warn each target instance
  (kept, in order, for the EventBridge stand-in to deliver as EC2's warning) and reclaim it
  (TerminateInstances) when its notice runs out (`durationBeforeInterruption`, or the lab's
  shortened `LAB_SPOT_NOTICE_SECONDS`); StopExperiment before then spares it. Unlike AWS's, it
  interrupts any instance, Spot or not (the lab's NATs buy on-demand); the trial checks a real
  account's NAT is Spot before it plans the scenario;
- SSM Run Command on the lab's hosts (`POST /lab-api/ssm-hosts`, a JSON map instance id -> network
  namespace, replacing the previous one): DescribeInstanceInformation, SendCommand
  (AWS-RunShellScript, run with `ip netns exec`), GetCommandInvocation, ListCommands,
  ListCommandInvocations and CancelCommand are answered by `nat_lab.lab.ssm_hosts`, outside the lock
  (see its docstring); every other SSM action is moto's. A moto-api reset kills every command still
  running and clears the hosts;
- `GET /lab-api/state?since=G&wait=S` answers with a snapshot of everything the data plane follows
  (instances, ENIs, public addresses, source/dest checks, route tables, groups, open lifecycle
  actions), as soon as the generation (a counter of mutating requests and of the changes the groups
  make on their own) exceeds G, or after S seconds. One lock serialises every request (but the SSM
  ones above), the snapshot and the background behaviour, so a snapshot is never half a change.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nat_lab import fis
from nat_lab.constants import ACCOUNT, LEAVING_STATES, REGION
from nat_lab.lab import ssm_hosts

READS = ("Describe", "Get", "List")


class Feed:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.generation = 0

    def bump(self) -> None:
        with self.lock:
            self.generation += 1
            self.changed.notify_all()


FEED = Feed()
LEFT_AT: dict[str, float] = {}  # instance id -> when the group saw it stop running
POLICIES: dict[str, tuple[int, int]] = {}  # group -> its instance maintenance policy (min, max healthy %)
REPLACING: dict[str, str] = {}  # instance id -> its group: Unhealthy, kept in service until its replacement is
PUT_EVENTS: list[dict] = []  # the entries PutEvents accepted, in order
SPOT_SHORT: set[str] = set()  # groups whose Spot launches fail
LAUNCH_FAILURES: list[dict] = []  # the launches that failed, in order: group, zone, message
LAST_FAILURE: dict[str, float] = {}  # group -> when its launch last failed
LAUNCH_RETRY_SECONDS = 2.0  # Auto Scaling tries a failed launch again (with a backoff: shortened)
WARMUPS: dict[str, int] = {}  # group -> its DefaultInstanceWarmup, when it has one
SPOT_WARNINGS: list[dict] = []  # EC2's Spot interruption warnings FIS sent, in order: instance, experiment
RECLAIMS: dict[str, tuple[float, str]] = {}  # instance -> (when EC2 reclaims it, the experiment)
SPOT_SHORTAGE = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that "
    "matches your request. Launching EC2 instance failed."
)


def _backends():
    from moto.autoscaling.models import autoscaling_backends
    from moto.ec2.models import ec2_backends

    return autoscaling_backends[ACCOUNT][REGION], ec2_backends[ACCOUNT][REGION]


def install() -> None:
    """On top of the lifecycle shim's group behaviour: the temporary public IP, and a health check
    that takes its time to notice an instance terminated outside the group."""
    from moto.autoscaling import models
    from moto.ec2.utils import random_public_ip

    launch = models.FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        if count_needed > 0 and self.name in SPOT_SHORT and _buys_spot(self):
            now = time.monotonic()
            if now - LAST_FAILURE.get(self.name, -LAUNCH_RETRY_SECONDS) >= LAUNCH_RETRY_SECONDS:
                LAST_FAILURE[self.name] = now
                zone = self.availability_zones[0] if self.availability_zones else ""
                LAUNCH_FAILURES.append({"group": self.name, "zone": zone, "message": SPOT_SHORTAGE})
            return
        before = {s.instance.id for s in self.instance_states}
        launch(self, count_needed, propagated_tags)
        if _buys_spot(self):  # a Spot instance says so (DescribeInstances' InstanceLifecycle), as EC2's do
            for state in self.instance_states:
                if state.instance.id not in before:
                    state.instance.lifecycle = "spot"
        data = {}
        if self.ec2_launch_template is not None:
            data = self.ec2_launch_template.get_version(self.launch_template_version).data
        interfaces = data.get("NetworkInterfaces") or [{}]
        if str(interfaces[0].get("AssociatePublicIpAddress", "")).lower() != "true":
            return
        for state in self.instance_states:
            eni = state.instance.nics[0]
            if state.instance.id not in before and not eni.public_ip:
                eni.public_ip_auto_assign = True
                eni.public_ip = random_public_ip()

    def notify_terminate_instances(self, instance_ids):
        """moto takes an instance terminated outside the group out of it and replaces it at once;
        the group's health check does (`tick`), after its grace."""

    from moto.autoscaling import responses

    create_group = responses.AutoScalingResponse.create_auto_scaling_group
    update_group = responses.AutoScalingResponse.update_auto_scaling_group
    set_instance_health = models.AutoScalingBackend.set_instance_health  # the lifecycle shim's

    def remember_policy(response) -> None:
        query = response.querystring
        warmup = query.get("DefaultInstanceWarmup", [None])[0]
        if warmup is not None:
            WARMUPS[response._get_param("AutoScalingGroupName")] = int(warmup)
        low = query.get("InstanceMaintenancePolicy.MinHealthyPercentage", [None])[0]
        high = query.get("InstanceMaintenancePolicy.MaxHealthyPercentage", [None])[0]
        if low is not None and high is not None:
            POLICIES[response._get_param("AutoScalingGroupName")] = (int(low), int(high))

    def create_auto_scaling_group(self):
        remember_policy(self)
        return create_group(self)

    def update_auto_scaling_group(self):
        remember_policy(self)
        return update_group(self)

    def health(self, instance_id, health_status):
        """Launch before terminate: under a policy of min healthy 100 % (and room above: max > 100),
        an Unhealthy InService instance waits for its replacement (`tick` terminates it then)."""
        state = next((s for g in self.autoscaling_groups.values() for s in g.instance_states if s.instance.id == instance_id), None)
        group = state.instance.autoscaling_group if state is not None else None
        low, high = POLICIES.get(group.name, (0, 100)) if group is not None else (0, 100)
        if health_status == "Unhealthy" and low >= 100 and high > 100 and state.lifecycle_state == "InService":
            state.health_status = "Unhealthy"
            if instance_id not in REPLACING:
                REPLACING[instance_id] = group.name
                group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
            return
        set_instance_health(self, instance_id, health_status)

    from moto.events import models as events_models

    put_events = events_models.EventsBackend.put_events

    def record_put_events(self, entries):
        answers = put_events(self, entries)
        for entry, answer in zip(entries, answers, strict=False):
            if answer.get("EventId"):
                try:
                    detail = json.loads(entry.get("Detail") or "{}")
                except ValueError:
                    detail = {}
                PUT_EVENTS.append(
                    {
                        "id": answer["EventId"],
                        "region": self.region_name,
                        "source": entry.get("Source"),
                        "detail-type": entry.get("DetailType"),
                        "bus": entry.get("EventBusName") or "default",
                        "detail": detail,
                    }
                )
        return answers

    events_models.EventsBackend.put_events = record_put_events
    _install_fis()
    responses.AutoScalingResponse.start_instance_refresh = start_instance_refresh
    responses.AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes
    responses.AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh
    ssm_hosts.install(_host_details)
    models.FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    models.AutoScalingBackend.notify_terminate_instances = notify_terminate_instances
    models.AutoScalingBackend.set_instance_health = health
    responses.AutoScalingResponse.create_auto_scaling_group = create_auto_scaling_group
    responses.AutoScalingResponse.update_auto_scaling_group = update_auto_scaling_group


def notice_seconds(action: dict) -> float:
    """How long after its warning FIS has EC2 reclaim the instance: the action's
    durationBeforeInterruption (ISO 8601, PT2M to PT15M), or the lab's shortened notice
    (`LAB_SPOT_NOTICE_SECONDS`)."""
    shortened = os.environ.get("LAB_SPOT_NOTICE_SECONDS")
    if shortened:
        return float(shortened)
    found = re.fullmatch(r"PT(?:(\d+)M)?(?:(\d+)S)?", (action.get("parameters") or {}).get("durationBeforeInterruption", ""))
    if not found or not any(found.groups()):
        return 120.0
    return int(found.group(1) or 0) * 60.0 + int(found.group(2) or 0)


def _install_fis() -> None:
    """Fault Injection Service's Spot interruption (moto keeps templates and experiments, and does
    nothing): StartExperiment with `aws:ec2:send-spot-instance-interruptions` has EC2 warn each
    target instance (recorded for the EventBridge stand-in) and reclaim it when the notice runs
    out (`tick`); StopExperiment before then spares it."""
    from moto.fis.models import FISBackend

    start_experiment = FISBackend.start_experiment
    stop_experiment = FISBackend.stop_experiment

    def start(self, client_token, experiment_template_id, experiment_options=None, tags=None):
        answer = start_experiment(self, client_token, experiment_template_id, experiment_options, tags)
        experiment = answer["id"]
        template = self.experiment_templates[experiment_template_id]
        for action in (template.actions or {}).values():
            if action.get("actionId") != fis.SPOT_INTERRUPTION_ACTION:
                continue
            due = time.monotonic() + notice_seconds(action)
            for target in (action.get("targets") or {}).values():
                for arn in (template.targets or {}).get(target, {}).get("resourceArns") or []:
                    instance = arn.rsplit("/", 1)[-1]
                    SPOT_WARNINGS.append({"instance": instance, "experiment": experiment, "region": self.region_name})
                    RECLAIMS[instance] = (due, experiment)
        FEED.bump()
        return answer

    def stop(self, id):
        for instance, (_, experiment) in list(RECLAIMS.items()):
            if experiment == id:
                RECLAIMS.pop(instance, None)
        return stop_experiment(self, id)

    FISBackend.start_experiment = start
    FISBackend.stop_experiment = stop


def _reclaim_spot(ec2) -> bool:
    """EC2 reclaims each warned Spot instance whose notice ran out, if it still runs."""
    changed = False
    now = time.monotonic()
    for instance, (due, _) in list(RECLAIMS.items()):
        if now < due:
            continue
        RECLAIMS.pop(instance, None)
        try:
            found = ec2.get_instance(instance)
        except Exception:  # noqa: BLE001 (an instance EC2 no longer knows: nothing to reclaim)
            continue
        if found._state.name in ("pending", "running"):
            ec2.terminate_instances([instance])
            changed = True
    return changed


def _buys_spot(group) -> bool:
    """The group's one instance is Spot: a mixed instances policy with no on-demand base and less than
    100 % on-demand above it."""
    distribution = (group.mixed_instances_policy or {}).get("InstancesDistribution") or {}
    if not group.mixed_instances_policy:
        return False
    base = int(distribution.get("OnDemandBaseCapacity", 0) or 0)
    percent = int(distribution.get("OnDemandPercentageAboveBaseCapacity", 100) or 0)
    return base < 1 and percent < 100


def _retry_failed_launches(autoscaling) -> bool:
    """Auto Scaling tries a failed launch again: a short group below its desired capacity launches
    (or fails again) every LAUNCH_RETRY_SECONDS."""
    from nat_lab.moto_shims import lifecycle

    changed = False
    for name in list(SPOT_SHORT | set(LAST_FAILURE)):
        group = autoscaling.autoscaling_groups.get(name)
        if group is None:
            continue
        counted = [s for s in group.instance_states if s.lifecycle_state in lifecycle.COUNTED and s.instance.id not in REPLACING]
        if len(counted) < (group.desired_capacity or 0) and not any(
            s.lifecycle_state == "InService" and s.instance.id in REPLACING for s in group.instance_states
        ):
            before = len(LAUNCH_FAILURES), len(group.instance_states)
            group.set_desired_capacity(group.desired_capacity)
            changed |= before != (len(LAUNCH_FAILURES), len(group.instance_states))
        elif name not in SPOT_SHORT:
            LAST_FAILURE.pop(name, None)
    return changed


def set_spot_short(group: str, short: bool) -> None:
    with FEED.lock:
        if short:
            SPOT_SHORT.add(group)
        else:
            SPOT_SHORT.discard(group)
    FEED.bump()


def tick() -> bool:
    """The group's health check: an instance it holds that stopped running outside the group leaves
    it, Unhealthy, after `LAB_HEALTH_CHECK_SECONDS`, and the group launches its replacement. True
    when something changed."""
    from nat_lab.moto_shims import lifecycle

    autoscaling, _ = _backends()
    changed = False
    now = time.monotonic()
    grace = float(os.environ.get("LAB_HEALTH_CHECK_SECONDS", "0"))
    for group in list(autoscaling.autoscaling_groups.values()):
        for state in list(group.instance_states):
            if state.instance._state.name not in LEAVING_STATES or state.lifecycle_state.startswith("Terminating"):
                continue
            seen = LEFT_AT.setdefault(state.instance.id, now)
            if now - seen < grace:
                continue
            LEFT_AT.pop(state.instance.id, None)
            state.health_status = "Unhealthy"
            book = lifecycle.ledger(autoscaling)
            book.active[:] = [a for a in book.active if a.instance != state.instance.id]
            group.instance_states.remove(state)
            group.set_desired_capacity(group.desired_capacity)
            changed = True
    before = len(LAUNCH_FAILURES)
    changed |= _replace_unhealthy(autoscaling)
    changed |= _drive_refreshes(autoscaling)
    changed |= _retry_failed_launches(autoscaling)
    changed |= _reclaim_spot(_backends()[1])
    return changed or len(LAUNCH_FAILURES) != before


def _replace_unhealthy(autoscaling) -> bool:
    """Launch before terminate (a maintenance policy of min healthy 100 %): an Unhealthy instance
    kept in service enters its terminate hook once a replacement is InService; when its replacement
    was abandoned (none InService or pending any more), the group launches another."""
    from nat_lab.moto_shims import lifecycle

    changed = False
    for instance_id, name in list(REPLACING.items()):
        group = autoscaling.autoscaling_groups.get(name)
        state = next((s for s in group.instance_states if s.instance.id == instance_id), None) if group else None
        if state is None or state.lifecycle_state != "InService":
            REPLACING.pop(instance_id, None)
            continue
        others = [s for s in group.instance_states if s.instance.id != instance_id and s.instance.id not in REPLACING]
        if any(s.lifecycle_state == "InService" and s.health_status != "Unhealthy" for s in others):
            REPLACING.pop(instance_id, None)
            autoscaling.terminate_instance(instance_id, False)
            changed = True
        elif not any(s.lifecycle_state in lifecycle.COUNTED for s in others):
            group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
            changed = True
    return changed


# --- instance refresh -----------------------------------------------------------------------------

ACTIVE = ("Pending", "InProgress", "Cancelling")


@dataclass
class Refresh:
    id: str
    group: str
    min_healthy: int
    max_healthy: int
    warmup: float
    originals: set[str]  # the group's instances at the start (those not already terminating)
    started: datetime
    status: str = "Pending"
    reason: str = "Waiting for the instance refresh to start"
    ended: datetime | None = None
    raised: bool = False  # launch before terminate: the desired capacity is one above the group's own
    stepping: bool = False  # terminate first: an original is terminating, its replacement not yet warm
    credited: set[str] = field(default_factory=set)  # new instances a step has already counted
    in_service_since: dict[str, float] = field(default_factory=dict)  # new instance -> first seen InService
    remaining: int = 0

    @property
    def launch_first(self) -> bool:
        return self.max_healthy >= 200

    def as_dict(self) -> dict:
        total = len(self.originals)
        done = 100 if self.status == "Successful" else (100 * (total - self.remaining) // total if total else 0)
        found = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "StatusReason": self.reason,
            "StartTime": self.started,
            "PercentageComplete": done,
            "InstancesToUpdate": self.remaining,
            "ProgressDetails": {"LivePoolProgress": {"PercentageComplete": done, "InstancesToUpdate": self.remaining}},
            "Preferences": {
                "MinHealthyPercentage": self.min_healthy,
                "MaxHealthyPercentage": self.max_healthy,
                "InstanceWarmup": int(self.warmup),
                "SkipMatching": False,
                "AutoRollback": False,
                "ScaleInProtectedInstances": "Ignore",
                "StandbyInstances": "Ignore",
            },
            "Strategy": "Rolling",
        }
        if self.ended is not None:
            found["EndTime"] = self.ended
        return found

    def end(self, status: str, reason: str) -> None:
        self.status, self.reason, self.ended = status, reason, datetime.now(UTC)


def refreshes(autoscaling) -> list[Refresh]:
    """The backend's instance refreshes, oldest first (a moto-api reset starts a new list)."""
    found = getattr(autoscaling, "_nat_lab_refreshes", None)
    if found is None:
        found = autoscaling._nat_lab_refreshes = []
    return found


def _int(value, default: int) -> int:
    return default if value in (None, "") else int(value)


def start_instance_refresh(self):
    """StartInstanceRefresh: Rolling only; one active refresh per group (InstanceRefreshInProgress)."""
    from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
    from moto.core.responses import ActionResult

    name = self._get_param("AutoScalingGroupName")
    autoscaling = self.autoscaling_backend
    group = autoscaling.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup {name} not found")
    strategy = self._get_param("Strategy") or "Rolling"
    if strategy != "Rolling":
        raise ValidationError(f"The strategy {strategy} is not supported by the lab's emulator: Rolling only")
    mine = refreshes(autoscaling)
    if any(r.group == name and r.status in ACTIVE for r in mine):
        raise AutoscalingClientError(
            "InstanceRefreshInProgress", "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."
        )
    preferences = self._get_param("Preferences") or {}
    policy_min, policy_max = POLICIES.get(name, (90, 100))
    low = _int(preferences.get("MinHealthyPercentage"), policy_min)
    high = _int(preferences.get("MaxHealthyPercentage"), policy_max)
    if not 0 <= low <= 100 or not 100 <= high <= 200 or high - low > 100:
        raise ValidationError(
            f"Invalid healthy percentages: MinHealthyPercentage {low} (0-100), MaxHealthyPercentage {high} (100-200), at most 100 apart"
        )
    warmup = _int(preferences.get("InstanceWarmup"), WARMUPS.get(name, 0))
    originals = {s.instance.id for s in group.instance_states if not s.lifecycle_state.startswith("Terminating")}
    refresh = Refresh(str(uuid.uuid4()), name, low, high, float(warmup), originals, datetime.now(UTC), remaining=len(originals))
    mine.append(refresh)
    return ActionResult({"InstanceRefreshId": refresh.id})


def describe_instance_refreshes(self):
    """DescribeInstanceRefreshes: the group's refreshes, newest first, optionally by id."""
    from moto.core.responses import ActionResult

    name = self._get_param("AutoScalingGroupName")
    ids = set(self._get_param("InstanceRefreshIds") or [])
    found = [r.as_dict() for r in reversed(refreshes(self.autoscaling_backend)) if r.group == name and (not ids or r.id in ids)]
    limit = _int(self._get_param("MaxRecords"), 50)
    start = _int(self._get_param("NextToken"), 0)
    answer = {"InstanceRefreshes": found[start : start + limit]}
    if start + limit < len(found):
        answer["NextToken"] = str(start + limit)
    return ActionResult(answer)


def cancel_instance_refresh(self):
    """CancelInstanceRefresh: the group's active refresh is Cancelled (ActiveInstanceRefreshNotFound
    when there is none)."""
    from moto.autoscaling.exceptions import AutoscalingClientError
    from moto.core.responses import ActionResult

    name = self._get_param("AutoScalingGroupName")
    autoscaling = self.autoscaling_backend
    refresh = next((r for r in refreshes(autoscaling) if r.group == name and r.status in ACTIVE), None)
    if refresh is None:
        raise AutoscalingClientError(
            "ActiveInstanceRefreshNotFound", f"No in progress or pending Instance Refresh found for Auto Scaling group {name}"
        )
    cancel_refresh(autoscaling, refresh)
    return ActionResult({"InstanceRefreshId": refresh.id})


def cancel_refresh(autoscaling, refresh: Refresh) -> None:
    """Cancelled at once (AWS passes through Cancelling). What is replaced stays replaced (as AWS: a
    cancel rolls nothing back). A rise of the desired capacity not yet spent (launch before
    terminate: its new instance not yet warm, no original terminated for it) is undone: the desired
    capacity goes back to what it was, and the newest instance the refresh launched for it (if any)
    leaves through the terminate hook, as the group's scale-in would take the new instance and not
    the original (moto's own scale-in would take the oldest, without the hook)."""
    from nat_lab.moto_shims import lifecycle

    refresh.end("Cancelled", "The instance refresh was cancelled by a user request.")
    group = autoscaling.autoscaling_groups.get(refresh.group)
    if group is None or not refresh.raised:
        return
    refresh.raised = False
    spare = [
        s
        for s in group.instance_states
        if s.instance.id not in refresh.originals and s.instance.id not in refresh.credited and s.lifecycle_state in lifecycle.COUNTED
    ]
    group.desired_capacity = max((group.desired_capacity or 0) - 1, 0)
    if spare:
        autoscaling.terminate_instance(spare[-1].instance.id, False)
    else:
        group.set_desired_capacity(group.desired_capacity)


def _drive_refreshes(autoscaling) -> bool:
    changed = False
    for refresh in refreshes(autoscaling):
        if refresh.status in ("Pending", "InProgress"):
            changed |= _drive_refresh(autoscaling, refresh)
    return changed


def _drive_refresh(autoscaling, refresh: Refresh) -> bool:
    """One step of a refresh, one original instance at a time; True when it changed something."""
    group = autoscaling.autoscaling_groups.get(refresh.group)
    if group is None:
        refresh.end("Cancelled", "The Auto Scaling group was deleted.")
        return True
    changed = False
    if refresh.status == "Pending":
        refresh.status, refresh.reason = "InProgress", "Waiting for instances to warm up before continuing."
        changed = True
    now = time.monotonic()
    states = {s.instance.id: s for s in group.instance_states}
    left = [i for i in refresh.originals if i in states]
    waiting = sorted(i for i in left if not states[i].lifecycle_state.startswith("Terminating"))
    if refresh.remaining != len(waiting):
        refresh.remaining = len(waiting)
        changed = True
    if not left:
        refresh.end("Successful", "")
        return True
    for instance_id, state in states.items():
        if instance_id not in refresh.originals and state.lifecycle_state == "InService":
            refresh.in_service_since.setdefault(instance_id, now)
    warm = [
        i
        for i, since in refresh.in_service_since.items()
        if i not in refresh.credited
        and i in states
        and states[i].lifecycle_state == "InService"
        and states[i].health_status == "Healthy"
        and now - since >= refresh.warmup
    ]
    if refresh.launch_first:
        if not waiting:
            return changed  # the last originals are in their terminate hook
        if not refresh.raised:
            refresh.raised = True
            group.set_desired_capacity((group.desired_capacity or 0) + 1)
            return True
        if warm:
            refresh.credited.add(warm[0])
            refresh.raised = False
            autoscaling.terminate_instance(waiting[0], True)
            refresh.remaining = len(waiting) - 1
            return True
        return changed
    if refresh.stepping:
        if not warm:
            return changed
        refresh.credited.add(warm[0])
        refresh.stepping = False
        changed = True
    if waiting:
        refresh.stepping = True
        autoscaling.terminate_instance(waiting[0], False)
        refresh.remaining = len(waiting) - 1
        return True
    return changed


def start_ticker() -> None:
    """The groups' health check, in the background for the server's lifetime."""
    threading.Thread(target=_ticker, name="lab-groups", daemon=True).start()


def _ticker() -> None:
    """Runs `tick` every 50 ms. An error is printed; the same error again stops the server (exit 4):
    a lab whose groups no longer follow their health check must fail loudly, not run on."""
    last = None
    while True:
        time.sleep(0.05)
        with FEED.lock:
            try:
                changed = tick()
                last = None
            except Exception as exc:  # one error may be a passing state; the same one twice is a fault
                print(f"lab: tick: {exc!r}", file=sys.stderr, flush=True)
                if repr(exc) == last:
                    print("lab: the same tick error twice: stopping the emulator", file=sys.stderr, flush=True)
                    os._exit(4)
                last, changed = repr(exc), False
        if changed:
            FEED.bump()


# --- the snapshot ---------------------------------------------------------------------------------


def _sdc(value) -> bool:
    return str(value).lower() not in ("false", "0")


def _open_actions(autoscaling) -> dict:
    """instance id -> its open lifecycle action (the shim's ledger): the hook and token an
    EventBridge stand-in puts in the lifecycle-action event."""
    from nat_lab.moto_shims import lifecycle

    found = {}
    for action in lifecycle.ledger(autoscaling).active:
        found.setdefault(
            action.instance, {"group": action.group, "hook": action.hook, "transition": action.transition, "token": action.token}
        )
    return found


def snapshot() -> dict:
    autoscaling, ec2 = _backends()
    eips = {a.public_ip for a in ec2.addresses}
    eip_on = {a.eni.id: a.public_ip for a in ec2.addresses if a.eni is not None}
    instances = {}
    for instance in ec2.all_instances():
        nic = instance.nics.get(0)
        instances[instance.id] = {
            "state": instance._state.name,
            "subnet": instance.subnet_id,
            "eni": nic.id if nic else None,
            "private_ip": nic.private_ip_address if nic else None,
            "source_dest_check": _sdc(instance.source_dest_check) and (nic is None or _sdc(nic.source_dest_check)),
        }
    enis = {}
    for eni in ec2.enis.values():
        public = eip_on.get(eni.id)
        if public is None and eni.public_ip and eni.public_ip not in eips:
            public = eni.public_ip  # the temporary public IP (AWS releases it when an EIP arrives)
        enis[eni.id] = {
            "instance": eni.instance.id if getattr(eni, "instance", None) else None,
            "private_ip": eni.private_ip_address,
            "subnet": eni.subnet.id if getattr(eni, "subnet", None) else None,
            "public_ip": public,
        }
    subnets = {s.id: {"cidr": s.cidr_block, "zone": s.availability_zone, "vpc": s.vpc_id} for s in ec2.describe_subnets()}
    tables = {}
    for table in ec2.route_tables.values():
        routes = {}
        for route in table.routes:
            if not route.destination_cidr_block:
                continue
            routes[route.destination_cidr_block] = {
                "gateway": route.gateway.id if route.gateway is not None else None,
                "eni": route.interface.id if route.interface is not None else None,
                "instance": route.instance.id if route.instance is not None else None,
                "local": bool(route.local),
            }
        tables[table.id] = {
            "vpc": table.vpc_id,
            "main": table.main_association_id is not None,
            "subnets": sorted(v for v in table._associations.values() if str(v).startswith("subnet-")),
            "routes": routes,
        }
    addresses = {
        a.allocation_id: {"public_ip": a.public_ip, "eni": a.eni.id if a.eni is not None else None}
        for a in ec2.addresses
        if a.allocation_id
    }
    groups = {}
    for group in autoscaling.autoscaling_groups.values():
        groups[group.name] = {
            "desired": group.desired_capacity,
            "max": group.max_size,
            "instances": {s.instance.id: {"lifecycle": s.lifecycle_state, "health": s.health_status} for s in group.instance_states},
        }
    return {
        "generation": FEED.generation,
        "instances": instances,
        "enis": enis,
        "subnets": subnets,
        "route_tables": tables,
        "addresses": addresses,
        "groups": groups,
        "lifecycle_actions": _open_actions(autoscaling),
        "put_events": [e for e in PUT_EVENTS if e["region"] == REGION],
        "launch_failures": list(LAUNCH_FAILURES),
        "spot_warnings": [w for w in SPOT_WARNINGS if w["region"] == REGION],
    }


# --- the server -----------------------------------------------------------------------------------


def _host_details(instance_id: str) -> dict:
    """What EC2 knows of a registered SSM host (its private address and host name), read under the
    lock but only if it is free within a second: an SSM answer never waits on the lab."""
    if not FEED.lock.acquire(timeout=1.0):
        return {}
    try:
        _, ec2 = _backends()
        instance = next((i for i in ec2.all_instances() if i.id == instance_id), None)
        if instance is None:
            return {}
        ip = instance.private_ip
        return {"ip": ip, "hostname": f"ip-{ip.replace('.', '-')}.{REGION}.compute.internal" if ip else ""}
    except Exception:
        return {}
    finally:
        FEED.lock.release()


def _ssm_action(environ) -> str | None:
    """The SSM action this request is, when `ssm_hosts` answers it."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    service, _, action = target.partition(".")
    return action if service == "AmazonSSM" and action in ssm_hosts.ACTIONS else None


def _action(environ, body: bytes) -> str:
    for source in (body.decode("utf-8", "replace"), environ.get("QUERY_STRING", "")):
        found = urllib.parse.parse_qs(source).get("Action")
        if found:
            return found[0]
    return ""


class LabApp:
    """moto's WSGI application behind the lab's lock, counting mutating requests, plus /lab-api."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/lab-api/"):
            return self._lab(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        ssm = _ssm_action(environ)
        if ssm is not None:  # the lab's hosts' agent: not under the lock (a command runs on its own)
            status, headers, payload = ssm_hosts.answer(ssm, body)
            start_response(status, headers)
            return [payload]
        action = _action(environ, body)
        mutating = environ.get("REQUEST_METHOD") != "GET" and not action.startswith(READS)
        with FEED.lock:
            try:
                return list(self.app(environ, start_response))
            finally:
                if environ.get("PATH_INFO") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                    ssm_hosts.reset()
                    RECLAIMS.clear()  # a reclaim of an instance the reset forgot
                if mutating:
                    FEED.bump()

    def _lab(self, environ, start_response):
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("PATH_INFO") == "/lab-api/spot-short":
            set_spot_short(query["group"][0], query.get("short", ["1"])[0] == "1")
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        if environ.get("PATH_INFO") == "/lab-api/ssm-hosts":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                ssm_hosts.register(json.loads(environ["wsgi.input"].read(length) or b"{}"))
            except ValueError as exc:
                payload = json.dumps({"error": f"POST /lab-api/ssm-hosts: {exc}"}).encode()
                start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
                return [payload]
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        since = int(query.get("since", ["-1"])[0])
        wait = min(float(query.get("wait", ["0"])[0]), 10.0)
        deadline = time.monotonic() + wait
        with FEED.changed:
            while FEED.generation <= since and time.monotonic() < deadline:
                FEED.changed.wait(max(0.0, deadline - time.monotonic()))
            payload = json.dumps(snapshot()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]
