"""Every EventBridge event the laboratory sends, built from the saved files in events/ (the
vocabulary: their detail-types, fields and values are what AWS sends), retargeted at the emulator's
groups and instances. The tests, the demo, the soak, the benchmarks and the lab's EventBridge
stand-in all build their events here.

A built event keeps its file's `time` unless it is sent now (`sent_now`, and always for a
terminate action or a state change): the hook treats an old launch event whose instance it cannot
find as stale, a fresh one as worth retrying."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from . import REPO
from .constants import ACCOUNT, REGION, ZONES

EVENTS = REPO / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


LAUNCH_SUCCESSFUL = load("launch-successful.json")["detail-type"]
LAUNCH_UNSUCCESSFUL = load("launch-unsuccessful.json")["detail-type"]
LAUNCH_ACTION = load("launch-lifecycle-action.json")["detail-type"]
TERMINATE_ACTION = load("terminate-lifecycle-action.json")["detail-type"]
STATE_CHANGE = load("instance-state-change.json")["detail-type"]
SCHEDULED = load("scheduled-reconcile.json")["detail-type"]
SELF_CHECK_FAILED = load("self-check-failed.json")["detail-type"]
SELF_CHECK_SOURCE = load("self-check-failed.json")["source"]
SPOT_WARNING = load("spot-interruption-warning.json")["detail-type"]
REBALANCE = load("rebalance-recommendation.json")["detail-type"]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def group_arn(group: str) -> str:
    """The group's ARN; its id part is the same for a group name every time, as a group's is."""
    return f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:{uuid.uuid5(uuid.NAMESPACE_DNS, group)}:autoScalingGroupName/{group}"


def instance_arn(instance_id: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"


def _fresh(name: str, sent_now: bool) -> dict:
    """The saved event `name` with a new id, in the emulator's region and account."""
    event = load(name)
    event.update(id=str(uuid.uuid4()), account=ACCOUNT, region=REGION)
    if sent_now:
        event["time"] = now()
    return event


def launch(
    group: str,
    instance_id: str,
    zone: str = ZONES[0],
    kind: str = "launch-successful",
    *,
    subnet: str | None = None,
    token: str | None = None,
    hook: str | None = None,
    sent_now: bool = False,
) -> dict:
    """`kind` is `launch-successful` or `launch-lifecycle-action` (the names of the saved files).
    A lifecycle action gets `token` (a new one by default) and, when given, `hook`."""
    event = _fresh(f"{kind}.json", sent_now)
    detail = event["detail"]
    detail.update(AutoScalingGroupName=group, EC2InstanceId=instance_id)
    if "Description" in detail:
        detail["Description"] = f"Launching a new EC2 instance: {instance_id}"
    if "Details" in detail:
        detail["Details"]["Availability Zone"] = zone
        if subnet is not None:
            detail["Details"]["Subnet ID"] = subnet
    if sent_now and "StartTime" in detail:
        detail["StartTime"] = detail["EndTime"] = event["time"]
    if "LifecycleActionToken" in detail:
        detail["LifecycleActionToken"] = token or str(uuid.uuid4())
        if hook is not None:
            detail["LifecycleHookName"] = hook
    event["resources"] = [group_arn(group)] + ([instance_arn(instance_id)] if kind == "launch-successful" else [])
    return event


def launch_unsuccessful(group: str, message: str | None = None, zone: str = ZONES[0], *, sent_now: bool = True) -> dict:
    """Auto Scaling could not launch the group's instance; `message` is its StatusMessage (by
    default the saved one: no Spot capacity)."""
    event = _fresh("launch-unsuccessful.json", sent_now)
    detail = event["detail"]
    detail.update(AutoScalingGroupName=group)
    detail["Details"]["Availability Zone"] = zone
    if message is not None:
        detail["StatusMessage"] = message
    if sent_now:
        detail["StartTime"] = detail["EndTime"] = event["time"]
    event["resources"] = [group_arn(group)]
    return event


def terminate(group: str, instance_id: str, *, token: str | None = None, hook: str | None = None) -> dict:
    """The group's terminate lifecycle action for `instance_id`, sent now; `token` a new one by
    default, `hook` the saved event's (the module's terminate hook) by default."""
    event = _fresh("terminate-lifecycle-action.json", sent_now=True)
    event["detail"].update(AutoScalingGroupName=group, EC2InstanceId=instance_id, LifecycleActionToken=token or str(uuid.uuid4()))
    if hook is not None:
        event["detail"]["LifecycleHookName"] = hook
    event["resources"] = [group_arn(group)]
    return event


def state_change(instance_id: str, state: str) -> dict:
    """EC2's notification that `instance_id` entered `state`, sent now."""
    event = _fresh("instance-state-change.json", sent_now=True)
    event["detail"] = {"instance-id": instance_id, "state": state}
    event["resources"] = [instance_arn(instance_id)]
    return event


def self_check_failed(group: str, instance_id: str, reason: str = "forwarding is off", failures: int = 2) -> dict:
    """A NAT's own report that its self-check took it out (it marked itself Unhealthy), sent now."""
    event = _fresh("self-check-failed.json", sent_now=True)
    event["detail"] = {"EC2InstanceId": instance_id, "AutoScalingGroupName": group, "reason": reason, "consecutive_failures": failures}
    return event


def put(entry: dict) -> dict:
    """The event EventBridge makes of an entry PutEvents accepted (the lab's record of it)."""
    event = _fresh("self-check-failed.json", sent_now=True)
    event.update(id=entry["id"], source=entry["source"], resources=[], detail=entry["detail"])
    event["detail-type"] = entry["detail-type"]
    return event


def spot_warning(instance_id: str, action: str = "terminate") -> dict:
    """EC2's two-minute warning that it reclaims the Spot instance, sent now."""
    event = _fresh("spot-interruption-warning.json", sent_now=True)
    event["detail"] = {"instance-id": instance_id, "instance-action": action}
    event["resources"] = [instance_arn(instance_id)]
    return event


def rebalance(instance_id: str) -> dict:
    """EC2's recommendation to rebalance away from the Spot instance, sent now."""
    event = _fresh("rebalance-recommendation.json", sent_now=True)
    event["detail"] = {"instance-id": instance_id}
    event["resources"] = [instance_arn(instance_id)]
    return event


def scheduled(rule: str | None = None) -> dict:
    """The reconcile schedule's event: the saved one as it is, or, for `rule`, that rule's, sent now."""
    if rule is None:
        return load("scheduled-reconcile.json")
    event = _fresh("scheduled-reconcile.json", sent_now=True)
    event["resources"] = [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"]
    return event


def write(event: dict, directory: Path, name: str | None = None) -> Path:
    path = directory / (name or f"event-{event.get('id', uuid.uuid4())}.json")
    path.write_text(json.dumps(event, indent=2))
    return path
