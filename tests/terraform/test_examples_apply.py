"""The examples applied as a user would, from another stack, to the AWS emulator: the VPC exists
already (made here with boto3), the examples take its IDs, and `terraform apply` then a second
`terraform plan` (nothing to do) must pass. The examples carry no emulator plumbing: the provider
reaches moto through AWS_ENDPOINT_URL alone. Assertions read the emulator's state.

validate alone cannot see what only an apply with values known late shows (for instance two
arguments that conflict once a key created in the same apply is passed in)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nat_lab import terraform as tf_lab
from nat_lab.constants import ZONES as ALL_ZONES
from nat_lab.moto import Moto
from nat_lab.standin import LaunchStandIn

ZONES = ALL_ZONES[:2]
VPC_CIDR = "10.9.0.0/16"
# In moto's built-in image catalogue (see terraform/environments/local); the emulator boots nothing.
AMI = "ami-760aaa0f"


@pytest.fixture(scope="module")
def emulator(logs):
    server = Moto(log_dir=logs)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vpc(emulator) -> dict:
    """What a user's stack already has: a VPC, a public subnet and a private route table per zone."""
    ec2 = emulator.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnets, tables = {}, {}
    for i, zone in enumerate(ZONES):
        subnets[zone] = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        tables[zone] = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    return {"vpc_id": vpc_id, "subnets": subnets, "tables": tables}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """terraform/ and examples/ side by side (the examples' module sources are relative), and a zip."""
    root = tmp_path_factory.mktemp("examples-apply")
    tf_lab.scratch_copy(root)
    shutil.copytree(
        tf_lab.REPO / "examples", root / "examples", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl")
    )
    # Any file named bootstrap will do: the emulator stores the package and never runs it here.
    tf_lab.build_zip(Path(shutil.which("true")), root)
    return root


def applied(emulator, work: Path, name: str, variables: dict) -> tuple[tf_lab.Terraform, list[str], dict]:
    tf = tf_lab.Terraform(work / "examples" / name, emulator.env())
    tf.init(backend=False)
    var_args = [f"-var={key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in variables.items()]
    with LaunchStandIn(emulator, on_failure=tf.abort):  # each NAT's user data completes its launch action
        result = tf.apply(*var_args, check=False)
    assert result.code == 0, f"terraform apply exited {result.code}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return tf, var_args, tf.outputs()


def test_minimal_applies_with_only_the_required_inputs_and_then_has_nothing_to_do(emulator, vpc, work):
    zone = ZONES[0]
    tf, var_args, outputs = applied(
        emulator,
        work,
        "minimal",
        {
            "region": "us-east-1",
            "vpc_id": vpc["vpc_id"],
            "vpc_cidr_block": VPC_CIDR,
            "availability_zone": zone,
            "public_subnet_id": vpc["subnets"][zone],
            "private_route_table_id": vpc["tables"][zone],
            "ami_id": AMI,
            "lambda_zip_path": str(work / "bootstrap.zip"),
        },
    )

    group = f"nat-{zone}"
    groups = emulator.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    assert [g["VPCZoneIdentifier"] for g in groups] == [vpc["subnets"][zone]]
    config = json.loads(outputs["hook_config"])
    address = emulator.client("ec2").describe_addresses(PublicIps=[outputs["public_ip"]])["Addresses"][0]
    assert config["groups"][group]["eip_allocation_id"] == address["AllocationId"]
    assert config["groups"][group]["route_table_ids"] == [vpc["tables"][zone]]
    function = emulator.client("lambda").get_function_configuration(FunctionName="nat-asg-hook")
    assert json.loads(function["Environment"]["Variables"]["NAT_ASG_HOOK_CONFIG"]) == config

    changes, plan = tf.plan_changes(*var_args)
    assert not changes, plan.stdout[-4000:]


def test_complete_applies_with_every_option_and_then_has_nothing_to_do(emulator, vpc, work):
    tf, var_args, outputs = applied(
        emulator,
        work,
        "complete",
        {
            "region": "us-east-1",
            "name": "example",
            "vpc_id": vpc["vpc_id"],
            "vpc_cidr_block": VPC_CIDR,
            "zones": {zone: {"public_subnet_id": vpc["subnets"][zone], "private_route_table_ids": [vpc["tables"][zone]]} for zone in ZONES},
            "lambda_zip_path": str(work / "bootstrap.zip"),
            "nat_ami_id": AMI,
            "nat_instance_type": "t3.nano",
            "nat_alternate_instance_types": ["t3.micro"],  # the emulator's image is x86_64
            "tags": {"Project": "nat-asg-hook"},
        },
    )

    assert set(outputs["autoscaling_group_names"]) == set(ZONES)
    config = json.loads(outputs["hook_config"])
    assert {g["availability_zone"] for g in config["groups"].values()} == set(ZONES)
    function = emulator.client("lambda").get_function_configuration(FunctionName=outputs["lambda_function_name"])
    assert function["KMSKeyArn"] == outputs["kms_key_arn"]
    queue = emulator.client("sqs").get_queue_attributes(QueueUrl=outputs["dead_letter_queue_url"], AttributeNames=["KmsMasterKeyId"])
    assert queue["Attributes"]["KmsMasterKeyId"] == outputs["kms_key_arn"]

    changes, plan = tf.plan_changes(*var_args)
    assert not changes, plan.stdout[-4000:]
