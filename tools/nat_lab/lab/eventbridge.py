"""The EventBridge stand-in: turns what happens in the emulator into the events AWS sends, keeps
those the hook's rules subscribe to (terraform/modules/nat-asg-hook: launch, terminate, state-change,
launch-failed, self-check, Spot warning, reconcile), and
delivers each to the function after the delivery delay, the way an asynchronous invocation does
(a function error is retried, twice).

What it watches (every snapshot the lab's follower sees):
- a group's instance entering InService: `EC2 Instance Launch Successful` (the instance completed
  its own launch lifecycle action; a group without a launch hook puts it InService at once);
- a group's instance entering Terminating:Wait: `EC2 Instance-terminate Lifecycle Action` with the
  action's token and hook name;
- any instance leaving running: `EC2 Instance State-change Notification` for every state AWS
  passes through (stopping then stopped; shutting-down then terminated: moto jumps to the last);
- an event put on the default bus (PutEvents): as it was put (the NATs' `NAT Self-Check Failed`);
- a launch a group could not make (Spot short, `motoserver`): `EC2 Instance Launch Unsuccessful`;
- the reconcile rule's schedule: `Scheduled Event` every `schedule_seconds`.
A scenario can also send an event of its own (`send`: a Spot interruption warning, as EC2 would).
An instance entering Pending:Wait makes AWS send `EC2 Instance-launch Lifecycle Action`, which the
rules no longer subscribe to: it is recorded, never delivered.

A scenario can lose events (`lose(predicate)`: EventBridge never delivers them) to show what the
schedule heals.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from .. import events
from ..constants import LEAVING_STATES, TERMINATE_HOOK
from ..events import (
    LAUNCH_SUCCESSFUL,
    LAUNCH_UNSUCCESSFUL,
    SCHEDULED,
    SELF_CHECK_FAILED,
    SELF_CHECK_SOURCE,
    SPOT_WARNING,
    STATE_CHANGE,
    TERMINATE_ACTION,
)
from ..state import Snapshot
from ..world import World

PATH_TO = {"terminated": ("shutting-down", "terminated"), "stopped": ("stopping", "stopped")}
RETRIES = 2
RETRY_SECONDS = 1.0


def subscribed(event: dict, groups: set[str]) -> bool:
    """The hook's rules, as the nat-asg-hook module declares them."""
    detail, kind = event["detail"], event["detail-type"]
    if kind in (LAUNCH_SUCCESSFUL, LAUNCH_UNSUCCESSFUL):
        return detail.get("AutoScalingGroupName") in groups
    if kind == TERMINATE_ACTION:
        return detail.get("AutoScalingGroupName") in groups and detail.get("LifecycleHookName") == TERMINATE_HOOK
    if kind == STATE_CHANGE:
        return detail.get("state") in LEAVING_STATES
    if kind == SELF_CHECK_FAILED:
        return event["source"] == SELF_CHECK_SOURCE and detail.get("AutoScalingGroupName") in groups
    if kind == SPOT_WARNING:
        return event["source"] == "aws.ec2"
    return kind == SCHEDULED


@dataclass
class Delivery:
    kind: str
    instance: str
    zone: str
    observed: float  # when the stand-in saw it happen
    sent: float = 0.0
    done: float = 0.0
    attempts: int = 0
    outcome: str = ""  # the result's outcome, "error: ...", "lost", "not subscribed"
    result: dict | None = None
    event: dict = field(default_factory=dict)


def event_label(event: dict) -> tuple[str, str]:
    detail = event["detail"]
    if event["detail-type"] == LAUNCH_UNSUCCESSFUL:
        return detail.get("AutoScalingGroupName", ""), ""
    return detail.get("EC2InstanceId") or detail.get("instance-id") or "", detail.get("state", "")


class Function:
    """The hook served by `cargo lambda watch` (nat_lab.hook.LambdaWatch), invoked through the
    Lambda Invoke API it emulates, as EventBridge invokes a target."""

    def __init__(self, watch, timeout: float = 90.0):
        self.watch = watch
        self.url = f"http://127.0.0.1:{watch.port}/2015-03-31/functions/nat-asg-hook/invocations"
        self.timeout = timeout

    def __call__(self, event: dict) -> tuple[bool, dict | None, str]:
        request = urllib.request.Request(
            self.url, data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
                failed = bool(response.headers.get("X-Amz-Function-Error"))
        except urllib.error.HTTPError as exc:
            return False, None, f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except OSError as exc:
            return False, None, repr(exc)
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = None
        if failed or not isinstance(body, dict) or "errorType" in body or "errorMessage" in body:
            return False, body if isinstance(body, dict) else None, payload[:300].decode(errors="replace")
        return True, body, ""


class EventBridge:
    def __init__(self, lab, target, delay: float, schedule_seconds: float, rule_prefix: str = "nat-lab-asg-hook"):
        """`target(event) -> (ok, result, error)`; None: nothing is delivered (the baseline)."""
        self.lab = lab
        self.world: World = lab.world
        self.target = target
        self.delay = delay
        self.schedule_seconds = schedule_seconds
        self.rule = f"{rule_prefix}-reconcile"
        self.groups = set(self.world.groups)
        self.deliveries: list[Delivery] = []
        self._losses: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._schedule: threading.Thread | None = None
        lab.listeners.append(self.observe)

    # --- what happened ------------------------------------------------------------------------------

    def observe(self, previous: Snapshot, state: Snapshot) -> None:
        now = self.lab.clock()
        for group, members in state.groups.items():
            zone = self.world.groups.get(group)
            for instance, member in members.instances.items():
                now_state = member.lifecycle
                if now_state == previous.lifecycle(group, instance):
                    continue
                zone_name = zone.zone if zone else ""
                if now_state == "InService":
                    found = state.instances.get(instance)
                    subnet = found.subnet if found else ""
                    self._emit(now, events.launch(group, instance, zone_name, subnet=subnet, sent_now=True), zone)
                action = state.lifecycle_actions.get(instance)
                if action and now_state == "Terminating:Wait":
                    self._emit(now, events.terminate(group, instance, token=action.token, hook=action.hook), zone)
                elif action and now_state == "Pending:Wait":
                    launch_action = events.launch(
                        group, instance, zone_name, "launch-lifecycle-action", token=action.token, hook=action.hook, sent_now=True
                    )
                    self._emit(now, launch_action, zone)
        for entry in state.put_events[len(previous.put_events) :]:
            event = events.put(entry)
            group = event["detail"].get("AutoScalingGroupName") if isinstance(event["detail"], dict) else None
            self._emit(now, event, self.world.groups.get(group or ""))
        for warning in state.spot_warnings[len(previous.spot_warnings) :]:
            zone = self._zone_of_instance(warning["instance"], state, previous)
            self._emit(now, events.spot_warning(warning["instance"]), zone)
        for failure in state.launch_failures[len(previous.launch_failures) :]:
            zone = self.world.groups.get(failure["group"])
            self._emit(now, events.launch_unsuccessful(failure["group"], failure["message"], failure["zone"]), zone)
        for instance, info in state.instances.items():
            was = previous.state_of(instance)
            if was is None or was == info.state or info.state not in LEAVING_STATES:
                continue
            zone = self._zone_of_instance(instance, state, previous)
            path = PATH_TO.get(info.state, (info.state,))
            for step in path[path.index(was) + 1 :] if was in path else path:
                self._emit(now, events.state_change(instance, step), zone)

    def _zone_of_instance(self, instance: str, *states: Snapshot):
        for state in states:
            group = state.group_of(instance)
            if group is not None:
                return self.world.groups.get(group)
        found = self.lab.instances.live.get(instance) or self.lab.instances.gone.get(instance)
        return self.world.zones.get(found.zone) if found else None

    def send(self, event: dict, zone=None) -> None:
        """An event from outside the emulator (EC2's Spot warning), delivered like any other."""
        self._emit(self.lab.clock(), event, zone)

    def lose(self, predicate) -> None:
        """EventBridge will not deliver the next event `predicate(event)` accepts."""
        with self._lock:
            self._losses.append(predicate)

    # --- delivering --------------------------------------------------------------------------------

    def _emit(self, at: float, event: dict, zone) -> None:
        instance, state = event_label(event)
        kind = event["detail-type"] + (f" {state}" if state else "")
        delivery = Delivery(kind, instance, zone.zone if zone else "", at, event=event)
        with self._lock:
            self.deliveries.append(delivery)
            lost = next((p for p in self._losses if p(event)), None)
            if lost is not None:
                self._losses.remove(lost)
        if not subscribed(event, self.groups):
            delivery.outcome = "not subscribed"
            return
        if lost is not None:
            delivery.outcome = "lost"
            return
        if self.target is None:
            delivery.outcome = "no hook"
            return
        timer = threading.Timer(self.delay, self._deliver, args=(delivery,))
        timer.daemon = True
        timer.start()

    def _deliver(self, delivery: Delivery) -> None:
        for attempt in range(1 + RETRIES):
            if self._stop.is_set():
                delivery.outcome = delivery.outcome or "not delivered: lab stopped"
                return
            delivery.attempts = attempt + 1
            delivery.sent = delivery.sent or self.lab.clock()
            ok, result, error = self.target(delivery.event)
            delivery.done = self.lab.clock()
            delivery.result = result
            if ok:
                delivery.outcome = str((result or {}).get("outcome", "ok"))
                return
            delivery.outcome = f"error: {error}"
            time.sleep(RETRY_SECONDS)

    def start_schedule(self) -> None:
        def run() -> None:
            while not self._stop.wait(self.schedule_seconds):
                self._emit(self.lab.clock(), events.scheduled(self.rule), None)

        self._schedule = threading.Thread(target=run, name="schedule", daemon=True)
        self._schedule.start()

    def reconcile_now(self) -> None:
        """One scheduled event now (the rule fires), delivered after the delay like any other."""
        self._emit(self.lab.clock(), events.scheduled(self.rule), None)

    def since(self, at: float) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.observed >= at]

    def pending(self) -> int:
        """Deliveries not finished yet."""
        with self._lock:
            return sum(1 for d in self.deliveries if not d.outcome)

    def stop(self) -> None:
        self._stop.set()
        if self.lab.listeners and self.observe in self.lab.listeners:
            self.lab.listeners.remove(self.observe)
