"""The lab's AWS emulator: moto server, with the Auto Scaling behaviour a NAT replacement goes
through, and a change feed for the fabric.

moto launches an Auto Scaling group's instances straight into InService and knows no lifecycle
action: for the hook, every new instance would look proven the moment it exists, and a leaving one
would vanish at once. This module, loaded into the moto server process (`python -m
nat_lab.lab.motoserver PORT`), makes the groups behave as AWS documents it:

- a launch with a launch lifecycle hook waits in `Pending:Wait` until someone completes the action
  (`CompleteLifecycleAction`: CONTINUE -> InService; ABANDON -> the instance is terminated and the
  group launches another) or its heartbeat runs out (the hook's default result);
- a termination by the group (TerminateInstanceInAutoScalingGroup, an Unhealthy instance, an
  instance that stopped running) with a terminate lifecycle hook waits in `Terminating:Wait`, the
  instance still running, until the action is completed or times out; then EC2 terminates it;
- `SetInstanceHealth Unhealthy` makes the group replace the instance (terminate, launch another);
- an instance the group holds that stops running outside the group (TerminateInstances) is replaced
  after `LAB_HEALTH_CHECK_SECONDS` (the EC2 health check's grace; 0 by default: at once);
- the launch template's `AssociatePublicIpAddress` gives the instance a temporary public IP (moto
  only honours it for launch configurations and `RunInstances`).

`GET /lab-api/state?since=G&wait=S` answers with a snapshot of everything the data plane follows
(instances, ENIs, public addresses, source/dest checks, route tables, groups), as soon as the
generation (a counter of mutating requests and of the changes the group behaviour makes on its own)
exceeds G, or after S seconds. One lock serialises every request, the snapshot and the background
behaviour, so a snapshot is never half a change.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass

ACCOUNT = "123456789012"
REGION = "us-east-1"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
READS = ("Describe", "Get", "List")
LEAVING = ("stopping", "stopped", "shutting-down", "terminated")


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


@dataclass
class Action:
    """An open lifecycle action."""

    group: str
    hook: str
    transition: str
    token: str
    deadline: float
    default_result: str
    heartbeat: int


ACTIONS: dict[str, Action] = {}  # instance id -> its open lifecycle action
LEFT_AT: dict[str, float] = {}  # instance id -> when the group saw it stop running


def _backends():
    from moto.autoscaling.models import autoscaling_backends
    from moto.ec2.models import ec2_backends

    return autoscaling_backends[ACCOUNT][REGION], ec2_backends[ACCOUNT][REGION]


def _hook(group, transition: str):
    autoscaling, _ = _backends()
    for hook in autoscaling.lifecycle_hooks.values():
        if hook.auto_scaling_group_name == group.name and hook.lifecycle_transition == transition:
            return hook
    return None


def _open(state, group, transition: str) -> bool:
    """Put the instance into the transition's wait state if the group has a hook for it."""
    hook = _hook(group, transition)
    if hook is None:
        return False
    heartbeat = int(hook.heartbeat_timeout)
    ACTIONS[state.instance.id] = Action(
        group.name, hook.name, transition, str(uuid.uuid4()), time.monotonic() + heartbeat, hook.default_result, heartbeat
    )
    state.lifecycle_state = "Pending:Wait" if transition == LAUNCHING else "Terminating:Wait"
    return True


def _state_of(instance_id: str):
    autoscaling, _ = _backends()
    for group in autoscaling.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return group, state
    return None, None


def _finish_termination(group, state) -> None:
    _, ec2 = _backends()
    ACTIONS.pop(state.instance.id, None)
    if state in group.instance_states:
        group.instance_states.remove(state)
    if state.instance._state.name not in ("terminated",):
        ec2.terminate_instances([state.instance.id])


def _begin_termination(group, state, decrement: bool) -> None:
    """The group terminates `state`'s instance: through Terminating:Wait when it has a terminate
    hook; a replacement is launched at once unless `decrement`."""
    if state.lifecycle_state.startswith("Terminating"):
        return
    ACTIONS.pop(state.instance.id, None)
    if decrement:
        group.desired_capacity = max(0, (group.desired_capacity or 0) - 1)
    if not _open(state, group, TERMINATING):
        _finish_termination(group, state)
    group.set_desired_capacity(group.desired_capacity)


def complete(group_name: str, hook_name: str, instance_id: str, token: str, result: str) -> None:
    from moto.autoscaling.exceptions import ValidationError

    if not instance_id and token:
        instance_id = next((i for i, a in ACTIONS.items() if a.token == token), "")
    action = ACTIONS.get(instance_id)
    if action is None or action.group != group_name or action.hook != hook_name:
        raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
    group, state = _state_of(instance_id)
    del ACTIONS[instance_id]
    if action.transition == LAUNCHING:
        if result == "CONTINUE":
            state.lifecycle_state = "InService"
        else:
            _finish_termination(group, state)
            group.set_desired_capacity(group.desired_capacity)
    else:
        _finish_termination(group, state)


def _install_group_behaviour() -> None:
    from moto.autoscaling import models
    from moto.ec2.utils import random_public_ip

    group_class = models.FakeAutoScalingGroup
    backend_class = models.AutoScalingBackend
    launch = group_class.replace_autoscaling_group_instances

    def active_instances(self):
        return [s for s in self.instance_states if not s.lifecycle_state.startswith(("Terminating", "Terminated", "Standby"))]

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        before = {s.instance.id for s in self.instance_states}
        launch(self, count_needed, propagated_tags)
        data = {}
        if self.ec2_launch_template is not None:
            data = self.ec2_launch_template.get_version(self.launch_template_version).data
        interfaces = data.get("NetworkInterfaces") or [{}]
        public = str(interfaces[0].get("AssociatePublicIpAddress", "")).lower() == "true"
        for state in self.instance_states:
            if state.instance.id in before:
                continue
            eni = state.instance.nics[0]
            if public and not eni.public_ip:
                eni.public_ip_auto_assign = True
                eni.public_ip = random_public_ip()
            _open(state, self, LAUNCHING)

    def terminate_instance(self, instance_id, should_decrement):
        group, state = _state_of(instance_id)
        if state is None:
            from moto.autoscaling.exceptions import ValidationError

            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        original = group.desired_capacity
        _begin_termination(group, state, should_decrement)
        return models.TerminateInstanceActivity(state.instance, original)

    def set_instance_health(self, instance_id, health_status):
        group, state = _state_of(instance_id)
        if state is None:
            from moto.autoscaling.exceptions import ValidationError

            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        state.health_status = health_status
        if health_status == "Unhealthy" and not state.lifecycle_state.startswith("Terminating"):
            _begin_termination(group, state, decrement=False)

    def notify_terminate_instances(self, instance_ids):
        """moto replaces an instance terminated outside the group at once; the group's health check
        does (`tick`), after its grace."""

    group_class.active_instances = active_instances
    group_class.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    backend_class.terminate_instance = terminate_instance
    backend_class.set_instance_health = set_instance_health
    backend_class.notify_terminate_instances = notify_terminate_instances


def _install_lifecycle_calls() -> None:
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import EmptyResult

    def complete_lifecycle_action(self):
        complete(
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            self._get_param("InstanceId") or "",
            self._get_param("LifecycleActionToken") or "",
            self._get_param("LifecycleActionResult"),
        )
        return EmptyResult()

    def record_lifecycle_action_heartbeat(self):
        from moto.autoscaling.exceptions import ValidationError

        instance_id = self._get_param("InstanceId") or ""
        action = ACTIONS.get(instance_id)
        if action is None:
            raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
        action.deadline = time.monotonic() + action.heartbeat
        return EmptyResult()

    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat


def tick() -> bool:
    """What the groups do on their own: heartbeats that run out, and instances that stopped running
    outside the group. True when something changed."""
    autoscaling, _ = _backends()
    changed = False
    now = time.monotonic()
    for instance_id, action in list(ACTIONS.items()):
        if action.deadline <= now:
            try:
                complete(action.group, action.hook, instance_id, "", action.default_result)
            except Exception as exc:  # a model that moved under us: the action is gone either way
                print(f"lab: heartbeat expiry of {instance_id}: {exc}", file=sys.stderr)
                ACTIONS.pop(instance_id, None)
            changed = True
    grace = float(os.environ.get("LAB_HEALTH_CHECK_SECONDS", "0"))
    for group in list(autoscaling.autoscaling_groups.values()):
        for state in list(group.instance_states):
            if state.instance._state.name not in LEAVING or state.lifecycle_state.startswith("Terminating"):
                continue
            seen = LEFT_AT.setdefault(state.instance.id, now)
            if now - seen < grace:
                continue
            LEFT_AT.pop(state.instance.id, None)
            state.health_status = "Unhealthy"
            ACTIONS.pop(state.instance.id, None)
            group.instance_states.remove(state)
            group.set_desired_capacity(group.desired_capacity)
            changed = True
    return changed


def _ticker() -> None:
    while True:
        time.sleep(0.05)
        with FEED.lock:
            try:
                changed = tick()
            except Exception as exc:  # keep ticking: a lab must not lose its groups to one error
                print(f"lab: tick: {exc!r}", file=sys.stderr)
                changed = False
        if changed:
            FEED.bump()


# --- the snapshot ---------------------------------------------------------------------------------


def _sdc(value) -> bool:
    return str(value).lower() not in ("false", "0")


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
        "lifecycle_actions": {
            i: {"group": a.group, "hook": a.hook, "transition": a.transition, "token": a.token} for i, a in ACTIONS.items()
        },
    }


# --- the server -----------------------------------------------------------------------------------


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
        action = _action(environ, body)
        mutating = environ.get("REQUEST_METHOD") != "GET" and not action.startswith(READS)
        with FEED.lock:
            try:
                return list(self.app(environ, start_response))
            finally:
                if mutating:
                    FEED.bump()

    def _lab(self, environ, start_response):
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        since = int(query.get("since", ["-1"])[0])
        wait = min(float(query.get("wait", ["0"])[0]), 10.0)
        deadline = time.monotonic() + wait
        with FEED.changed:
            while FEED.generation <= since and time.monotonic() < deadline:
                FEED.changed.wait(max(0.0, deadline - time.monotonic()))
            payload = json.dumps(snapshot()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    port = int((argv or sys.argv[1:])[0])
    os.environ.setdefault("MOTO_PORT", str(port))
    _install_group_behaviour()
    _install_lifecycle_calls()
    threading.Thread(target=_ticker, name="lab-groups", daemon=True).start()
    app = LabApp(DomainDispatcherApplication(create_backend_app))
    run_simple("127.0.0.1", port, app, threaded=True)


if __name__ == "__main__":
    main()
