"""The `test` environment as it is deployed (its vars.tfvars: two zones, its CIDR, the pinned NAT image,
arm64), applied by Terraform to moto with the local environment's emulator files: right after the
apply, a plan has nothing to do, and a second plan in a row neither. Nothing in the stack may drift on
its own (an image that follows a parameter, a value the provider normalises): a clean plan is what
makes a real plan reviewable. Then destroy leaves the emulator as it found it."""

from __future__ import annotations

import json
import re

import pytest

from nat_lab import hook
from nat_lab import terraform as tf_lab
from nat_lab.moto import Moto

PINNED_AMI = re.search(
    r'^nat_ami_id\s*=\s*"([^"]+)"', (tf_lab.TERRAFORM_DIR / "environments" / "test" / "vars.tfvars").read_text(), re.M
).group(1)


@pytest.fixture(scope="module")
def emulator(logs):
    server = Moto(log_dir=logs)
    yield server
    server.stop()


def test_the_test_environment_plans_clean_twice_in_a_row(emulator, tmp_path, logs):
    baseline = tf_lab.inventory(emulator)
    lambda_zip = tf_lab.build_zip(hook.hook_bin(), tmp_path)
    tf, var_args = tf_lab.emulated_environment(tmp_path, "test", emulator.endpoint, emulator.env(), lambda_zip)
    tf.apply(*var_args)
    try:
        outputs = tf.outputs()
        assert sorted(outputs["nat_autoscaling_group_names"]) == ["us-east-1a", "us-east-1b"]
        for group in outputs["nat_autoscaling_group_names"].values():
            [version] = emulator.client("ec2").describe_launch_template_versions(LaunchTemplateName=group, Versions=["$Latest"])[
                "LaunchTemplateVersions"
            ]
            assert version["LaunchTemplateData"]["ImageId"] == PINNED_AMI, "the environment's pinned image"
        for attempt in (1, 2):
            changed, plan = tf.plan_changes(*var_args)
            assert not changed, f"plan {attempt}:\n{plan.stdout[-6000:]}"
    finally:
        tf.destroy(*var_args)
        (logs / "terraform-test-environment-timings.json").write_text(json.dumps(tf.timings, indent=2))
    assert tf_lab.inventory(emulator) == baseline
