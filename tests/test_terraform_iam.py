"""The hook's rendered IAM policy is sufficient and no more.

The `local` stack is applied to a moto server of this module's own; its role policy is read back from
the emulator and attached to IAM users; then moto's IAM enforcement is switched on (moto-api
`reset-auth`, which sets INITIAL_NO_AUTH_ACTION_COUNT at run time: 0 = every later request is
authenticated and authorized) and the real binary runs with those users' keys.

What moto proves, and what it does not:
- moto enforces IAM *actions* (and checks the SigV4 signature of the user's keys): the handler with
  the rendered policy converges a group (CreateRoute and ReplaceRoute paths, reconcile, verify), and
  without any one action it needs, it fails and leaves that part undone: the test can bite.
- moto does not evaluate *resources* or *conditions* for EC2 and Auto Scaling: it authorizes every
  such request against the resource "*" and has no context values for condition keys, so an
  ARN-scoped statement never matches there. The policy is therefore attached in "moto form": the
  same statements and actions, each on "*". The scoping is checked on the policy itself instead:
  every statement's resources are exactly this stack's route tables, EIPs, groups, log group and
  queue, the instance/ENI statement is conditioned on the group tag, and only Describe and X-Ray
  calls are on "*". (moto also drops launch-template tags from the ENI, so the tag condition could
  not be exercised there even if moto evaluated it.)
- moto does not implement CompleteLifecycleAction (the Rust mock tests cover it), and the CLI makes
  no logs, SQS or X-Ray calls: those statements are checked on the policy only.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from nat_lab import events, hook
from nat_lab import terraform as tf_lab
from nat_lab.moto import REGION, Moto
from nat_lab.world import DESTINATION, eip_eni, in_service, primary_eni, routes, source_dest_check

ACCOUNT = "123456789012"  # moto's default account
OBSERVE = ("autoscaling:DescribeAutoScalingGroups", "ec2:DescribeAddresses", "ec2:DescribeInstances", "ec2:DescribeRouteTables")
# Every call a launch event makes against a group whose EIP, source/dest check and default route
# are all wrong: the four reads, then the writes.
NEEDED = (*OBSERVE, "ec2:AssociateAddress", "ec2:ModifyNetworkInterfaceAttribute", "ec2:CreateRoute", "ec2:ReplaceRoute")
# The whole policy: NEEDED, and what only AWS can exercise (the lifecycle action, the Lambda runtime).
ALLOWED = {
    *NEEDED,
    "autoscaling:CompleteLifecycleAction",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}


def moto_form(policy: dict) -> dict:
    """The same statements and actions, each on "*" and without conditions: the only form moto can
    match, since it authorizes EC2 and Auto Scaling requests against "*" (see the module docstring)."""
    return {
        "Version": policy["Version"],
        "Statement": [{"Sid": s["Sid"], "Effect": s["Effect"], "Action": s["Action"], "Resource": "*"} for s in policy["Statement"]],
    }


def without(policy: dict, action: str) -> dict:
    statements = []
    for statement in policy["Statement"]:
        actions = [a for a in as_list(statement["Action"]) if a != action]
        if actions:
            statements.append({**statement, "Action": actions})
    return {**policy, "Statement": statements}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@dataclass
class Lab:
    emulator: Moto
    outputs: dict
    policy: dict
    config_file: Path
    work: Path
    keys: dict[str, dict] = field(default_factory=dict)
    spare_eni: str = ""

    @property
    def config(self) -> dict:
        return json.loads(self.outputs["hook_config"])

    def admin(self, service: str):
        return self.emulator.client(service, **self.keys["admin"])

    def launch(self, user: str, group: str, *args: str) -> hook.Run:
        """A launch event for the group's instance, replayed by the real binary as `user`."""
        [instance] = in_service(self.admin_view(), group)
        zone = self.config["groups"][group]["availability_zone"]
        event = events.write(events.launch(group, instance, zone), self.work)
        return hook.run(self.emulator.env(**self.keys[user]), "replay", str(event), *args, config=self.config_file)

    def admin_view(self):
        """What the world helpers read through (`.client(service)`), with the admin's keys."""
        lab = self

        class View:
            def client(self, service):
                return lab.admin(service)

        return View()

    def state(self, group: str) -> dict:
        view = self.admin_view()
        settings = self.config["groups"][group]
        [instance] = in_service(view, group)
        eni = primary_eni(view, instance)
        return {
            "eip_on_instance": eip_eni(view, settings["eip_allocation_id"]) == eni,
            "source_dest_check_off": source_dest_check(view, eni) is False,
            "routes_on_instance": all(
                routes(view, table).get(DESTINATION, {}).get("NetworkInterfaceId") == eni for table in settings["route_table_ids"]
            ),
        }

    def break_group(self, group: str, route_elsewhere: bool = False) -> None:
        """Everything wrong again: EIP off, source/dest check on, default route gone or elsewhere."""
        ec2, view = self.admin("ec2"), self.admin_view()
        settings = self.config["groups"][group]
        [address] = ec2.describe_addresses(AllocationIds=[settings["eip_allocation_id"]])["Addresses"]
        if address.get("AssociationId"):
            ec2.disassociate_address(AssociationId=address["AssociationId"])
        [instance] = in_service(view, group)
        ec2.modify_network_interface_attribute(NetworkInterfaceId=primary_eni(view, instance), SourceDestCheck={"Value": True})
        for table in settings["route_table_ids"]:
            if DESTINATION in routes(view, table):
                ec2.delete_route(RouteTableId=table, DestinationCidrBlock=DESTINATION)
            if route_elsewhere:
                ec2.create_route(RouteTableId=table, DestinationCidrBlock=DESTINATION, NetworkInterfaceId=self.spare_eni)
        assert not any(self.state(group).values())


def enforce_iam(emulator: Moto) -> None:
    request = urllib.request.Request(
        f"{emulator.endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="module")
def lab(logs, tmp_path_factory) -> Lab:
    work = tmp_path_factory.mktemp("terraform-iam")
    emulator = Moto(log_dir=logs, extra_env=tf_lab.moto_extra_env())
    try:
        lambda_zip = tf_lab.build_zip(hook.hook_bin(), work)
        tf, var_args = tf_lab.local_environment(work, emulator.endpoint, emulator.env(), lambda_zip)
        tf.apply(*var_args)
        outputs = tf.outputs()
        role = outputs["lambda_role_name"]
        iam = emulator.client("iam")
        document = iam.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        policy = json.loads(document) if isinstance(document, str) else document
        config_file = work / "hook-config.json"
        config_file.write_text(outputs["hook_config"])
        lab = Lab(emulator, outputs, policy, config_file, work)

        # Users and keys while IAM is not enforced yet: an administrator for the test's own setup,
        # the hook with its policy, and the hook without each action it needs.
        policies = {"admin": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}
        policies["hook"] = moto_form(policy)
        policies.update({f"hook-without-{a.replace(':', '-')}": without(moto_form(policy), a) for a in NEEDED})
        for user, document in policies.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="policy", PolicyDocument=json.dumps(document))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            lab.keys[user] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        subnet = next(iter(outputs["public_subnet_ids"].values()))
        lab.spare_eni = emulator.client("ec2").create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]

        enforce_iam(emulator)
        yield lab
    finally:
        emulator.stop()


# --- the policy itself: scoping that moto cannot evaluate ----------------------------------------------


def statements(policy: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in policy["Statement"]}


def test_the_policy_allows_exactly_the_handlers_calls(lab):
    actions = {a for s in lab.policy["Statement"] for a in as_list(s["Action"])}
    assert actions == ALLOWED
    assert all(s["Effect"] == "Allow" for s in lab.policy["Statement"])


def test_only_describe_and_xray_calls_are_on_every_resource(lab):
    on_star = {a for s in lab.policy["Statement"] if "*" in as_list(s["Resource"]) for a in as_list(s["Action"])}
    assert on_star == {*OBSERVE, "xray:PutTelemetryRecords", "xray:PutTraceSegments"}


def test_mutations_are_scoped_to_this_stacks_tables_eips_groups_and_tagged_instances(lab):
    out, by_sid = lab.outputs, statements(lab.policy)
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    groups = sorted(lab.config["groups"])
    assert sorted(as_list(by_sid["PointDefaultRoutes"]["Resource"])) == sorted(f"{ec2}:route-table/{t}" for t in out["private_route_table_ids"].values())
    assert sorted(as_list(by_sid["MoveStaticEips"]["Resource"])) == sorted(f"{ec2}:elastic-ip/{e}" for e in out["nat_eip_allocation_ids"].values())
    assert sorted(as_list(by_sid["CompleteLaunches"]["Resource"])) == [
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{g}" for g in groups
    ]
    onto = by_sid["OntoNatInstancesOnly"]
    assert sorted(as_list(onto["Resource"])) == [f"{ec2}:instance/*", f"{ec2}:network-interface/*"]
    assert sorted(as_list(onto["Condition"]["StringEquals"]["aws:ResourceTag/nat-asg-hook:group"])) == groups
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{out['lambda_function_name']}:*"
    assert as_list(by_sid["OwnLogGroup"]["Resource"]) == [log_group]
    assert as_list(by_sid["DeadLetters"]["Resource"]) == [f"arn:aws:sqs:{REGION}:{ACCOUNT}:{out['lambda_function_name']}-dead-letter"]


# --- the policy at work in moto: sufficient, and each needed action needed ----------------------------


def test_iam_is_enforced(lab):
    with pytest.raises(ClientError):
        lab.emulator.client("ec2").describe_vpcs()  # the emulator's default keys belong to no user
    lab.admin("ec2").describe_vpcs()


def test_with_the_rendered_policy_a_launch_converges_every_group(lab):
    for group in lab.config["groups"]:
        lab.break_group(group)
        run = lab.launch("hook", group)
        assert run.code == 0, run.stderr
        assert run.result["outcome"] == "applied"
        assert all(lab.state(group).values()), lab.state(group)


def test_with_the_rendered_policy_a_stolen_route_comes_back_and_reconcile_and_verify_pass(lab):
    group = sorted(lab.config["groups"])[0]
    lab.break_group(group, route_elsewhere=True)  # ReplaceRoute, not CreateRoute
    run = lab.launch("hook", group)
    assert run.code == 0, run.stderr
    assert {a["action"] for a in run.result["actions"]} >= {"replace_route"}
    assert all(lab.state(group).values())

    lab.break_group(group)
    reconcile = hook.run(lab.emulator.env(**lab.keys["hook"]), "reconcile", config=lab.config_file)
    assert reconcile.code == 0, reconcile.stderr
    verify = hook.run(lab.emulator.env(**lab.keys["hook"]), "verify", config=lab.config_file)
    assert verify.code == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("action", NEEDED)
def test_without_any_needed_action_the_launch_fails(lab, action):
    group = sorted(lab.config["groups"])[-1]
    lab.break_group(group, route_elsewhere=action == "ec2:ReplaceRoute")
    run = lab.launch(f"hook-without-{action.replace(':', '-')}", group)
    assert run.code != 0, f"the handler succeeded without {action}:\n{run.stdout}"
    state = lab.state(group)
    if action in OBSERVE:
        assert not any(state.values()), "a failed observe round must change nothing"
    else:
        undone = {
            "ec2:AssociateAddress": "eip_on_instance",
            "ec2:ModifyNetworkInterfaceAttribute": "source_dest_check_off",
            "ec2:CreateRoute": "routes_on_instance",
            "ec2:ReplaceRoute": "routes_on_instance",
        }[action]
        assert state[undone] is False, state
        assert all(v for k, v in state.items() if k != undone), f"the other actions still apply: {state}"
