"""The data-plane emulator's Auto Scaling instance refresh and its SSM Run Command on the lab's hosts
(`nat_lab.lab.motoserver`, `nat_lab.lab.ssm_hosts`), through boto3 as a driver would call them.

Assertions are on the emulator's state (groups, instances, refreshes, commands) and on what ran in the
namespaces (their output, their processes), never on logs. Root only (network namespaces): elsewhere
every test here skips, saying why."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from nat_lab.lab import netns
from nat_lab.moto import Moto

pytestmark = pytest.mark.skipif(netns.unavailable() is not None, reason=f"data-plane lab: {netns.unavailable()}")

LAUNCH, TERMINATE = "launch", "terminate"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    server = Moto(tmp_path_factory.mktemp("moto-logs"), data_plane=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh(emulator):
    emulator.reset()
    emulator.ssm_hosts({})
    return emulator


def wait_for(what: str, check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.05)


# --- instance refresh ------------------------------------------------------------------------------


def make_group(moto, name: str, hooks: bool = True, desired: int = 1) -> None:
    ec2, asg = moto.client("ec2"), moto.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.0.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=f"{name}-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t4g.nano"})
    specs = [
        {"LifecycleHookName": LAUNCH, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "HeartbeatTimeout": 600},
        {"LifecycleHookName": TERMINATE, "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "HeartbeatTimeout": 600},
    ]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=desired,
        MaxSize=desired + 1,
        DesiredCapacity=desired,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
        VPCZoneIdentifier=subnet,
        LifecycleHookSpecificationList=specs if hooks else [],
    )
    if hooks:
        for action in moto.lifecycle_actions()["active"]:
            complete(moto, name, action["hook"], action["instance"])
    wait_for("the group's first instances InService", lambda: list(members(moto, name).values()) == ["InService"] * desired)


def members(moto, group: str) -> dict[str, str]:
    [found] = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for i in found["Instances"]}


def desired(moto, group: str) -> int:
    [found] = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return found["DesiredCapacity"]


def complete(moto, group: str, hook: str, instance: str, result: str = "CONTINUE") -> None:
    moto.client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=group, LifecycleHookName=hook, InstanceId=instance, LifecycleActionResult=result
    )


def refreshes(moto, group: str, **kw) -> list[dict]:
    return moto.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=group, **kw)["InstanceRefreshes"]


def ec2_state(moto, instance: str) -> str:
    reservations = moto.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


LAUNCH_FIRST = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200}


def test_a_launch_before_terminate_refresh_replaces_the_instance_through_both_hooks(fresh):
    asg = fresh.client("autoscaling")
    make_group(fresh, "g")
    [old] = members(fresh, "g")
    refresh_id = asg.start_instance_refresh(
        AutoScalingGroupName="g", Strategy="Rolling", Preferences={**LAUNCH_FIRST, "InstanceWarmup": 1}
    )["InstanceRefreshId"]
    assert uuid.UUID(refresh_id)

    # the replacement launches first, into its launch hook; the old one stays InService
    new = wait_for("the refresh's new instance", lambda: [i for i, s in members(fresh, "g").items() if i != old and s == "Pending:Wait"])[0]
    assert desired(fresh, "g") == 2 and members(fresh, "g")[old] == "InService"
    with pytest.raises(ClientError) as refused:
        asg.start_instance_refresh(AutoScalingGroupName="g", Preferences=LAUNCH_FIRST)
    assert refused.value.response["Error"]["Code"] == "InstanceRefreshInProgress"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    [running] = refreshes(fresh, "g")
    assert running["InstanceRefreshId"] == refresh_id and running["Status"] == "InProgress" and "EndTime" not in running
    assert running["InstancesToUpdate"] == 1 and running["PercentageComplete"] == 0

    complete(fresh, "g", LAUNCH, new)
    in_service = time.monotonic()
    # after the warm-up the old one enters its terminate hook, the desired capacity back to 1
    wait_for("the old instance in its terminate hook", lambda: members(fresh, "g").get(old) == "Terminating:Wait")
    assert time.monotonic() - in_service >= 0.9, "the warm-up was not kept"
    assert desired(fresh, "g") == 1 and members(fresh, "g")[new] == "InService"
    assert refreshes(fresh, "g")[0]["Status"] == "InProgress", "not over while the old instance is still in the group"

    complete(fresh, "g", TERMINATE, old)
    done = wait_for("the refresh Successful", lambda: [r for r in refreshes(fresh, "g") if r["Status"] == "Successful"])[0]
    assert done["EndTime"] >= done["StartTime"] and done["PercentageComplete"] == 100 and done["InstancesToUpdate"] == 0
    assert members(fresh, "g") == {new: "InService"}
    assert ec2_state(fresh, old) == "terminated"
    assert refreshes(fresh, "g", InstanceRefreshIds=[refresh_id])[0]["InstanceRefreshId"] == refresh_id

    # once over, another may start; newest first
    second = asg.start_instance_refresh(AutoScalingGroupName="g", Preferences=LAUNCH_FIRST)["InstanceRefreshId"]
    assert [r["InstanceRefreshId"] for r in refreshes(fresh, "g")] == [second, refresh_id]
    asg.cancel_instance_refresh(AutoScalingGroupName="g")


def test_cancelling_a_refresh_undoes_its_unspent_launch_and_keeps_the_original(fresh):
    asg = fresh.client("autoscaling")
    make_group(fresh, "c")
    [old] = members(fresh, "c")
    refresh_id = asg.start_instance_refresh(AutoScalingGroupName="c", Preferences={**LAUNCH_FIRST, "InstanceWarmup": 600})[
        "InstanceRefreshId"
    ]
    new = wait_for("the refresh's new instance", lambda: [i for i in members(fresh, "c") if i != old])[0]
    complete(fresh, "c", LAUNCH, new)
    wait_for("the new instance InService", lambda: members(fresh, "c").get(new) == "InService")

    assert asg.cancel_instance_refresh(AutoScalingGroupName="c")["InstanceRefreshId"] == refresh_id
    [cancelled] = refreshes(fresh, "c")
    assert cancelled["Status"] == "Cancelled" and "EndTime" in cancelled
    assert desired(fresh, "c") == 1
    assert members(fresh, "c") == {old: "InService", new: "Terminating:Wait"}, "the spare leaves through its terminate hook"
    complete(fresh, "c", TERMINATE, new)
    wait_for("the spare gone", lambda: members(fresh, "c") == {old: "InService"})
    time.sleep(0.3)  # the refresh no longer drives the group
    assert members(fresh, "c") == {old: "InService"} and refreshes(fresh, "c")[0]["Status"] == "Cancelled"

    with pytest.raises(ClientError) as none:
        asg.cancel_instance_refresh(AutoScalingGroupName="c")
    assert none.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"
    with pytest.raises(ClientError) as unknown:
        asg.start_instance_refresh(AutoScalingGroupName="no-such-group")
    assert unknown.value.response["Error"]["Code"] == "ValidationError"


def test_a_terminate_first_refresh_replaces_each_instance_in_turn(fresh):
    asg = fresh.client("autoscaling")
    make_group(fresh, "t", hooks=False, desired=2)
    originals = set(members(fresh, "t"))
    asg.start_instance_refresh(
        AutoScalingGroupName="t", Preferences={"MinHealthyPercentage": 50, "MaxHealthyPercentage": 100, "InstanceWarmup": 0}
    )
    done = wait_for("the refresh Successful", lambda: [r for r in refreshes(fresh, "t") if r["Status"] == "Successful"])[0]
    assert done["PercentageComplete"] == 100
    now = members(fresh, "t")
    assert len(now) == 2 and not originals & set(now) and set(now.values()) == {"InService"}
    assert desired(fresh, "t") == 2
    assert {ec2_state(fresh, i) for i in originals} == {"terminated"}


# --- SSM Run Command on the lab's hosts -----------------------------------------------------------


@pytest.fixture
def namespace():
    name = f"ssmtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def host(fresh, namespace):
    """An instance in moto, registered as an SSM host in a throwaway namespace: (emulator, instance)."""
    ec2 = fresh.client("ec2")
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    [instance] = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t4g.nano")["Instances"]
    fresh.ssm_hosts({instance["InstanceId"]: namespace})
    return fresh, instance["InstanceId"]


def run(moto, instance: str, lines: list[str], **parameters) -> str:
    answer = moto.client("ssm").send_command(
        InstanceIds=[instance],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": lines, **parameters},
        Comment="test",
    )["Command"]
    assert answer["Status"] in ("Pending", "InProgress") and answer["InstanceIds"] == [instance] and answer["TargetCount"] == 1
    return answer["CommandId"]


def invocation(moto, command: str, instance: str) -> dict:
    return moto.client("ssm").get_command_invocation(CommandId=command, InstanceId=instance)


def finished(moto, command: str, instance: str, timeout: float = 10.0) -> dict:
    return wait_for(
        "the command over",
        lambda: (lambda i: i if i["Status"] not in ("Pending", "InProgress", "Delayed") else None)(invocation(moto, command, instance)),
        timeout,
    )


def processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_a_registered_host_is_a_managed_instance_and_no_other_is(host):
    moto, instance = host
    ssm = moto.client("ssm")
    [info] = ssm.describe_instance_information()["InstanceInformationList"]
    assert info["InstanceId"] == instance and info["PingStatus"] == "Online" and info["PlatformType"] == "Linux"
    assert info["PlatformName"] == "Amazon Linux" and info["AgentVersion"] and info["ComputerName"] and info["LastPingDateTime"]
    assert ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance]}])["InstanceInformationList"]
    assert not ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": ["i-0123456789abcdef0"]}]
    )["InstanceInformationList"]
    moto.ssm_hosts({})
    assert ssm.describe_instance_information()["InstanceInformationList"] == []


def test_a_command_runs_inside_the_hosts_namespace(host):
    moto, instance = host
    command = run(moto, instance, ["echo hi", "ip -o link", "echo oops >&2"])
    result = finished(moto, command, instance)
    assert result["Status"] == "Success" and result["ResponseCode"] == 0 and result["StatusDetails"] == "Success"
    lines = result["StandardOutputContent"].splitlines()
    assert lines[0] == "hi"
    assert [line.split(":")[1].strip() for line in lines[1:]] == ["lo"], "only the namespace's own loopback is visible"
    assert result["StandardErrorContent"] == "oops\n"
    assert result["ExecutionStartDateTime"] and result["ExecutionEndDateTime"] >= result["ExecutionStartDateTime"]
    [listed] = moto.client("ssm").list_commands(CommandId=command)["Commands"]
    assert listed["Status"] == "Success" and listed["CompletedCount"] == 1 and listed["ErrorCount"] == 0

    failed = finished(moto, run(moto, instance, ["exit 3"]), instance)
    assert failed["Status"] == "Failed" and failed["ResponseCode"] == 3


def test_a_long_command_is_listed_in_progress_and_cancelled_with_its_processes(host):
    moto, instance = host
    ssm = moto.client("ssm")
    marker = f"60.{uuid.uuid4().int % 10**9:09d}"
    command = run(moto, instance, [f"sleep {marker}", "echo never"])
    wait_for("the sleep running", lambda: processes_with(f"sleep\0{marker}"))
    running = invocation(moto, command, instance)
    assert running["Status"] == "InProgress" and running["ResponseCode"] == -1 and running["ExecutionEndDateTime"] == ""
    in_progress = ssm.list_commands(Filters=[{"key": "Status", "value": "InProgress"}])["Commands"]
    assert [c["CommandId"] for c in in_progress] == [command]
    [inv] = ssm.list_command_invocations(InstanceId=instance, Filters=[{"key": "Status", "value": "InProgress"}])["CommandInvocations"]
    assert inv["CommandId"] == command

    ssm.cancel_command(CommandId=command)
    assert invocation(moto, command, instance)["Status"] == "Cancelled"
    assert ssm.list_commands(CommandId=command)["Commands"][0]["Status"] == "Cancelled"
    wait_for("the command's processes gone", lambda: not processes_with(marker), 5)
    assert ssm.list_commands(Filters=[{"key": "Status", "value": "InProgress"}])["Commands"] == []


def test_the_execution_timeout_kills_the_command(host):
    moto, instance = host
    marker = f"30.{uuid.uuid4().int % 10**9:09d}"
    command = run(moto, instance, [f"sleep {marker}"], executionTimeout=["1"])
    result = finished(moto, command, instance, timeout=6)
    assert result["Status"] == "TimedOut" and result["StatusDetails"] == "ExecutionTimedOut"
    wait_for("the command's processes gone", lambda: not processes_with(marker), 5)


def test_output_is_truncated_as_aws_does(host):
    moto, instance = host
    command = run(moto, instance, ["head -c 30000 /dev/zero | tr '\\0' a", "head -c 9000 /dev/zero | tr '\\0' b >&2"])
    result = finished(moto, command, instance)
    assert result["Status"] == "Success"
    assert result["StandardOutputContent"] == "a" * 24_000
    assert result["StandardErrorContent"] == "b" * 8_000


def test_ssm_refuses_what_aws_refuses(host):
    moto, instance = host
    ssm = moto.client("ssm")
    for kwargs, code in (
        ({"InstanceIds": ["i-0123456789abcdef0"], "DocumentName": "AWS-RunShellScript"}, "InvalidInstanceId"),
        ({"InstanceIds": [instance, "i-0123456789abcdef0"], "DocumentName": "AWS-RunShellScript"}, "InvalidInstanceId"),
        ({"InstanceIds": [instance], "DocumentName": "AWS-RunPowerShellScript"}, "InvalidDocument"),
    ):
        with pytest.raises(ClientError) as refused:
            ssm.send_command(Parameters={"commands": ["true"]}, **kwargs)
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as missing:
        ssm.get_command_invocation(CommandId=str(uuid.uuid4()), InstanceId=instance)
    assert missing.value.response["Error"]["Code"] == "InvocationDoesNotExist"
    assert ssm.list_commands()["Commands"] == [], "nothing was run"
    # every other SSM action is still moto's
    ssm.put_parameter(Name="/lab/p", Value="v", Type="String")
    assert ssm.get_parameter(Name="/lab/p")["Parameter"]["Value"] == "v"


def test_stopping_the_emulator_kills_every_command_still_running(tmp_path, namespace):
    marker = f"90.{uuid.uuid4().int % 10**9:09d}"
    with Moto(tmp_path, data_plane=True) as moto:
        moto.ssm_hosts({"i-0123456789abcdef0": namespace})
        run(moto, "i-0123456789abcdef0", [f"sleep {marker}"])
        wait_for("the sleep running", lambda: processes_with(f"sleep\0{marker}"))
    wait_for("no command outlives the emulator", lambda: not processes_with(marker), 5)
