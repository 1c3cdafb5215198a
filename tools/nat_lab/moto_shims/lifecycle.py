"""Auto Scaling lifecycle actions in moto: the one stand-in for what moto does not implement.

moto 5 answers CompleteLifecycleAction and RecordLifecycleActionHeartbeat with HTTP 500, and
ignores lifecycle hooks: a group's instances go InService at once and leave at once. This module,
loaded into the moto server process (`nat_lab.moto_shims.server`), answers both calls, records every
one of them, and runs lifecycle hooks the way Auto Scaling does:

- Launch: a group with an `autoscaling:EC2_INSTANCE_LAUNCHING` hook launches instances into
  `Pending:Wait`; they count towards the desired capacity. CONTINUE (once every launch hook of the
  instance is completed) puts the instance InService; ABANDON terminates it and the group launches
  a replacement (into `Pending:Wait` again).
- Terminate: with an `autoscaling:EC2_INSTANCE_TERMINATING` hook, TerminateInstanceInAutoScalingGroup
  puts the instance in `Terminating:Wait` (still running in EC2, no longer counted: the group
  launches its replacement at once); CONTINUE or ABANDON then terminates it and it leaves the group.
- SetInstanceHealth Unhealthy on an InService or pending instance replaces it the same way (AWS does
  after its health check).
- A heartbeat pushes the action's deadline out by the hook's heartbeat timeout; at the deadline
  (checked on every request the server answers) the hook's default result is applied.
- Completing an action that is not active (done, never started, another group's) is AWS's
  ValidationError. `LifecycleHookSpecificationList` of CreateAutoScalingGroup (Terraform's
  `initial_lifecycle_hook`), which moto ignores, creates the hooks before the first instances
  launch, as AWS does.
- A group without hooks behaves as moto has it: instances InService at once.
Not modelled: an instance terminated through EC2 (TerminateInstances) leaves its group at once
without the terminate hooks (moto's own behaviour; AWS notices at its next health check), and the
group launches its replacement (into Pending:Wait with a launch hook); an abandoned launch does not
run the terminate hooks; no EventBridge events are emitted (moto emits none).

Every CompleteLifecycleAction and RecordLifecycleActionHeartbeat (and every timeout) is recorded
with its answer. `listing()` (served by the patched server at `GET /nat-lab/lifecycle-actions`, outside
moto's request routing; use `nat_lab.moto.Moto.lifecycle_actions()`) returns `{"calls", "active"}`: the calls,
each `{"call", "group", "hook", "instance", "token", "result", "accepted", "error", "monotonic"}`,
and the active actions, each `{"group", "hook", "instance", "transition", "token", "seconds_left"}`
(the token and hook an EventBridge stand-in puts in the lifecycle-action event it sends).
`monotonic` is the server's time.monotonic(): the same clock as the caller's on one machine.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
COUNTED = ("InService", "Pending", "Pending:Wait", "Pending:Proceed")  # towards the desired capacity

_lock = threading.RLock()  # the server is threaded: two completions of one action must not both succeed
_waiting = weakref.WeakSet()  # backends with active actions (a reset drops the backends, and with them these)


@dataclass
class Action:
    group: str
    hook: str
    instance: str
    transition: str
    token: str
    timeout: int
    default_result: str
    deadline: float

    def as_dict(self) -> dict:
        return {
            "group": self.group,
            "hook": self.hook,
            "instance": self.instance,
            "transition": self.transition,
            "token": self.token,
            "seconds_left": round(self.deadline - time.monotonic(), 3),
        }


@dataclass
class Ledger:
    """Per Auto Scaling backend (a moto-api reset starts a new one)."""

    active: list[Action] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)


def ledger(backend) -> Ledger:
    found = getattr(backend, "_nat_lab_lifecycle", None)
    if found is None:
        found = backend._nat_lab_lifecycle = Ledger()
    return found


def listing(account: str, region: str) -> dict:
    """The ledger of one Auto Scaling backend: {"calls", "active"} (see the module's docstring)."""
    from moto.autoscaling.models import autoscaling_backends

    with _lock:
        book = ledger(autoscaling_backends[account][region])
        return {"calls": list(book.calls), "active": [a.as_dict() for a in book.active]}


def install() -> None:
    from moto.autoscaling import models, responses
    from moto.autoscaling.exceptions import ValidationError
    from moto.core.responses import BaseResponse, EmptyResult

    group_cls, backend_cls, response_cls = models.FakeAutoScalingGroup, models.AutoScalingBackend, responses.AutoScalingResponse
    replace_instances = group_cls.replace_autoscaling_group_instances
    terminate_instance = backend_cls.terminate_instance
    set_instance_health = backend_cls.set_instance_health
    create_group = response_cls.create_auto_scaling_group
    call_action = BaseResponse.call_action

    def hooks_of(backend, group: str, transition: str) -> list:
        return [h for h in backend.describe_lifecycle_hooks(group) if h.lifecycle_transition == transition]

    def start(backend, group: str, instance: str, hooks: list, transition: str) -> None:
        book = ledger(backend)
        for h in hooks:
            book.active.append(
                Action(
                    group,
                    h.name,
                    instance,
                    transition,
                    str(uuid.uuid4()),
                    int(h.heartbeat_timeout),
                    h.default_result,
                    time.monotonic() + int(h.heartbeat_timeout),
                )
            )
        _waiting.add(backend)

    def state_of(backend, instance_id: str):
        return next((s for g in backend.autoscaling_groups.values() for s in g.instance_states if s.instance.id == instance_id), None)

    def finish(backend, action: Action, result: str) -> None:
        """An action completed with `result` (CONTINUE/ABANDON): move the instance on once none of
        its actions of that transition is left, or at once on an abandoned launch."""
        book = ledger(backend)
        book.active.remove(action)
        abandon_launch = action.transition == LAUNCHING and result == "ABANDON"
        if abandon_launch:
            book.active[:] = [a for a in book.active if not (a.instance == action.instance and a.transition == LAUNCHING)]
        elif any(a.instance == action.instance and a.transition == action.transition for a in book.active):
            return
        state = state_of(backend, action.instance)
        if state is None:
            return
        if action.transition == LAUNCHING and not abandon_launch:
            state.lifecycle_state = "InService"
        else:  # leaves the group and EC2, as moto's own termination does; an abandoned launch is replaced
            terminate_instance(backend, action.instance, False)

    def expire(backend) -> None:
        now = time.monotonic()
        book = ledger(backend)
        for a in [a for a in book.active if a.deadline <= now]:
            book.calls.append(record("timeout", a.group, a.hook, a.instance, a.token, a.default_result, True))
            finish(backend, a, a.default_result)

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        before = {id(s) for s in self.instance_states}
        replace_instances(self, count_needed, propagated_tags)
        hooks = hooks_of(self.autoscaling_backend, self.name, LAUNCHING)
        if not hooks:
            return
        with _lock:
            for state in self.instance_states:
                if id(state) not in before:
                    state.lifecycle_state = "Pending:Wait"
                    start(self.autoscaling_backend, self.name, state.instance.id, hooks, LAUNCHING)

    def active_instances(self):
        return [s for s in self.instance_states if s.lifecycle_state in COUNTED]

    def terminate(self, instance_id, should_decrement):
        state = state_of(self, instance_id)
        if state is None:
            return terminate_instance(self, instance_id, should_decrement)
        group = state.instance.autoscaling_group
        hooks = hooks_of(self, group.name, TERMINATING)
        with _lock:
            book = ledger(self)
            book.active[:] = [a for a in book.active if not (a.instance == instance_id and a.transition == LAUNCHING)]
            if not hooks:
                return terminate_instance(self, instance_id, should_decrement)
            original = group.desired_capacity
            if not state.lifecycle_state.startswith("Terminating"):
                state.lifecycle_state = "Terminating:Wait"
                start(self, group.name, instance_id, hooks, TERMINATING)
                if should_decrement:
                    group.desired_capacity -= 1
                group.set_desired_capacity(group.desired_capacity)  # the replacement, at once
            return models.TerminateInstanceActivity(state.instance, original)

    def health(self, instance_id, health_status):
        set_instance_health(self, instance_id, health_status)
        state = state_of(self, instance_id)
        if health_status == "Unhealthy" and state is not None and state.lifecycle_state in COUNTED:
            self.terminate_instance(instance_id, False)

    def create_auto_scaling_group(self):
        name = self._get_param("AutoScalingGroupName")
        for spec in self._get_param("LifecycleHookSpecificationList", []) or []:
            self.autoscaling_backend.create_lifecycle_hook(
                name=spec["LifecycleHookName"],
                as_name=name,
                transition=spec["LifecycleTransition"],
                timeout=spec.get("HeartbeatTimeout"),
                result=spec.get("DefaultResult"),
            )
        return create_group(self)

    def record(call, group, hook, instance, token, result, accepted, error=None) -> dict:
        return {
            "call": call,
            "group": group,
            "hook": hook,
            "instance": instance,
            "token": token,
            "result": result,
            "accepted": accepted,
            "error": error,
            "monotonic": time.monotonic(),
        }

    def answer(self, call: str):
        group = self._get_param("AutoScalingGroupName") or ""
        hook = self._get_param("LifecycleHookName") or ""
        instance = self._get_param("InstanceId") or ""
        token = self._get_param("LifecycleActionToken") or ""
        result = self._get_param("LifecycleActionResult") if call == "CompleteLifecycleAction" else None
        backend = self.autoscaling_backend
        with _lock:
            book = ledger(backend)
            error = None
            if call == "CompleteLifecycleAction" and result not in ("CONTINUE", "ABANDON"):
                error = f"Invalid LifecycleActionResult {result!r}: CONTINUE or ABANDON"
            elif not instance and not token:
                error = "Either InstanceId or LifecycleActionToken must be given"
            else:
                action = next(
                    (
                        a
                        for a in book.active
                        if a.group == group and a.hook == hook and (a.instance == instance if instance else a.token == token)
                    ),
                    None,
                )
                if action is None:
                    error = (
                        f"No active Lifecycle Action found with instance ID {instance}"
                        if instance
                        else (f"No active Lifecycle Action found with token {token}")
                    )
                elif call == "CompleteLifecycleAction":
                    finish(backend, action, result)
                else:
                    action.deadline = time.monotonic() + action.timeout
            book.calls.append(record(call, group, hook, instance, token, result, error is None, error))
        if error:
            raise ValidationError(error)
        return EmptyResult()

    def complete_lifecycle_action(self):
        return answer(self, "CompleteLifecycleAction")

    def record_lifecycle_action_heartbeat(self):
        return answer(self, "RecordLifecycleActionHeartbeat")

    def any_call_action(self):
        if _waiting:
            with _lock:
                for backend in list(_waiting):
                    expire(backend)
        return call_action(self)

    group_cls.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    group_cls.active_instances = active_instances
    backend_cls.terminate_instance = terminate
    backend_cls.set_instance_health = health
    response_cls.create_auto_scaling_group = create_auto_scaling_group
    response_cls.complete_lifecycle_action = complete_lifecycle_action
    response_cls.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
    BaseResponse.call_action = any_call_action
