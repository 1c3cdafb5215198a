"""The Auto Scaling lifecycle stand-in patched into moto (nat_lab.moto_shims.lifecycle), driven
through boto3 the way the hook and the NAT instance's user data call it. What it does is read back
from the emulator: lifecycle states, EC2 states, the group's members, and the recorded calls."""

from __future__ import annotations

import re
import time

import pytest
from botocore.exceptions import ClientError

from nat_lab import REPO, events, hook, moto_shims
from nat_lab.moto import Moto, MotoPatchError
from nat_lab.world import assert_converged, in_service, seed_world

LAUNCH_HOOK = "nat-asg-hook-launch"
TERMINATE_HOOK = "nat-asg-hook-terminate"


def make_group(moto, name="nat-a", launch_timeout=300, terminate_timeout=None, default_result="ABANDON") -> None:
    """A single-instance group in one subnet whose hooks exist before its first launch (Terraform's
    `initial_lifecycle_hook`: CreateAutoScalingGroup's LifecycleHookSpecificationList)."""
    ec2, autoscaling = moto.client("ec2"), moto.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    template = f"{name}-lt"
    ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData={"ImageId": ami, "InstanceType": "t4g.nano"})
    hooks = []
    if launch_timeout is not None:
        hooks.append(
            {
                "LifecycleHookName": LAUNCH_HOOK,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "HeartbeatTimeout": launch_timeout,
                "DefaultResult": default_result,
            }
        )
    if terminate_timeout is not None:
        hooks.append(
            {
                "LifecycleHookName": TERMINATE_HOOK,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": terminate_timeout,
                "DefaultResult": "CONTINUE",
            }
        )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
        VPCZoneIdentifier=subnet,
        LifecycleHookSpecificationList=hooks,
    )


def members(moto, group="nat-a") -> dict[str, str]:
    """instance -> lifecycle state, as DescribeAutoScalingGroups reports them."""
    [g] = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for i in g["Instances"]}


def ec2_state(moto, instance: str) -> str:
    [r] = moto.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    return r["Instances"][0]["State"]["Name"]


def complete(moto, result="CONTINUE", group="nat-a", hook=LAUNCH_HOOK, **target):
    return moto.client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=group, LifecycleHookName=hook, LifecycleActionResult=result, **target
    )


def refused(call) -> str:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == "ValidationError", error.value.response
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error.value.response["Error"]["Message"]


# --- every Moto: Auto Scaling's lifecycle --------------------------------------------------------------


@pytest.fixture
def hooks(fresh_moto):
    """The session's emulator, emptied: every Moto runs Auto Scaling's lifecycle hooks."""
    return fresh_moto


def test_a_group_without_hooks_is_in_service_at_once_and_has_no_action_to_complete(hooks):
    make_group(hooks, launch_timeout=None)
    [(instance, state)] = members(hooks).items()
    assert state == "InService"
    message = refused(lambda: complete(hooks, InstanceId=instance))
    assert message == f"No active Lifecycle Action found with instance ID {instance}"
    refused(lambda: complete(hooks, result="MAYBE", InstanceId="i-0123456789abcdef0"))
    ledger = hooks.lifecycle_actions()
    assert ledger["active"] == []
    assert [(c["call"], c["instance"], c["accepted"]) for c in ledger["calls"]] == [
        ("CompleteLifecycleAction", instance, False),
        ("CompleteLifecycleAction", "i-0123456789abcdef0", False),
    ]
    hooks.reset()
    assert hooks.lifecycle_actions() == {"calls": [], "active": []}


def test_a_launch_waits_for_continue_then_goes_in_service(hooks):
    make_group(hooks)
    [(instance, state)] = members(hooks).items()
    assert state == "Pending:Wait"
    assert ec2_state(hooks, instance) == "running"
    [action] = hooks.lifecycle_actions()["active"]
    assert (action["group"], action["hook"], action["instance"], action["transition"]) == (
        "nat-a",
        LAUNCH_HOOK,
        instance,
        "autoscaling:EC2_INSTANCE_LAUNCHING",
    )
    assert 290 < action["seconds_left"] <= 300
    [hook] = hooks.client("autoscaling").describe_lifecycle_hooks(AutoScalingGroupName="nat-a")["LifecycleHooks"]
    assert hook["LifecycleHookName"] == LAUNCH_HOOK

    refused(lambda: complete(hooks, hook="another-hook", InstanceId=instance))  # not this hook's action
    complete(hooks, LifecycleActionToken=action["token"])
    assert members(hooks) == {instance: "InService"}
    assert hooks.lifecycle_actions()["active"] == []
    assert refused(lambda: complete(hooks, InstanceId=instance)) == f"No active Lifecycle Action found with instance ID {instance}"


def test_an_abandoned_launch_is_terminated_and_replaced(hooks):
    make_group(hooks)
    [first] = members(hooks)
    complete(hooks, result="ABANDON", InstanceId=first)
    assert ec2_state(hooks, first) == "terminated"
    [(second, state)] = members(hooks).items()
    assert second != first and state == "Pending:Wait"
    [action] = hooks.lifecycle_actions()["active"]
    assert action["instance"] == second
    calls = hooks.lifecycle_actions()["calls"]
    assert [(c["instance"], c["result"], c["accepted"]) for c in calls] == [(first, "ABANDON", True)]


def test_a_terminating_instance_waits_for_its_hook_and_its_replacement_comes_at_once(hooks):
    make_group(hooks, launch_timeout=None, terminate_timeout=300)
    [old] = members(hooks)
    assert members(hooks) == {old: "InService"}  # no launch hook: InService at once
    hooks.client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=old, ShouldDecrementDesiredCapacity=False)
    now = members(hooks)
    [new] = set(now) - {old}
    assert now == {old: "Terminating:Wait", new: "InService"}
    assert ec2_state(hooks, old) == "running"  # still forwarding while it hands its zone over
    [action] = hooks.lifecycle_actions()["active"]
    assert (action["instance"], action["hook"], action["transition"]) == (old, TERMINATE_HOOK, "autoscaling:EC2_INSTANCE_TERMINATING")

    complete(hooks, hook=TERMINATE_HOOK, LifecycleActionToken=action["token"])
    assert members(hooks) == {new: "InService"}
    assert ec2_state(hooks, old) == "terminated"
    refused(lambda: complete(hooks, hook=TERMINATE_HOOK, InstanceId=old))


def test_an_unhealthy_instance_is_replaced_through_the_terminate_hook(hooks):
    make_group(hooks, launch_timeout=None, terminate_timeout=300)
    [old] = members(hooks)
    hooks.client("autoscaling").set_instance_health(InstanceId=old, HealthStatus="Unhealthy")
    now = members(hooks)
    [new] = set(now) - {old}
    assert now == {old: "Terminating:Wait", new: "InService"}


def test_the_heartbeat_timeout_applies_the_default_result_and_a_heartbeat_defers_it(hooks):
    make_group(hooks, launch_timeout=2, default_result="ABANDON")
    [first] = members(hooks)
    heartbeat = hooks.client("autoscaling").record_lifecycle_action_heartbeat
    time.sleep(1.2)
    heartbeat(AutoScalingGroupName="nat-a", LifecycleHookName=LAUNCH_HOOK, InstanceId=first)
    time.sleep(1.2)  # 2.4 s after the launch, 1.2 s after the heartbeat
    assert members(hooks) == {first: "Pending:Wait"}
    time.sleep(1.2)  # 2.4 s after the heartbeat: timed out, abandoned, replaced
    now = members(hooks)
    assert first not in now and list(now.values()) == ["Pending:Wait"]
    assert ec2_state(hooks, first) == "terminated"
    calls = hooks.lifecycle_actions()["calls"]
    assert [(c["call"], c["instance"], c["result"]) for c in calls] == [
        ("RecordLifecycleActionHeartbeat", first, None),
        ("timeout", first, "ABANDON"),
    ]


# --- with the hook: the Lambda completes a leaving NAT's terminate action --------------------------------


def test_the_hook_completes_a_terminate_action_and_the_group_lets_the_old_nat_go(hooks, tmp_path):
    """The real binary on a terminate lifecycle action, against the stand-in in hooks mode: it cuts
    the zone over to the group's newer InService instance, then completes the action with CONTINUE,
    and only then does the old instance leave the group and EC2."""
    world = seed_world(hooks, zones=("us-east-1a", "us-east-1b"))
    config = world.write_config(tmp_path / "hook-config.json")
    g = world.groups["nat-us-east-1a"]
    autoscaling = hooks.client("autoscaling")
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=g.name,
        LifecycleHookName=TERMINATE_HOOK,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=300,
        DefaultResult="CONTINUE",
    )
    assert hook.run(hooks.env(), "reconcile", config=config).code == 0
    [old] = in_service(hooks, g.name)
    assert_converged(hooks, world, g.name, old)

    autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=old, ShouldDecrementDesiredCapacity=False)
    [new] = in_service(hooks, g.name)
    assert members(hooks, g.name) == {old: "Terminating:Wait", new: "InService"}

    event = events.load("terminate-lifecycle-action.json")
    event["detail"].update(AutoScalingGroupName=g.name, EC2InstanceId=old)
    path = events.write(event, tmp_path)
    run = hook.run(hooks.env(), "replay", str(path), config=config)
    assert run.code == 0, run.stderr
    assert (run.result["outcome"], run.result["instance_id"], run.result["lifecycle_action"]) == ("applied", new, "CONTINUE")
    assert members(hooks, g.name) == {new: "InService"}
    assert ec2_state(hooks, old) == "terminated"
    assert_converged(hooks, world, g.name, new)
    [call] = hooks.lifecycle_actions()["calls"]
    assert (call["call"], call["group"], call["hook"], call["instance"], call["result"], call["accepted"]) == (
        "CompleteLifecycleAction",
        g.name,
        TERMINATE_HOOK,
        old,
        "CONTINUE",
        True,
    )

    again = hook.run(hooks.env(), "replay", str(path), config=config)  # a second delivery
    assert again.code == 0, again.stderr
    assert again.result["lifecycle_action"] == "already completed", again.result
    assert [c["accepted"] for c in hooks.lifecycle_actions()["calls"]] == [True, False]
    assert members(hooks, g.name) == {new: "InService"}


# --- the patches prove themselves at start ----------------------------------------------------------

# Every patch the server's self-check drives (nat_lab.moto_shims.selfcheck); lambda-signatures only
# matters under IAM enforcement, where tests/terraform/test_terraform_iam.py depends on it.
CHECKED = sorted(set(moto_shims.patches()) - {"fidelity.lambda-signatures"})


@pytest.mark.parametrize("patch", CHECKED)
def test_a_patch_that_no_longer_takes_effect_stops_the_server_at_start_naming_it(patch, logs, monkeypatch):
    """As with a moto whose internals moved: the patch is left out, and the server must refuse to
    serve, naming the moto version and that patch, instead of a tool waiting on the behaviour."""
    monkeypatch.setenv(moto_shims.SKIP_ENV, patch)
    with pytest.raises(MotoPatchError) as refused_start:
        Moto(log_dir=logs)
    message = str(refused_start.value)
    assert f"moto {moto_shims.moto_version()}" in message and repr(patch) in message, message
    assert f"written for moto {moto_shims.WRITTEN_FOR}" in message, message


def test_a_private_name_that_is_gone_is_named_with_its_patch():
    with pytest.raises(moto_shims.ShimError) as gone, moto_shims.patching("lifecycle"):
        from moto.autoscaling import models

        models.FakeAutoScalingGroup.no_such_method  # noqa: B018 - the name moto no longer has
    assert "'lifecycle'" in str(gone.value) and "no_such_method" in str(gone.value)


def test_the_lock_installs_the_moto_the_patches_were_written_for():
    assert moto_shims.moto_version() == moto_shims.WRITTEN_FOR, "make lock moved moto: port the patches, then WRITTEN_FOR"
    locked = re.search(r"^moto==(\S+) ", (REPO / "requirements.txt").read_text(), re.M)
    assert locked and locked.group(1) == moto_shims.WRITTEN_FOR
