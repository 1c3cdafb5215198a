"""The `local` environment (three zones) applied by Terraform to moto, then driven by the real binary:
the ASGs come after the hook's wiring, a plan right after the apply has nothing to do, a launch event
built from each ASG's instance converges its zone (EIP, source/dest check, every private table's
default route), a second apply after the hook changes nothing (Terraform does not fight the hook),
and destroy leaves the emulator as it found it. One apply serves every test, in file order.

Assertions read the emulator's state. The emulator is this module's own moto server, with the
fidelity fixes of nat_lab.moto_shims (fields moto 5 drops that AWS returns), as every `Moto` has."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from nat_lab import events, hook
from nat_lab import terraform as tf_lab
from nat_lab.moto import Moto
from nat_lab.state import read_state
from nat_lab.world import DESTINATION, World, eip_eni, in_service, routes

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


@dataclass
class Stack:
    tf: tf_lab.Terraform
    var_args: list[str]
    apply_log: str
    outputs: dict
    baseline: dict
    work: Path

    @property
    def config(self) -> dict:
        return json.loads(self.outputs["hook_config"])

    def config_file(self) -> Path:
        path = self.work / "hook-config.json"
        path.write_text(self.outputs["hook_config"])
        return path


@pytest.fixture(scope="module")
def emulator(logs):
    server = Moto(log_dir=logs)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(emulator, tmp_path_factory, logs) -> Stack:
    work = tmp_path_factory.mktemp("terraform-local")
    baseline = tf_lab.inventory(emulator)
    lambda_zip = tf_lab.build_zip(hook.hook_bin(), work)
    tf, var_args = tf_lab.local_environment(work, emulator.endpoint, emulator.env(), lambda_zip)
    applied = tf.apply(*var_args)
    yield Stack(tf, var_args, applied.stdout, tf.outputs(), baseline, work)
    (logs / "terraform-local-timings.json").write_text(json.dumps(tf.timings, indent=2))


def test_apply_builds_every_zone_and_renders_the_hook_config(stack, emulator):
    config = stack.config
    assert set(config) == {"groups", "destination_cidr_block"} and config["destination_cidr_block"] == DESTINATION
    assert sorted(g["availability_zone"] for g in config["groups"].values()) == list(ZONES)
    outputs = stack.outputs
    for zone in ZONES:
        group = outputs["nat_autoscaling_group_names"][zone]
        assert config["groups"][group] == {
            "availability_zone": zone,
            "eip_allocation_id": outputs["nat_eip_allocation_ids"][zone],
            "route_table_ids": [outputs["private_route_table_ids"][zone]],
        }
        [asg] = emulator.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
        assert (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]) == (1, 1, 1)
        assert asg["VPCZoneIdentifier"] == outputs["public_subnet_ids"][zone]
        assert len(in_service(emulator, group)) == 1
        # Terraform declares no default route: the private tables have none until the hook runs.
        assert DESTINATION not in routes(emulator, outputs["private_route_table_ids"][zone])
        # The EIP is the hook's to associate.
        assert eip_eni(emulator, outputs["nat_eip_allocation_ids"][zone]) is None


def test_the_function_runs_with_the_rendered_config_and_its_wiring(stack, emulator):
    function = emulator.client("lambda").get_function(FunctionName=stack.outputs["lambda_function_name"])
    conf = function["Configuration"]
    assert (conf["Runtime"], conf["Handler"], conf["Architectures"]) == ("provided.al2023", "bootstrap", ["x86_64"])
    assert conf["Environment"]["Variables"]["NAT_ASG_HOOK_CONFIG"] == stack.outputs["hook_config"]
    assert conf["TracingConfig"]["Mode"] == "Active"
    assert not conf.get("VpcConfig", {}).get("SubnetIds"), "the function runs outside the VPC"
    assert function["Concurrency"]["ReservedConcurrentExecutions"] >= 1

    name = stack.outputs["lambda_function_name"]
    events_client = emulator.client("events")
    launch = events_client.describe_rule(Name=f"{name}-launch")
    pattern = json.loads(launch["EventPattern"])
    assert pattern["source"] == ["aws.autoscaling"]
    assert set(pattern["detail-type"]) == {"EC2 Instance-launch Lifecycle Action", "EC2 Instance Launch Successful"}
    assert sorted(pattern["detail"]["AutoScalingGroupName"]) == sorted(stack.config["groups"])
    assert events_client.describe_rule(Name=f"{name}-reconcile")["ScheduleExpression"].startswith("rate(")
    for rule in (f"{name}-launch", f"{name}-reconcile"):
        [target] = events_client.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] == conf["FunctionArn"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0 and target["DeadLetterConfig"]["Arn"].endswith("-dead-letter")
    policy = json.loads(emulator.client("lambda").get_policy(FunctionName=name)["Policy"])
    source_arns = {s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]}
    assert source_arns == {launch["Arn"], events_client.describe_rule(Name=f"{name}-reconcile")["Arn"]}
    invoke = emulator.client("lambda").get_function_event_invoke_config(FunctionName=name)
    assert invoke["MaximumEventAgeInSeconds"] <= 300
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"].endswith("-dead-letter")


def test_nat_groups_are_created_only_after_the_hooks_launch_wiring(stack):
    """The first launch must find the rule, target, permission and policy in place: in the apply's
    own log, every ASG starts creating after all of them completed."""
    log = stack.apply_log.splitlines()

    def line_of(needle: str) -> int:
        return next(i for i, line in enumerate(log) if needle in line)

    wiring_done = max(
        line_of(f"{address}: Creation complete")
        for address in (
            "module.hook.aws_cloudwatch_event_rule.launch",
            'module.hook.aws_cloudwatch_event_target.this["launch"]',
            'module.hook.aws_lambda_permission.events["launch"]',
            "module.hook.aws_iam_role_policy.this",
            "module.hook.aws_lambda_function_event_invoke_config.this",
        )
    )
    for zone in ZONES:
        assert line_of(f'module.nat["{zone}"].aws_autoscaling_group.this: Creating...') > wiring_done


def test_a_plan_right_after_apply_has_no_changes(stack):
    changed, plan = stack.tf.plan_changes(*stack.var_args)
    assert not changed, plan.stdout[-6000:]


def test_launch_events_through_the_real_binary_converge_every_zone(stack, emulator):
    config_file = stack.config_file()
    for group, settings in stack.config["groups"].items():
        [instance] = in_service(emulator, group)
        event = events.write(events.launch(group, instance, settings["availability_zone"]), stack.work)
        run = hook.run(emulator.env(), "replay", str(event), config=config_file)
        assert run.code == 0, run.stderr
        assert run.result["outcome"] == "applied" and run.result["instance_id"] == instance
        read_state(emulator, World.from_config(stack.config)).assert_converged(group, instance)

    verify = hook.run(emulator.env(), "verify", config=config_file)
    assert verify.code == 0, verify.stdout + verify.stderr


def test_a_second_apply_after_the_hook_changes_nothing(stack, emulator):
    """Terraform leaves the routes and the EIP association the hook made (no aws_route, no inline
    routes in the private tables, no association on the EIP)."""
    before = {
        table: routes(emulator, table)[DESTINATION].get("NetworkInterfaceId") for table in stack.outputs["private_route_table_ids"].values()
    }
    again = stack.tf.apply(*stack.var_args)
    assert "No changes." in again.stdout, again.stdout[-6000:]
    after = {table: routes(emulator, table)[DESTINATION].get("NetworkInterfaceId") for table in before}
    assert after == before and all(after.values())
    assert hook.run(emulator.env(), "verify", config=stack.config_file()).code == 0


def test_destroy_leaves_nothing_behind(stack, emulator):
    stack.tf.destroy(*stack.var_args)
    left = tf_lab.inventory(emulator)
    extra = {kind: sorted(left[kind] - stack.baseline[kind]) for kind in left if left[kind] - stack.baseline[kind]}
    assert not extra, f"left behind after destroy: {extra}"
    assert left == stack.baseline
