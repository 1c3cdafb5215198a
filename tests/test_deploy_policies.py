"""The roles the bootstrap creates can do their jobs, and the plan role cannot do more: the whole
`local` stack applied, planned and destroyed by Terraform in moto with IAM enforced, as IAM users
carrying the actions of terraform/policies/.

What moto proves, and what it does not (as in test_terraform_iam.py):
- moto enforces IAM *actions* once `reset-auth` switches enforcement on: Terraform with the deploy
  role's actions creates, reads and deletes every resource of the stack, so no action it needs is
  missing; with the plan role's actions it plans without a change and is refused any write.
- moto does not evaluate *resources* or *conditions* for most services, so the policies are attached
  in "moto form": the same actions, each on "*". Their scoping (the stack's name prefix, the Project
  tag, the state key) is checked on the rendered files in test_bootstrap.py, and only real AWS can
  show that the tag conditions hold for every call (docs/runbook.md says what to do if one does not).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

from nat_lab import hook
from nat_lab import terraform as tf_lab
from nat_lab.moto import Moto

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "terraform" / "policies"
# Which files each role carries (terraform/bootstrap/iam.tf). The state policies name only S3 and
# KMS calls on the state bucket, which the local environment (state on disk) does not make.
DEPLOY = ("terraform-read", "terraform-network", "terraform-compute", "terraform-hook", "terraform-state")
PLAN = ("terraform-read", "terraform-state-read")


def actions(names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        text = re.sub(r"\$\{\w+\}", "x", (POLICIES / f"{name}.json").read_text())
        for statement in json.loads(text)["Statement"]:
            assert statement["Effect"] == "Allow"
            found += statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    return sorted(set(found))


def moto_form(names: tuple[str, ...]) -> dict:
    """The files' actions, each on "*". moto names CloudWatch's actions after the service's signing
    name (`monitoring:PutMetricAlarm`), IAM after the service (`cloudwatch:PutMetricAlarm`): each
    cloudwatch action is granted under both names, and nothing else is added."""
    granted = actions(names)
    granted += [a.replace("cloudwatch:", "monitoring:") for a in granted if a.startswith("cloudwatch:")]
    return {"Version": "2012-10-17", "Statement": [{"Sid": "TheRolesActions", "Effect": "Allow", "Action": granted, "Resource": "*"}]}


def moto_env() -> dict[str, str]:
    """The moto server loads tests/moto_iam_shims (which loads nat_lab's shims first)."""
    env = tf_lab.moto_extra_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests" / "moto_iam_shims"), env["PYTHONPATH"]])
    return env


def enforce_iam(emulator: Moto) -> None:
    request = urllib.request.Request(
        f"{emulator.endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).read()


class Lab:
    def __init__(self, emulator: Moto, root: Path, var_args: list[str], keys: dict[str, dict]):
        self.emulator, self.root, self.var_args, self.keys = emulator, root, var_args, keys

    def terraform(self, user: str) -> tf_lab.Terraform:
        return tf_lab.Terraform(self.root, self.emulator.env(**self.keys[user]))

    def admin(self, service: str):
        return self.emulator.client(service, **self.keys["admin"])


@pytest.fixture(scope="module")
def lab(logs, tmp_path_factory):
    """The local stack applied by the deploy role's actions, with IAM enforced from the start."""
    work = tmp_path_factory.mktemp("deploy-policies")
    emulator = Moto(log_dir=logs, extra_env=moto_env())
    try:
        lambda_zip = tf_lab.build_zip(hook.hook_bin(), work)
        tf, var_args = tf_lab.local_environment(work, emulator.endpoint, emulator.env(), lambda_zip)

        iam = emulator.client("iam")
        keys = {}
        users = {
            "admin": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
            "deploy": moto_form(DEPLOY),
            "plan": moto_form(PLAN),
        }
        for user, document in users.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="policy", PolicyDocument=json.dumps(document))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        enforce_iam(emulator)

        lab = Lab(emulator, tf.workdir, var_args, keys)
        lab.terraform("deploy").apply(*var_args)
        yield lab
    finally:
        emulator.stop()


def test_the_deploy_role_applies_the_whole_stack(lab):
    outputs = lab.terraform("deploy").outputs()
    groups = json.loads(outputs["hook_config"])["groups"]
    assert len(groups) == 3
    autoscaling = lab.admin("autoscaling")
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=sorted(groups))["AutoScalingGroups"]
    assert sorted(g["AutoScalingGroupName"] for g in found) == sorted(groups)
    assert lab.admin("lambda").get_function(FunctionName=outputs["lambda_function_name"])["Configuration"]["State"] == "Active"


def test_the_plan_role_reads_everything_and_sees_no_change(lab):
    changes, plan = lab.terraform("plan").plan_changes(*lab.var_args)
    assert not changes, plan.stdout[-4000:]


def test_the_plan_role_cannot_change_anything(lab):
    logs = lab.admin("logs")
    [group] = [g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]]
    before = group.get("retentionInDays")

    result = lab.terraform("plan").run("apply", "-auto-approve", "-input=false", "-no-color", *lab.var_args, "-var=log_retention_days=7", check=False)
    assert result.code != 0
    assert "PutRetentionPolicy" in result.stderr, result.stderr[-3000:]
    [after] = logs.describe_log_groups(logGroupNamePrefix=group["logGroupName"])["logGroups"]
    assert after.get("retentionInDays") == before != 7


def test_the_deploy_role_destroys_the_whole_stack(lab):
    lab.terraform("deploy").destroy(*lab.var_args)
    assert not lab.admin("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert not lab.admin("lambda").list_functions()["Functions"]
    assert not [v for v in lab.admin("ec2").describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
