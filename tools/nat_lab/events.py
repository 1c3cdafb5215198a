"""Events built from the saved files in events/, retargeted at the emulator's groups and instances."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from . import REPO

EVENTS = REPO / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def launch(group: str, instance_id: str, zone: str = "us-east-1a", kind: str = "launch-successful") -> dict:
    """`kind` is `launch-successful` or `launch-lifecycle-action` (the names of the saved files)."""
    event = load(f"{kind}.json")
    event["id"] = str(uuid.uuid4())
    detail = event["detail"]
    detail["AutoScalingGroupName"] = group
    detail["EC2InstanceId"] = instance_id
    if "Details" in detail:
        detail["Details"]["Availability Zone"] = zone
    if "LifecycleActionToken" in detail:
        detail["LifecycleActionToken"] = str(uuid.uuid4())
    event["resources"] = [f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:{uuid.uuid4()}:autoScalingGroupName/{group}"]
    return event


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminate(group: str, instance_id: str) -> dict:
    """The group's terminate lifecycle action for `instance_id`, sent now."""
    event = load("terminate-lifecycle-action.json")
    event["id"] = str(uuid.uuid4())
    event["time"] = now()
    event["detail"].update(AutoScalingGroupName=group, EC2InstanceId=instance_id, LifecycleActionToken=str(uuid.uuid4()))
    event["resources"] = [f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:{uuid.uuid4()}:autoScalingGroupName/{group}"]
    return event


def state_change(instance_id: str, state: str) -> dict:
    """EC2's notification that `instance_id` entered `state`, sent now."""
    event = load("instance-state-change.json")
    event["id"] = str(uuid.uuid4())
    event["time"] = now()
    event["detail"] = {"instance-id": instance_id, "state": state}
    event["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]
    return event


def scheduled() -> dict:
    return load("scheduled-reconcile.json")


def write(event: dict, directory: Path, name: str | None = None) -> Path:
    path = directory / (name or f"event-{event.get('id', uuid.uuid4())}.json")
    path.write_text(json.dumps(event, indent=2))
    return path
