"""`make demo`: nat-asg-hook end to end against a local AWS emulator.

Starts moto on a free loopback port, applies the `local` Terraform environment to it (three zones:
VPC, subnets, route tables, the hook's Lambda, EventBridge wiring, IAM, queue and alarms, and one NAT
Auto Scaling group per zone), serves the real binary as that Lambda function under
`cargo lambda watch` with the Terraform output `hook_config` as its configuration, and tells four
short stories, each checked against the emulator's state. Ends with `terraform destroy`. Exits
non-zero if any story ends wrong. Stops everything it started.

moto emits no EventBridge events: where AWS would deliver an event, the demo delivers the same
event (built from events/ and the instance the group really launched) with `cargo lambda invoke`.
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
from .moto import Moto
from .world import World, in_service, replace_instance, snapshot

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

    # --- the stories -----------------------------------------------------------------------------

    def build_world(self) -> None:
        self.heading("The world: terraform apply of the local environment (3 zones) to the emulator")
        lambda_zip = tf_lab.build_zip(hook.hook_bin(), self.workdir)
        self.terraform, self.var_args = tf_lab.local_environment(self.workdir, self.moto.endpoint, self.moto.env(), lambda_zip)
        applied = self.terraform.apply(*self.var_args)
        summary = next((line for line in applied.stdout.splitlines() if line.startswith("Apply complete")), "applied")
        self.say(f"   {summary} ({applied.seconds:.0f}s)")
        outputs = self.terraform.outputs()
        self.config_path = self.workdir / "hook-config.json"
        self.config_path.write_text(outputs["hook_config"])
        self.say(f"   function {outputs['lambda_function_name']}; configuration from `terraform output hook_config`")
        self.world = World.from_config(json.loads(outputs["hook_config"]))
        self.say("   the private tables have no default route and the EIPs are unassociated: the hook owns both")

    def destroy(self) -> None:
        if self.terraform is None:
            return
        self.heading("terraform destroy")
        destroyed = self.terraform.destroy(*self.var_args)
        summary = next((line for line in destroyed.stdout.splitlines() if line.startswith("Destroy complete")), "destroyed")
        self.say(f"   {summary} ({destroyed.seconds:.0f}s)")

    def run(self) -> int:
        started = time.monotonic()
        self.terraform = None
        try:
            self.build_world()
            code = self.tell(started)
        finally:
            self.destroy()
        self.say(f"   total {time.monotonic() - started:.1f}s")
        return code

    def tell(self, started: float) -> int:
        self.say(f"   moto at {self.moto.endpoint}")
        self.function = hook.LambdaWatch(self.env, self.config_path.read_text(), self.logs)
        try:
            self.say(f"   function nat-asg-hook served by `cargo lambda watch` on 127.0.0.1:{self.function.port}")
            self.verify(expect_healthy=False)
            self.heading("Bring-up: each group's launch event")
            for g in self.world.groups.values():
                [instance] = in_service(self.moto, g.name)
                result = self.invoke(events.launch(g.name, instance, g.zone), f"{g.name} launched {instance}")
                self.check(bool(result) and result["outcome"] == "applied", f"{g.name}: applied")
            self.verify(expect_healthy=True)
            self.stories()
        finally:
            self.function.stop()
        self.heading("The end: every zone green")
        self.verify(expect_healthy=True)
        elapsed = time.monotonic() - started
        if self.failures:
            self.say(style(f"   {len(self.failures)} check(s) failed in {elapsed:.1f}s:", "31"))
            for f in self.failures:
                self.say(f"     - {f}")
            return 1
        self.say(style(f"   every story ended right ({elapsed:.1f}s)", "32"))
        return 0

    def stories(self) -> None:
        groups = list(self.world.groups.values())
        a, b = groups[0], groups[1]

        self.heading(f"Story 1: the NAT in {a.zone} is replaced")
        old, new = replace_instance(self.moto, a.name)
        self.say(f"   terminated {old} through {a.name}; the group launched {new}")
        self.verify(expect_healthy=False)
        event = events.launch(a.name, new, a.zone)
        result = self.invoke(event, "the launch event")
        self.check(bool(result) and result["outcome"] == "applied" and result["instance_id"] == new, f"routes and EIP moved to {new}")
        self.verify(expect_healthy=True)

        self.heading("Story 2: the same event delivered again")
        before = snapshot(self.moto, self.world)
        result = self.invoke(event, "a duplicate delivery")
        self.check(bool(result) and result["outcome"] == "unchanged" and result["actions"] == [], "unchanged, no mutating call")
        self.check(snapshot(self.moto, self.world) == before, "nothing moved")

        self.heading(f"Story 3: a late event for the old instance {old}")
        result = self.invoke(events.launch(a.name, old, a.zone), "an old event, minutes late")
        self.check(bool(result) and result["outcome"] == "stale", f"stale: {result and result.get('reason')}")
        self.check(snapshot(self.moto, self.world) == before, "nothing moved back to the old instance")
        self.verify(expect_healthy=True)

        self.heading(f"Story 4: the NAT in {b.zone} is replaced and its event is lost")
        old_b, new_b = replace_instance(self.moto, b.name)
        self.say(f"   terminated {old_b}; the group launched {new_b}; no event arrives")
        self.verify(expect_healthy=False)
        result = self.invoke(events.scheduled(), "the reconcile schedule fires")
        healed = bool(result) and any(g["auto_scaling_group"] == b.name and g["outcome"] == "applied" for g in result.get("groups", []))
        self.check(healed, f"the scheduled reconcile healed {b.name}")
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
