"""IAM, proven in moto with enforcement on: the bootstrap's deploy and plan roles can do their jobs
and the plan role no more, and the hook's rendered policy is sufficient and no more.

One moto server of this module's own, IAM enforced from the start (moto-api `reset-auth`, which sets
INITIAL_NO_AUTH_ACTION_COUNT at run time: every later request is authenticated and authorized). The
`local` stack is applied by Terraform as a user carrying the deploy role's actions (the files of
terraform/policies/); a user with the plan role's actions plans it without a change and is refused
any write; the hook's role policy is read back and attached to users, and the real binary runs with
their keys; at the end the deploy role destroys the stack (with the EIPs the hook associated). Tests
run in file order on that one apply.

What moto proves, and what it does not:
- moto enforces IAM *actions* (and checks the SigV4 signature of the user's keys): Terraform with the
  deploy role's actions creates, reads and deletes every resource of the stack; the handler with
  the rendered policy converges a group (CreateRoute and ReplaceRoute paths, reconcile, verify), and
  without any one action it needs, it fails and leaves that part undone: the test can bite.
- moto does not evaluate *resources* or *conditions* for EC2 and Auto Scaling: it authorizes every
  such request against the resource "*" and has no context values for condition keys, so an
  ARN-scoped statement never matches there. The policies are therefore attached in "moto form": the
  same actions, each on "*". The roles' scoping (the stack's name prefix, the Project tag, the state
  key) is checked on the rendered files in test_bootstrap.py. The hook's is checked on its policy:
  every statement's resources are exactly this stack's route tables, EIPs, groups, log group and
  queue, the instance/ENI statement is conditioned on the group tag, and only Describe and X-Ray
  calls are on "*". (moto also drops launch-template tags from the ENI, so the tag condition could
  not be exercised there even if moto evaluated it.)
- moto does not implement CompleteLifecycleAction (the Rust mock tests cover it), and the CLI makes
  no logs, SQS or X-Ray calls: those statements are checked on the policy only.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field
from pathlib import Path

import policies
import pytest
from botocore.exceptions import ClientError
from policies import as_list

from nat_lab import events, hook
from nat_lab import terraform as tf_lab
from nat_lab.moto import ADMIN_POLICY, REGION, Moto
from nat_lab.standin import LaunchStandIn
from nat_lab.state import read_state
from nat_lab.world import DESTINATION, World, in_service, primary_eni, routes

ACCOUNT = "123456789012"  # moto's default account
OBSERVE = ("autoscaling:DescribeAutoScalingGroups", "ec2:DescribeAddresses", "ec2:DescribeInstances", "ec2:DescribeRouteTables")
# Every call a launch event makes against a group whose EIP, source/dest check and default route
# are all wrong: the four reads, then the writes.
NEEDED = (*OBSERVE, "ec2:AssociateAddress", "ec2:ModifyNetworkInterfaceAttribute", "ec2:CreateRoute", "ec2:ReplaceRoute")
# The Spot fallback's calls (the stack is applied with nat_capacity = "spot-with-fallback"): the mark,
# then the switch.
FALLBACK = ("autoscaling:CreateOrUpdateTags", "autoscaling:UpdateAutoScalingGroup")
SPOT_TAG = "nat-asg-hook:spot-unavailable"
# The whole policy: NEEDED, FALLBACK, and what only AWS can exercise (the lifecycle action, the Lambda runtime).
ALLOWED = {
    *NEEDED,
    *FALLBACK,
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:RecordLifecycleActionHeartbeat",
    "autoscaling:SetInstanceHealth",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}


STACK = "nat-local"  # terraform/environments/local/vars.tfvars `name`
BOUNDARY_NAME = "stack-role-boundary-local"


def boundary_values() -> dict[str, str]:
    """What the bootstrap renders the boundary with (terraform/bootstrap/iam.tf `policy_vars`)."""
    return {"partition": "aws", "account_id": ACCOUNT, "region": REGION, "stack_name": STACK}


def moto_form(policy: dict) -> dict:
    """The same statements and actions, each on "*" and without conditions: the only form moto can
    match, since it authorizes EC2 and Auto Scaling requests against "*" (see the module docstring)."""
    return {
        "Version": policy["Version"],
        "Statement": [{"Sid": s["Sid"], "Effect": s["Effect"], "Action": s["Action"], "Resource": "*"} for s in policy["Statement"]],
    }


def role_form(names: tuple[str, ...]) -> dict:
    """A bootstrap role's policy files in moto form: their Allow statements' actions as one statement
    on "*", and each Deny statement on "*" without a condition as it is (moto applies a Deny to the
    same requests as an Allow). A conditioned Deny, or one on named roles, would refuse everything
    there, since moto has no condition values and authorizes IAM calls against "*": test_bootstrap.py
    checks those on the rendered documents. moto names
    CloudWatch's actions after the service's signing name (`monitoring:PutMetricAlarm`), IAM after
    the service (`cloudwatch:PutMetricAlarm`): each cloudwatch action is granted under both names,
    and nothing else is added."""
    statements = [s for name in names for s in policies.render(name)["Statement"]]
    granted = sorted({a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])})
    granted += [a.replace("cloudwatch:", "monitoring:") for a in granted if a.startswith("cloudwatch:")]
    denied = [
        {"Sid": s["Sid"], "Effect": "Deny", "Action": s["Action"], "Resource": "*"}
        for s in statements
        if s["Effect"] == "Deny" and "Condition" not in s and s["Resource"] == "*"
    ]
    allowed = {"Sid": "TheRolesActions", "Effect": "Allow", "Action": granted, "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [allowed, *denied]}


def without(policy: dict, action: str) -> dict:
    statements = []
    for statement in policy["Statement"]:
        actions = [a for a in as_list(statement["Action"]) if a != action]
        if actions:
            statements.append({**statement, "Action": actions})
    return {**policy, "Statement": statements}


@dataclass
class Lab:
    emulator: Moto
    root: Path
    var_args: list[str]
    work: Path
    keys: dict[str, dict]
    outputs: dict = field(default_factory=dict)
    policy: dict = field(default_factory=dict)
    config_file: Path = Path()
    spare_eni: str = ""
    boundary_arn: str = ""

    def terraform(self, user: str) -> tf_lab.Terraform:
        return tf_lab.Terraform(self.root, self.emulator.env(**self.keys[user]))

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
        return types.SimpleNamespace(client=self.admin)

    def state(self, group: str) -> dict[str, bool]:
        """Each part of the group's convergence on its instance (`nat_lab.state.Zone.checks`)."""
        [instance] = in_service(self.admin_view(), group)
        return read_state(self.admin_view(), World.from_config(self.config)).zone(group).checks(instance)

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


@pytest.fixture(scope="module")
def lab(logs, tmp_path_factory) -> Lab:
    """The local stack applied by the deploy role's actions, IAM enforced from the start; then the
    hook's users, with its rendered policy and without each action it needs."""
    work = tmp_path_factory.mktemp("terraform-iam")
    emulator = Moto(log_dir=logs)
    try:
        lambda_zip = tf_lab.build_zip(hook.hook_bin(), work)
        tf, var_args = tf_lab.local_environment(work, emulator.endpoint, emulator.env(), lambda_zip)
        # With the egress probes (off in local, on in test): the deploy role launches, attaches the
        # SSM policy to, and terminates instances of its own, not only the NAT groups'.
        # With the Spot fallback (local buys on-demand; test runs Spot with the fallback): its two
        # statements are rendered, and exercised below.
        var_args = [*var_args, "-var=egress_probe=true", "-var=nat_capacity=spot-with-fallback"]
        keys = emulator.create_users({"admin": ADMIN_POLICY, "deploy": role_form(policies.DEPLOY), "plan": role_form(policies.PLAN)})
        # The bootstrap's permissions boundary, created as the bootstrap creates it (an administrator):
        # every role the deploy role creates must carry it.
        boundary = emulator.client("iam", **keys["admin"]).create_policy(
            PolicyName=BOUNDARY_NAME, PolicyDocument=json.dumps(policies.render(policies.BOUNDARY, boundary_values()))
        )["Policy"]
        var_args = [*var_args, f"-var=permissions_boundary_name={BOUNDARY_NAME}"]
        emulator.enforce_iam()
        lab = Lab(emulator, tf.workdir, var_args, work, keys, boundary_arn=boundary["Arn"])
        deploy = lab.terraform("deploy")
        with LaunchStandIn(emulator, credentials=keys["admin"], on_failure=deploy.abort):  # each NAT's own launch action
            deploy.apply(*var_args)

        lab.outputs = lab.terraform("deploy").outputs()
        role = lab.outputs["lambda_role_name"]
        document = lab.admin("iam").get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        lab.policy = json.loads(document) if isinstance(document, str) else document
        lab.config_file = work / "hook-config.json"
        lab.config_file.write_text(lab.outputs["hook_config"])
        hook_users = {"hook": moto_form(lab.policy)}
        hook_users.update({f"hook-without-{a.replace(':', '-')}": without(moto_form(lab.policy), a) for a in (*NEEDED, *FALLBACK)})
        hook_users["hook-boundary-only"] = moto_form(policies.render(policies.BOUNDARY, boundary_values()))
        lab.keys.update(emulator.create_users(hook_users, **keys["admin"]))
        subnet = next(iter(lab.outputs["public_subnet_ids"].values()))
        lab.spare_eni = lab.admin("ec2").create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
        yield lab
    finally:
        emulator.stop()


# --- the bootstrap's roles: the deploy role applies, the plan role only reads -------------------------


def test_the_deploy_role_applies_the_whole_stack(lab):
    groups = json.loads(lab.outputs["hook_config"])["groups"]
    assert len(groups) == 3
    autoscaling = lab.admin("autoscaling")
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=sorted(groups))["AutoScalingGroups"]
    assert sorted(g["AutoScalingGroupName"] for g in found) == sorted(groups)
    assert lab.admin("lambda").get_function(FunctionName=lab.outputs["lambda_function_name"])["Configuration"]["State"] == "Active"
    probes = lab.outputs["egress_probe_instance_ids"]
    assert sorted(probes) == sorted(lab.outputs["private_subnet_ids"])
    iam = lab.admin("iam")
    reservations = lab.admin("ec2").describe_instances(InstanceIds=list(probes.values()))["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == len(probes) and all(i["State"]["Name"] == "running" for i in instances)
    for instance in instances:
        profile = instance["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
        [role] = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
        attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
        assert [p["PolicyName"] for p in attached] == ["AmazonSSMManagedInstanceCore"]


def test_the_nat_security_groups_admit_the_private_subnets_only_and_the_default_group_is_empty(lab):
    """Only the private subnets send through a NAT (every zone's: a failed-over zone uses a sibling's);
    the public subnets, where the NATs and anything else public live, reach no NAT's address but
    the group's own NATs its flow-hand-over port. The
    VPC's default group, which the deploy role may only empty, has no rule left."""
    ec2 = lab.admin("ec2")
    subnets = ec2.describe_subnets(SubnetIds=list(lab.outputs["private_subnet_ids"].values()))["Subnets"]
    private = sorted(s["CidrBlock"] for s in subnets)
    vpc = subnets[0]["VpcId"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    nat_groups = [g for g in groups if g["GroupName"] in lab.config["groups"]]
    assert len(nat_groups) == len(lab.config["groups"])
    for group in nat_groups:
        [rule, sync] = sorted(group["IpPermissions"], key=lambda r: r["IpProtocol"] != "-1")
        assert rule["IpProtocol"] == "-1"
        assert sorted(r["CidrIp"] for r in rule["IpRanges"]) == private, group["GroupName"]
        # nat-conntrack-sync: the group's own instances only (a NAT reads its predecessor's flows).
        assert (sync["IpProtocol"], sync["FromPort"], sync["ToPort"], sync["IpRanges"]) == ("tcp", 3780, 3780, [])
        assert [p["GroupId"] for p in sync["UserIdGroupPairs"]] == [group["GroupId"]], group["GroupName"]
    [default] = [g for g in groups if g["GroupName"] == "default"]
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []
    assert not default.get("Tags"), "the deploy role may not tag a group it did not create"


def test_the_plan_role_reads_everything_and_sees_no_change(lab):
    changes, plan = lab.terraform("plan").plan_changes(*lab.var_args)
    assert not changes, plan.stdout[-4000:]


def test_the_plan_role_cannot_change_anything(lab):
    logs = lab.admin("logs")
    [group] = [g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]]
    before = group.get("retentionInDays")

    result = lab.terraform("plan").apply(*lab.var_args, "-var=log_retention_days=7", check=False)
    assert result.code != 0
    assert "PutRetentionPolicy" in result.stderr, result.stderr[-3000:]
    [after] = logs.describe_log_groups(logGroupNamePrefix=group["logGroupName"])["logGroups"]
    assert after.get("retentionInDays") == before != 7


# --- the permissions boundary: on every role the deploy role created, and out of its reach ------------

# What AmazonSSMManagedInstanceCore grants that the boundary withholds from the egress probes: reading
# the account's parameters (SecureString ones included), patching and Distributor packages. Run
# Command (scripts/verify_nat.sh) needs none of them.
WITHHELD_FROM_PROBES = {
    "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:GetManifest",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:PutConfigurePackageResult",
}


def stack_roles(lab) -> list[dict]:
    iam = lab.admin("iam")
    return [iam.get_role(RoleName=r["RoleName"])["Role"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"{STACK}-")]


def test_every_role_the_deploy_role_created_carries_the_boundary(lab):
    roles = stack_roles(lab)
    zones = len(lab.config["groups"])
    # the hook's, the flow logs', and per zone the NAT instances' and the egress probe's
    assert len(roles) == 2 + 2 * zones, sorted(r["RoleName"] for r in roles)
    for role in roles:
        assert role.get("PermissionsBoundary") == {
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": lab.boundary_arn,
        }, role["RoleName"]


def test_the_boundary_allows_exactly_what_the_stacks_roles_are_given(lab):
    """Every action of every policy on the stack's roles (their inline policies, the probes' managed
    one) is within the boundary, and the boundary allows nothing no role is given."""
    iam = lab.admin("iam")
    given, managed = set(), set()
    for role in stack_roles(lab):
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            document = json.loads(document) if isinstance(document, str) else document
            given |= {a for st in document["Statement"] for a in as_list(st["Action"])}
        for attached in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])["PolicyVersion"]
            document = json.loads(version["Document"]) if isinstance(version["Document"], str) else version["Document"]
            managed |= {a for st in document["Statement"] for a in as_list(st["Action"])}
    boundary = policies.render(policies.BOUNDARY, boundary_values())
    bounded = {a for st in boundary["Statement"] for a in as_list(st["Action"])}
    assert given <= bounded, sorted(given - bounded)
    assert managed - bounded == WITHHELD_FROM_PROBES
    assert bounded <= given | managed, sorted(bounded - given - managed)


def test_the_deploy_role_cannot_remove_a_boundary_or_rewrite_it(lab):
    """moto enforces the guardrails' unconditioned denies (the conditioned ones are checked on the
    rendered documents in test_bootstrap.py)."""
    iam = lab.emulator.client("iam", **lab.keys["deploy"])
    role = lab.outputs["lambda_role_name"]
    with pytest.raises(ClientError) as refused:
        iam.delete_role_permissions_boundary(RoleName=role)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as refused:
        iam.create_policy_version(PolicyArn=lab.boundary_arn, PolicyDocument=json.dumps(ADMIN_POLICY), SetAsDefault=True)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    admin = lab.admin("iam")
    assert admin.get_role(RoleName=role)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == lab.boundary_arn
    assert [v["VersionId"] for v in admin.list_policy_versions(PolicyArn=lab.boundary_arn)["Versions"]] == ["v1"]


def test_within_the_boundary_alone_a_launch_converges_a_group(lab):
    """The boundary's actions, granted as they are, let the handler do its whole job: the boundary
    never takes from the hook what its own policy gives it."""
    group = sorted(lab.config["groups"])[1]
    lab.break_group(group, route_elsewhere=True)
    run = lab.launch("hook-boundary-only", group)
    assert run.code == 0, run.stderr
    assert all(lab.state(group).values()), lab.state(group)


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
    assert sorted(as_list(by_sid["PointDefaultRoutes"]["Resource"])) == sorted(
        f"{ec2}:route-table/{t}" for t in out["private_route_table_ids"].values()
    )
    assert sorted(as_list(by_sid["MoveStaticEips"]["Resource"])) == sorted(
        f"{ec2}:elastic-ip/{e}" for e in out["nat_eip_allocation_ids"].values()
    )
    assert sorted(as_list(by_sid["CompleteTerminationsMarkWarned"]["Resource"])) == [
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{g}" for g in groups
    ]
    onto = by_sid["OntoNatInstancesOnly"]
    assert sorted(as_list(onto["Resource"])) == [f"{ec2}:instance/*", f"{ec2}:network-interface/*"]
    assert sorted(as_list(onto["Condition"]["StringEquals"]["aws:ResourceTag/nat-asg-hook:group"])) == groups
    # The Spot fallback: this stack's groups only; never a resize, other subnets or a launch
    # configuration; one tag key.
    group_arns = [f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{g}" for g in groups]
    switch, mark = by_sid["SwitchSpotOnDemand"], by_sid["MarkSpotUnavailable"]
    assert sorted(as_list(switch["Resource"])) == sorted(as_list(mark["Resource"])) == group_arns
    assert switch["Condition"] == {
        "Null": {
            key: "true"
            for key in (
                "autoscaling:LaunchConfigurationName",
                "autoscaling:MaxSize",
                "autoscaling:MinSize",
                "autoscaling:VPCZoneIdentifiers",
            )
        }
    }
    assert mark["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": SPOT_TAG}}
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
        return
    # Identity before routes: the EIP and the source/dest check go in one round, and the routes
    # move only once both succeeded. Without an identity action the other identity change still
    # lands (same round), and no route moves; without a route action, identity is done.
    expected = {
        "ec2:AssociateAddress": {"eip_on_instance": False, "source_dest_check_off": True, "routes_on_instance": False},
        "ec2:ModifyNetworkInterfaceAttribute": {"eip_on_instance": True, "source_dest_check_off": False, "routes_on_instance": False},
        "ec2:CreateRoute": {"eip_on_instance": True, "source_dest_check_off": True, "routes_on_instance": False},
        "ec2:ReplaceRoute": {"eip_on_instance": True, "source_dest_check_off": True, "routes_on_instance": False},
    }[action]
    assert state == expected


def distribution(lab: Lab, group: str) -> tuple[int, str | None]:
    """The group's on-demand base capacity and its Spot mark, as the admin reads them."""
    [found] = lab.admin("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    base = int(found["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandBaseCapacity"])
    return base, next((t["Value"] for t in found.get("Tags", []) if t["Key"] == SPOT_TAG), None)


def spot_shortage(lab: Lab, user: str, group: str) -> hook.Run:
    zone = lab.config["groups"][group]["availability_zone"]
    event = events.write(events.launch_unsuccessful(group, zone=zone), lab.work)
    return hook.run(lab.emulator.env(**lab.keys[user]), "replay", str(event), config=lab.config_file)


@pytest.mark.parametrize("action", FALLBACK)
def test_without_either_fallback_action_a_spot_shortage_switches_nothing(lab, action):
    """The mark goes first: without it nothing is written; without the switch the group stays on Spot."""
    group = sorted(lab.config["groups"])[0]
    assert distribution(lab, group)[0] == 0, "the stack's groups buy Spot"
    run = spot_shortage(lab, f"hook-without-{action.replace(':', '-')}", group)
    assert run.code != 0, f"the fallback succeeded without {action}:\n{run.stdout}"
    base, mark = distribution(lab, group)
    assert base == 0, "the group still buys Spot"
    assert (mark is None) == (action == "autoscaling:CreateOrUpdateTags"), mark


def test_with_the_rendered_policy_a_spot_shortage_switches_the_group_to_on_demand(lab):
    group = sorted(lab.config["groups"])[1]
    run = spot_shortage(lab, "hook", group)
    assert run.code == 0, run.stderr
    assert run.result["capacity"][0]["purchase"] == "on-demand", run.result
    base, mark = distribution(lab, group)
    assert base == 1 and mark is not None


# --- last: the deploy role destroys what it applied --------------------------------------------------


def test_the_deploy_role_destroys_the_whole_stack(lab):
    lab.admin("ec2").delete_network_interface(NetworkInterfaceId=lab.spare_eni)  # the test's own, not the stack's
    lab.terraform("deploy").destroy(*lab.var_args)
    assert not lab.admin("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    probes = list(lab.outputs["egress_probe_instance_ids"].values())
    states = {i["State"]["Name"] for r in lab.admin("ec2").describe_instances(InstanceIds=probes)["Reservations"] for i in r["Instances"]}
    assert probes and states <= {"shutting-down", "terminated"}
