"""`make demo`: nat-asg-hook end to end against a local AWS emulator.

Starts moto on a free loopback port, with Auto Scaling's lifecycle hooks honoured (a new NAT waits
in Pending:Wait until it completes its own launch action; a leaving one in Terminating:Wait until
the hook completes its terminate action), applies the `local` Terraform environment to it (three
zones: VPC, subnets, route tables, the hook's Lambda, EventBridge wiring, IAM, queue and alarms, and
one NAT Auto Scaling group per zone), serves the real binary as that Lambda function under
`cargo lambda watch` with the Terraform output `hook_config` as its configuration, and tells the
stories of the design, each checked against the emulator's state. Ends with `terraform destroy`.
Then, as root, "Live egress": two stories in the data-plane lab with real packets (lab/live_egress.py).
Exits non-zero if any story ends wrong. Stops everything it started.

moto runs no instance: where a NAT's user data would pass its self-check and complete its own
launch action, the demo completes it (CONTINUE) and says so. moto emits no EventBridge events: where
AWS would deliver one, the demo delivers the same event (built from events/ and the instance the
group really launched) with `cargo lambda invoke`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from . import events, hook
from . import terraform as tf_lab
from .constants import LAUNCH_HOOK
from .lab import live_egress
from .moto import Moto
from .standin import LaunchStandIn
from .state import read_state
from .world import World, in_service, snapshot

TTY = sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def style(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if TTY else text


class Demo:
    def __init__(self, moto: Moto, workdir: Path, logs: Path):
        self.moto = moto
        self.workdir = workdir
        self.logs = logs
        self.failures: list[str] = []
        self.env = moto.env()
        self.autoscaling = moto.client("autoscaling")
        if TTY:
            self.env["CLICOLOR_FORCE"] = "1"

    # --- plumbing --------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def heading(self, text: str) -> None:
        self.say()
        self.say(style(f"── {text} " + "─" * max(0, 96 - len(text)), "1;36"))

    def check(self, ok: bool, what: str) -> None:
        mark = style("✔", "32") if ok else style("✘", "31")
        self.say(f"   {mark} {what}")
        if not ok:
            self.failures.append(what)

    def verify(self, expect_healthy: bool) -> None:
        run = hook.run(self.env, "verify", config=self.config_path)
        for line in run.stdout.rstrip().splitlines():
            self.say(f"   {line}")
        verdict = "green (exit 0)" if run.code == 0 else f"red (exit {run.code})"
        self.check(
            (run.code == 0) == expect_healthy,
            f"verify is {verdict}" + ("" if (run.code == 0) == expect_healthy else f", expected {'green' if expect_healthy else 'red'}"),
        )

    def invoke(self, event: dict, label: str) -> dict | None:
        path = events.write(event, self.workdir)
        self.say(f"   $ cargo lambda invoke --data-file {path.name} nat-asg-hook   # {label}")
        started = time.monotonic()
        code, result, stderr = self.function.invoke(path)
        wall = (time.monotonic() - started) * 1000
        if code != 0 or result is None:
            self.check(False, f"invoke failed: {stderr.strip()[-300:]}")
            return None
        actions = ", ".join(a["action"] for a in result["actions"]) or "no change"
        self.say(f"   → {style(result['outcome'], '1')} in {result['duration_ms']} ms (handler), {wall:.0f} ms round trip: {actions}")
        return result

    def members(self, group: str) -> dict[str, str]:
        out = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        return {i["InstanceId"]: i["LifecycleState"] for i in out["AutoScalingGroups"][0]["Instances"]}

    def health(self, group: str, instance: str) -> str | None:
        out = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        return next((i["HealthStatus"] for i in out["AutoScalingGroups"][0]["Instances"] if i["InstanceId"] == instance), None)

    def waiting(self, group: str) -> str:
        [instance] = [i for i, state in self.members(group).items() if state == "Pending:Wait"]
        return instance

    def prove(self, group: str, instance: str) -> None:
        """What the NAT's user data does once forwarding, masquerade and egress check out."""
        self.autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=group, LifecycleHookName=LAUNCH_HOOK, InstanceId=instance, LifecycleActionResult="CONTINUE"
        )
        self.say(f"   {instance} passed its self-check and completed its own launch action: CONTINUE → InService")

    def boot_while(self, work):
        """Runs `work` (a terraform apply or destroy) while a stand-in for the NAT instances' user data
        proves every instance that waits on its launch action; a stand-in that cannot do its job
        stops terraform rather than letting it wait out its ten minutes for capacity."""
        with LaunchStandIn(self.moto, on_failure=self.terraform.abort):
            return work()

    # --- the stories -----------------------------------------------------------------------------

    def build_world(self) -> None:
        self.heading("The world: terraform apply of the local environment (3 zones) to the emulator")
        lambda_zip = tf_lab.build_zip(hook.hook_bin(), self.workdir)
        self.terraform, self.var_args = tf_lab.local_environment(self.workdir, self.moto.endpoint, self.moto.env(), lambda_zip)
        applied = self.boot_while(lambda: self.terraform.apply(*self.var_args))
        summary = next((line for line in applied.stdout.splitlines() if line.startswith("Apply complete")), "applied")
        self.say(f"   {summary} ({applied.seconds:.0f}s)")
        outputs = self.terraform.outputs()
        self.config_path = self.workdir / "hook-config.json"
        self.config_path.write_text(outputs["hook_config"])
        self.say(f"   function {outputs['lambda_function_name']}; configuration from `terraform output hook_config`")
        self.world = World.from_config(json.loads(outputs["hook_config"]))
        self.say("   each NAT passed its self-check and completed its own launch action (the demo stands in for its user data)")
        self.say("   the private tables have no default route and the EIPs are unassociated: the hook owns both")

    def destroy(self) -> None:
        if self.terraform is None:
            return
        self.heading("terraform destroy")
        destroyed = self.boot_while(lambda: self.terraform.destroy(*self.var_args))
        summary = next((line for line in destroyed.stdout.splitlines() if line.startswith("Destroy complete")), "destroyed")
        self.say(f"   {summary} ({destroyed.seconds:.0f}s)")

    def run(self) -> int:
        started = time.monotonic()
        self.terraform = None
        try:
            self.build_world()
            self.tell()
        finally:
            self.destroy()
        self.live_egress()
        return self.verdict(started)

    def live_egress(self) -> None:
        reason = live_egress.skipped()
        if reason:
            self.say()
            self.say(f"   live egress skipped: {reason}")
            return
        self.heading("Live egress: real packets through the real user data, per zone, once a second")
        try:
            live_egress.tell(self, self.workdir / "lab")
        except Exception as exc:  # noqa: BLE001 - told as a failed story; the lab has stopped what it started
            self.check(False, f"live egress: {type(exc).__name__}: {exc}")

    def verdict(self, started: float) -> int:
        elapsed = time.monotonic() - started
        if self.failures:
            self.say(style(f"   {len(self.failures)} check(s) failed in {elapsed:.1f}s:", "31"))
            for f in self.failures:
                self.say(f"     - {f}")
            return 1
        self.say(style(f"   every story ended right ({elapsed:.1f}s)", "32"))
        return 0

    def tell(self) -> None:
        self.say(f"   moto at {self.moto.endpoint} (Auto Scaling lifecycle hooks honoured)")
        self.function = hook.LambdaWatch(self.env, self.config_path.read_text(), self.logs)
        try:
            self.say(f"   function nat-asg-hook served by `cargo lambda watch` on 127.0.0.1:{self.function.port}")
            self.verify(expect_healthy=False)
            self.heading("Bring-up: each group's Launch Successful event")
            for g in self.world.groups.values():
                [instance] = in_service(self.moto, g.name)
                result = self.invoke(events.launch(g.name, instance, g.zone), f"{g.name} launched {instance}")
                self.check(bool(result) and result["outcome"] == "applied", f"{g.name}: applied")
            self.verify(expect_healthy=True)
            self.stories()
        finally:
            self.function.stop()
        self.heading("The end of the control-plane stories: every zone green")
        self.verify(expect_healthy=True)

    def stories(self) -> None:
        groups = sorted(self.world.groups.values(), key=lambda g: g.name)
        a, b, c = groups[0], groups[1], groups[2]

        self.heading(f"Story 1: a planned instance refresh in {a.zone} (launch before terminate)")
        [old] = in_service(self.moto, a.name)
        self.autoscaling.set_desired_capacity(AutoScalingGroupName=a.name, DesiredCapacity=2)
        new = self.waiting(a.name)
        self.say(f"   the refresh launches {new} beside {old}; it boots and checks itself while {old} carries the zone")
        result = self.invoke(events.launch(a.name, new, a.zone, "launch-lifecycle-action"), "its launch lifecycle action")
        self.check(bool(result) and result["outcome"] == "ignored", "the launch lifecycle action moves nothing: not proven yet")
        self.verify(expect_healthy=True)
        self.prove(a.name, new)
        event = events.launch(a.name, new, a.zone)
        result = self.invoke(event, "EC2 Instance Launch Successful")
        kinds = [x["action"] for x in (result or {}).get("actions", [])]
        identity_first = kinds[:2] == ["associate_address", "disable_source_dest_check"] and set(kinds[2:]) <= {
            "replace_route",
            "create_route",
        }
        self.check(bool(result) and result["outcome"] == "applied" and result["instance_id"] == new, f"the zone follows {new}")
        self.check(identity_first, f"identity before routes: {', '.join(kinds)}")
        self.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=old, ShouldDecrementDesiredCapacity=True)
        result = self.invoke(events.terminate(a.name, old), f"{old}'s terminate lifecycle action")
        self.check(
            bool(result) and result["outcome"] in ("unchanged", "applied") and result.get("lifecycle_action") == "CONTINUE",
            f"nothing routes through {old} any more: the hook lets it go (CONTINUE)",
        )
        self.check(old not in self.members(a.name), f"{a.name} terminated {old}")
        self.verify(expect_healthy=True)

        self.heading("Story 2: the same Launch Successful delivered again")
        before = snapshot(self.moto, self.world)
        result = self.invoke(event, "a duplicate delivery")
        self.check(bool(result) and result["outcome"] == "unchanged" and result["actions"] == [], "unchanged, no mutating call")
        self.check(snapshot(self.moto, self.world) == before, "nothing moved")

        self.heading(f"Story 3: a late event for the old instance {old}")
        result = self.invoke(events.launch(a.name, old, a.zone), "an old event, minutes late")
        self.check(bool(result) and result["outcome"] == "stale", f"stale: {result and result.get('reason')}")
        self.check(snapshot(self.moto, self.world) == before, "nothing moved back to the old instance")

        self.heading(f"Story 4: the NAT in {b.zone} dies; its tables go to a sibling in one event, and come back")
        [dead] = in_service(self.moto, b.name)
        self.moto.client("ec2").terminate_instances(InstanceIds=[dead])
        replacement = self.waiting(b.name)
        self.say(f"   {dead} is gone; {b.name} launched {replacement}, which is booting")
        self.verify(expect_healthy=False)
        result = self.invoke(events.state_change(dead, "shutting-down"), "EC2 Instance State-change Notification")
        sibling = ((result or {}).get("failover") or {}).get("auto_scaling_group")
        self.check(bool(result) and result["outcome"] == "applied" and sibling == a.name, f"{b.name}'s tables went to {sibling}'s NAT")
        self.say(f"   {b.zone} now leaves through {a.zone}'s Elastic IP; its own stays in its zone:")
        self.verify(expect_healthy=False)
        self.prove(b.name, replacement)
        result = self.invoke(events.launch(b.name, replacement, b.zone), "EC2 Instance Launch Successful")
        self.check(bool(result) and result["outcome"] == "applied" and not result.get("failover"), f"{replacement} takes {b.zone} back")
        self.verify(expect_healthy=True)

        self.heading(f"Story 5: the NAT in {c.zone} dies and no event arrives")
        [dead] = in_service(self.moto, c.name)
        self.moto.client("ec2").terminate_instances(InstanceIds=[dead])
        replacement = self.waiting(c.name)
        self.say(f"   {dead} is gone, nobody tells the hook; {replacement} is booting")
        result = self.invoke(events.scheduled(), "the reconcile schedule fires")
        health = (result or {}).get("zone_health") or {}
        self.check(health == {"without_own_nat": 1, "failed_over": 1}, f"the schedule failed {c.name} over (zones without own NAT: 1)")
        self.prove(c.name, replacement)
        result = self.invoke(events.scheduled(), "the reconcile schedule fires again")
        health = (result or {}).get("zone_health") or {}
        self.check(health == {"without_own_nat": 0, "failed_over": 0}, f"the schedule failed {c.name} back to {replacement}")
        self.verify(expect_healthy=True)

        self.heading(f"Story 6: EC2 will reclaim the Spot NAT in {a.zone} in two minutes")
        [warned] = in_service(self.moto, a.name)
        result = self.invoke(events.spot_warning(warned), "EC2 Spot Instance Interruption Warning")
        sibling = ((result or {}).get("failover") or {}).get("auto_scaling_group")
        state = read_state(self.moto, self.world)
        self.check(
            bool(result)
            and result["outcome"] == "applied"
            and sibling not in (None, a.name)
            and set(state.serving(a.name).values()) == {sibling},
            f"{a.name}'s tables went to {sibling}'s NAT while {warned} still forwards",
        )
        nat = state.instances[warned]
        self.check(state.zone(a.name).eip.eni == nat.eni, f"{a.zone}'s own Elastic IP stays on {warned}: it never crosses zones")
        self.check(
            nat.state == "running" and self.health(a.name, warned) == "Unhealthy",
            f"{warned} marked Unhealthy in its group, still {nat.state}: the group replaces it now, not in two minutes",
        )
        replacement = self.waiting(a.name)
        self.say(f"   {a.name} launched {replacement}, which boots and checks itself; {warned} is {nat.lifecycle}")
        self.verify(expect_healthy=False)
        result = self.invoke(events.terminate(a.name, warned), f"{warned}'s terminate lifecycle action")
        self.check(
            bool(result) and result.get("lifecycle_action") == "CONTINUE" and warned not in self.members(a.name),
            f"nothing routes through {warned}: the hook lets it go (CONTINUE) before EC2 reclaims it",
        )
        self.prove(a.name, replacement)
        result = self.invoke(events.launch(a.name, replacement, a.zone), "EC2 Instance Launch Successful")
        problems = read_state(self.moto, self.world).zone(a.name).problems(replacement)
        self.check(
            bool(result) and result["outcome"] == "applied" and not result.get("failover") and not problems,
            f"{replacement} takes {a.zone} back: its own EIP, source/dest check off, every route"
            + (f" ({'; '.join(problems)})" if problems else ""),
        )
        self.verify(expect_healthy=True)


def main() -> int:
    argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    with tempfile.TemporaryDirectory(prefix="nat-asg-hook-demo-") as tmp:
        workdir = Path(tmp)
        with Moto(log_dir=workdir / "logs") as moto:
            return Demo(moto, workdir, workdir / "logs").run()


if __name__ == "__main__":
    sys.exit(main())
