"""The `test` environment as it is deployed (its vars.tfvars: two zones, its CIDR, the pinned NAT image,
arm64, an egress probe per zone), applied by Terraform to moto with the local environment's emulator
files: the probes are where scripts/verify_nat.sh expects them; right after the apply, a plan has
nothing to do, and a second plan in a row neither. Nothing in the stack may drift on
its own (an image that follows a parameter, a value the provider normalises): a clean plan is what
makes a real plan reviewable. Then destroy leaves the emulator as it found it."""

from __future__ import annotations

import json
import re

import pytest

from nat_lab import hook
from nat_lab import terraform as tf_lab
from nat_lab.moto import Moto
from nat_lab.standin import LaunchStandIn

PINNED_AMI = re.search(
    r'^nat_ami_id\s*=\s*"([^"]+)"', (tf_lab.TERRAFORM_DIR / "environments" / "test" / "vars.tfvars").read_text(), re.M
).group(1)


@pytest.fixture(scope="module")
def emulator(logs):
    server = Moto(log_dir=logs)
    yield server
    server.stop()


def assert_spot_nats(emulator, outputs: dict) -> None:
    """The test environment runs Spot NATs with the on-demand fallback (nat_capacity): no on-demand
    instance, the pools least likely to be interrupted, capacity rebalancing on, and the hook told
    to fall back (trying Spot again after six hours)."""
    assert json.loads(outputs["hook_config"])["spot_fallback"] == {"retry_spot_after_seconds": 21600}
    names = sorted(outputs["nat_autoscaling_group_names"].values())
    for group in emulator.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]:
        distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
        assert (distribution["OnDemandBaseCapacity"], distribution["OnDemandPercentageAboveBaseCapacity"]) == (0, 0)
        assert distribution["SpotAllocationStrategy"] == "price-capacity-optimized"
        assert group["CapacityRebalance"] is True


def assert_one_egress_probe_per_zone(emulator, outputs: dict) -> None:
    """The test environment turns egress_probe on: per zone one running instance in the zone's private
    subnet, without a public IP, IMDSv2 only, with the SSM profile (AmazonSSMManagedInstanceCore
    and nothing else) and a group that lets nothing in; and the EIP each zone must leave with."""
    ec2, iam = emulator.client("ec2"), emulator.client("iam")
    probes = outputs["egress_probe_instance_ids"]
    assert sorted(probes) == sorted(outputs["private_subnet_ids"]) == sorted(outputs["nat_public_ips"])
    for zone, instance_id in probes.items():
        [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        [instance] = reservation["Instances"]
        assert instance["State"]["Name"] == "running"
        assert instance["SubnetId"] == outputs["private_subnet_ids"][zone], zone
        assert instance["Placement"]["AvailabilityZone"] == zone
        assert not instance.get("PublicIpAddress") and not instance.get("KeyName")
        assert instance["MetadataOptions"]["HttpTokens"] == "required"
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags["nat-asg-hook:purpose"] == "egress-probe" and "nat-asg-hook:group" not in tags

        profile_name = instance["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
        [role] = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]["Roles"]
        attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
        assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == []

        [eni] = instance["NetworkInterfaces"]
        for group in ec2.describe_security_groups(GroupIds=[g["GroupId"] for g in eni["Groups"]])["SecurityGroups"]:
            assert group["IpPermissions"] == []
            assert sorted(p["FromPort"] for p in group["IpPermissionsEgress"]) == [80, 443]


def test_the_test_environment_plans_clean_twice_in_a_row(emulator, tmp_path, logs):
    baseline = tf_lab.inventory(emulator)
    lambda_zip = tf_lab.build_zip(hook.hook_bin(), tmp_path)
    tf, var_args = tf_lab.emulated_environment(tmp_path, "test", emulator.endpoint, emulator.env(), lambda_zip)
    with LaunchStandIn(emulator, on_failure=tf.abort):  # each NAT's user data completes its launch action
        tf.apply(*var_args)
    try:
        outputs = tf.outputs()
        assert sorted(outputs["nat_autoscaling_group_names"]) == ["us-east-1a", "us-east-1b"]
        for group in outputs["nat_autoscaling_group_names"].values():
            [version] = emulator.client("ec2").describe_launch_template_versions(LaunchTemplateName=group, Versions=["$Latest"])[
                "LaunchTemplateVersions"
            ]
            assert version["LaunchTemplateData"]["ImageId"] == PINNED_AMI, "the environment's pinned image"
        assert_one_egress_probe_per_zone(emulator, outputs)
        assert_spot_nats(emulator, outputs)
        for attempt in (1, 2):
            changed, plan = tf.plan_changes(*var_args)
            assert not changed, f"plan {attempt}:\n{plan.stdout[-6000:]}"
    finally:
        tf.destroy(*var_args)
        (logs / "terraform-test-environment-timings.json").write_text(json.dumps(tf.timings, indent=2))
    assert tf_lab.inventory(emulator) == baseline
