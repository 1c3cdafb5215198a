"""What must hold after every invocation of the hook, checked on the emulator's state (read
directly, never through the proxy), each breach a violation in words:

- a stale event (its instance is no longer the group's) moves nothing at all, even when it fails;
- a terminate action moves its own group only, and only towards the group's newest in-service
  instance; on success no table of the group routes through the leaving instance any more, and the
  action is completed (CONTINUE, or found already completed);
- any other event moves its own group only, and only towards its instance's ENI;
- a success is never false: exit 0 with `applied`/`unchanged` means the group's EIP, source/dest
  check and every default route are on that instance right now; exit 0 with `stale` means the
  instance is not the group's; a scheduled reconcile that exits 0 left every group converged;
- a failure is reported as such (exit 1, the Lambda error that makes Lambda retry), never as a
  usage or malformed-event error (checked where the exit code is seen, in `delivery`).
"""

from __future__ import annotations

from ..constants import DESTINATION
from ..state import State
from ..world import World, assert_converged, unrelated_touched
from .stream import Event


class Invariants:
    def __init__(self, moto, world: World, violations: list[str]):
        self.moto = moto
        self.world = world
        self.violations = violations

    def check_moves(self, what: str, before: dict, after: dict, targets: dict[str, str]) -> None:
        """Only the targeted groups may change, and only towards their target ENI (`State.movable`)."""
        for group, b in before.items():
            a = after[group]
            target = targets.get(group)
            if target is None:
                if a != b:
                    self.violations.append(f"moved: {what} changed {group}: {b} -> {a}")
                continue
            if a["eip_eni"] not in (b["eip_eni"], target):
                self.violations.append(f"moved: {what}: {group} EIP went to {a['eip_eni']}, not {target}")
            for table, routes in a["routes"].items():
                for dest, hop in routes.items():
                    allowed = (b["routes"][table].get(dest), target) if dest == DESTINATION else (b["routes"][table].get(dest),)
                    if hop not in allowed:
                        self.violations.append(f"moved: {what}: {table} {dest} went to {hop}, allowed {allowed}")
                if set(routes) != set(b["routes"][table]):
                    self.violations.append(f"moved: {what}: {table} routes {set(b['routes'][table])} -> {set(routes)}")
            for instance, check in a["sdc"].items():
                if check != b["sdc"].get(instance) and check is not False:
                    self.violations.append(f"moved: {what}: source/dest check of {instance} turned on")

    def check_success(self, what: str, ev: Event, live: bool, result: dict, state: State) -> None:
        outcome = result["outcome"]
        try:
            if ev.group is None:
                for group, zone in state.zones.items():
                    self.converged_on(state, group, zone.in_service[0].id)
            elif ev.kind == "terminate":
                assert outcome in ("applied", "unchanged"), f"outcome {outcome} for a terminate action"
                assert result.get("lifecycle_action") in ("CONTINUE", "already completed"), result.get("lifecycle_action")
                routed = {t: r.target for t, r in state.zone(ev.group).default_routes().items() if r is not None}
                assert ev.eni not in routed.values(), f"tables still route through the leaving {ev.instance}: {routed}"
            elif live:
                assert outcome in ("applied", "unchanged"), f"outcome {outcome} for the group's own instance"
                assert result["instance_id"] == ev.instance, f"reported {result['instance_id']}"
                self.converged_on(state, ev.group, ev.instance)
            else:
                assert outcome == "stale", f"outcome {outcome} for an instance the group no longer holds"
                assert result["actions"] == [], result["actions"]
        except AssertionError as e:
            self.violations.append(f"false success: {what}: exit 0 but {e}")

    def converged_on(self, state: State, group: str, instance: str) -> None:
        """The group holds `instance` alone InService and is converged on it, unrelated routes untouched."""
        zone = state.zone(group)
        held = [i.id for i in zone.in_service]
        assert held == [instance], f"{group} holds {held}, not {instance}"
        problems = zone.problems(instance) + unrelated_touched(self.world, zone)
        assert not problems, "; ".join(problems)

    def check_final(self) -> None:
        """After the final reconcile succeeded: every group on its current instance."""
        for group in self.world.groups:
            try:
                assert_converged(self.moto, self.world, group)
            except AssertionError as e:
                self.violations.append(f"false success: final reconcile exit 0 but {e}")
