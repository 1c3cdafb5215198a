"""The `local` environment (three zones) applied by Terraform to moto, then driven by the real binary:
the ASGs come after the hook's wiring, with their two lifecycle hooks, their instance profile and the
user data that names them; the hook's four rules deliver exactly the events the hook handles; a plan
right after the apply has nothing to do, a launch event built from each ASG's instance converges its
zone (EIP, source/dest check, every private table's default route), a second apply after the hook
changes nothing (Terraform does not fight the hook), and destroy leaves the emulator as it found it.
One apply serves every test, in file order.

Assertions read the emulator's state. The emulator is this module's own moto server, with the
fidelity fixes of nat_lab.moto_shims (fields moto 5 drops that AWS returns), as every `Moto` has."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from nat_lab import dashboard, events, hook, userdata
from nat_lab import terraform as tf_lab
from nat_lab.constants import DESTINATION, LAUNCH_HOOK, LEAVING_STATES, TERMINATE_HOOK, ZONES
from nat_lab.moto import Moto
from nat_lab.standin import LaunchStandIn
from nat_lab.state import read_state
from nat_lab.world import World, eip_eni, in_service, routes

RULES = ("launch", "launch-failed", "terminate", "state-change", "self-check", "spot-warning", "reconcile")


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
    with LaunchStandIn(emulator, on_failure=tf.abort):  # each NAT's user data completes its launch action
        applied = tf.apply(*var_args)
    yield Stack(tf, var_args, applied.stdout, tf.outputs(), baseline, work)
    (logs / "terraform-local-timings.json").write_text(json.dumps(tf.timings, indent=2))


def test_apply_builds_every_zone_and_renders_the_hook_config(stack, emulator):
    config = stack.config
    assert set(config) == {"groups", "destination_cidr_block", "failover"} and config["destination_cidr_block"] == DESTINATION
    assert config["failover"] is True
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
        assert (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]) == (1, 2, 1), "max 2: a refresh launches before it terminates"
        assert asg["VPCZoneIdentifier"] == outputs["public_subnet_ids"][zone]
        assert asg["HealthCheckType"] == "EC2" and asg["HealthCheckGracePeriod"] == 60
        assert len(in_service(emulator, group)) == 1
        # Terraform declares no default route: the private tables have none until the hook runs.
        assert DESTINATION not in routes(emulator, outputs["private_route_table_ids"][zone])
        # The EIP is the hook's to associate.
        assert eip_eni(emulator, outputs["nat_eip_allocation_ids"][zone]) is None


def test_without_egress_probe_the_only_instances_are_the_nat_groups_and_the_eips_are_the_outputs(stack, emulator):
    """The local environment leaves egress_probe off: no probe, `egress_probe_instance_ids` is {}, and
    `nat_public_ips` (what scripts/verify_nat.sh compares with) are the zones' static EIPs."""
    outputs, ec2 = stack.outputs, emulator.client("ec2")
    assert outputs["egress_probe_instance_ids"] == {}
    running = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"] if i["State"]["Name"] == "running"}
    assert running == {i for group in stack.config["groups"] for i in in_service(emulator, group)}
    assert not [t for t in ec2.describe_launch_templates()["LaunchTemplates"] if "egress-probe" in t["LaunchTemplateName"]]
    for zone in ZONES:
        [address] = ec2.describe_addresses(AllocationIds=[outputs["nat_eip_allocation_ids"][zone]])["Addresses"]
        assert outputs["nat_public_ips"][zone] == address["PublicIp"]


def test_every_nat_group_has_its_launch_and_terminate_hooks(stack, emulator):
    autoscaling = emulator.client("autoscaling")
    for group in stack.config["groups"]:
        hooks = {h["LifecycleHookName"]: h for h in autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]}
        assert set(hooks) == {LAUNCH_HOOK, TERMINATE_HOOK}
        launch, terminate = hooks[LAUNCH_HOOK], hooks[TERMINATE_HOOK]
        assert (launch["LifecycleTransition"], launch["DefaultResult"]) == ("autoscaling:EC2_INSTANCE_LAUNCHING", "ABANDON")
        assert launch["HeartbeatTimeout"] >= 240, "boot, set-up and self-check fit in the launch heartbeat"
        assert (terminate["LifecycleTransition"], terminate["DefaultResult"]) == ("autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE")
        assert 150 <= terminate["HeartbeatTimeout"] <= 600, "outlasts Lambda's 2-minute retry delay (heartbeats renew it)"


def test_each_group_buys_on_demand_over_several_types_by_default(stack, emulator):
    """capacity = "on-demand" (the module's default): every instance on-demand, instance_type first,
    then the alternates; no capacity rebalancing (that is Spot's)."""
    found = emulator.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=sorted(stack.config["groups"]))
    for group in found["AutoScalingGroups"]:
        policy = group["MixedInstancesPolicy"]
        distribution = policy["InstancesDistribution"]
        assert (distribution["OnDemandBaseCapacity"], distribution["OnDemandPercentageAboveBaseCapacity"]) == (0, 100)
        assert distribution["OnDemandAllocationStrategy"] == "prioritized"
        # The local environment's (x86_64, like the emulator's image): instance_type, then its alternate.
        assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == ["t3.nano", "t3.micro"]
        assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateName"] == group["AutoScalingGroupName"]
        assert not group.get("CapacityRebalance")


def test_the_launch_template_gives_a_temporary_public_ip_the_profile_and_the_rendered_user_data(stack, emulator):
    ec2, iam = emulator.client("ec2"), emulator.client("iam")
    for group in stack.config["groups"]:
        [version] = ec2.describe_launch_template_versions(LaunchTemplateName=group, Versions=["$Latest"])["LaunchTemplateVersions"]
        data = version["LaunchTemplateData"]
        [interface] = data["NetworkInterfaces"]
        assert interface["AssociatePublicIpAddress"] is True
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        user_data = userdata.decode(data["UserData"])
        assert base64.b64decode(data["UserData"]).startswith(userdata.GZIP_MAGIC), "gzipped: EC2 takes 16 KiB"
        assert f"AUTO_SCALING_GROUP_NAME='{group}'" in user_data
        assert f"LAUNCH_HOOK_NAME='{LAUNCH_HOOK}'" in user_data
        assert "/usr/local/sbin/nat-self-check launch" in user_data

        profile = iam.get_instance_profile(InstanceProfileName=data["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1])["InstanceProfile"]
        [role] = profile["Roles"]
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
        assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []
        [name] = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
        policy = json.loads(document) if isinstance(document, str) else document
        own_group, own_log, report, serving, own_metrics = policy["Statement"]
        assert all(s["Effect"] == "Allow" for s in policy["Statement"])
        assert sorted(own_group["Action"]) == ["autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth"]
        assert own_group["Resource"] == f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/{group}"
        # Its log: the streams of its group's log group only (the root stack's, next to the flow logs).
        zone = stack.config["groups"][group]["availability_zone"]
        log_group = f"/vpc/{group.removesuffix('-' + zone)}/nat/{group}"  # groups are <stack>-<zone>
        assert sorted(own_log["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
        assert own_log["Resource"] == f"arn:aws:logs:us-east-1:123456789012:log-group:{log_group}:log-stream:*"
        assert emulator.client("logs").describe_log_groups(logGroupNamePrefix=log_group)["logGroups"][0]["logGroupName"] == log_group
        assert f"LOG_GROUP_NAME='{log_group}'" in user_data
        # Its report to the hook: one event on the default bus, of the project's source and type only.
        assert report["Action"] == "events:PutEvents"
        assert report["Resource"] == "arn:aws:events:us-east-1:123456789012:event-bus/default"
        assert report["Condition"] == {
            "StringEquals": {"events:source": events.SELF_CHECK_SOURCE, "events:detail-type": events.SELF_CHECK_FAILED}
        }
        # nat-conntrack-sync: which instance holds the zone's EIP (a read; Describe takes no resource).
        assert (serving["Sid"], serving["Action"], serving["Resource"]) == ("FindTheServingNat", "ec2:DescribeAddresses", "*")
        assert "Condition" not in serving
        assert f"--allocation-ids {stack.config['groups'][group]['eip_allocation_id']} " in user_data
        # Its self-check's metric: the project's namespace only.
        assert own_metrics["Action"] == "cloudwatch:PutMetricData" and own_metrics["Resource"] == "*"
        assert own_metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "NatAsgHook"}}


def test_the_rules_deliver_exactly_the_events_the_hook_handles(stack, emulator):
    name = stack.outputs["lambda_function_name"]
    events_client = emulator.client("events")
    groups = sorted(stack.config["groups"])
    pattern = {rule: json.loads(events_client.describe_rule(Name=f"{name}-{rule}").get("EventPattern", "null")) for rule in RULES}
    # Only this account's events: another account's on a shared bus never moves this one's EIPs.
    account = [emulator.client("sts").get_caller_identity()["Account"]]
    assert pattern["launch"] == {
        "account": account,
        "source": ["aws.autoscaling"],
        "detail-type": [events.LAUNCH_SUCCESSFUL],
        "detail": {"AutoScalingGroupName": groups},
    }
    # A failed launch (the Spot fallback's cue; without the fallback the hook only logs it).
    assert pattern["launch-failed"] == {
        "account": account,
        "source": ["aws.autoscaling"],
        "detail-type": [events.LAUNCH_UNSUCCESSFUL],
        "detail": {"AutoScalingGroupName": groups},
    }
    assert pattern["terminate"] == {
        "account": account,
        "source": ["aws.autoscaling"],
        "detail-type": [events.TERMINATE_ACTION],
        "detail": {"AutoScalingGroupName": groups, "LifecycleHookName": [TERMINATE_HOOK]},
    }
    assert pattern["state-change"] == {
        "account": account,
        "source": ["aws.ec2"],
        "detail-type": [events.STATE_CHANGE],
        "detail": {"state": list(LEAVING_STATES)},
    }
    # A NAT's own report (the hook checks the group holds it Unhealthy) and EC2's Spot warning.
    assert pattern["self-check"] == {
        "account": account,
        "source": [events.SELF_CHECK_SOURCE],
        "detail-type": [events.SELF_CHECK_FAILED],
        "detail": {"AutoScalingGroupName": groups},
    }
    assert pattern["spot-warning"] == {"account": account, "source": ["aws.ec2"], "detail-type": [events.SPOT_WARNING]}
    assert pattern["reconcile"] is None
    assert events_client.describe_rule(Name=f"{name}-reconcile")["ScheduleExpression"] == "rate(1 minute)"
    # The dead-letter queue admits every rule, and only them.
    queue = emulator.client("sqs").get_queue_url(QueueName=f"{name}-dead-letter")["QueueUrl"]
    policy = json.loads(emulator.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"])
    [statement] = policy["Statement"]
    rule_arns = {events_client.describe_rule(Name=f"{name}-{rule}")["Arn"] for rule in RULES}
    assert set(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == rule_arns


def test_the_alarms_watch_errors_dead_letters_zones_failovers_and_permissions(stack, emulator):
    name = stack.outputs["lambda_function_name"]
    alarms = {a["AlarmName"]: a for a in emulator.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{name}-")["MetricAlarms"]}
    nat_alarms = {f"{name}-{kind}-{zone}": (kind, zone) for kind in ("conntrack", "drops", "nat-silent") for zone in ZONES}
    assert set(alarms) == {
        f"{name}-{suffix}"
        for suffix in ("errors", "dead-letters", "zone-without-nat", "failover-too-long", "authorization-errors", "outside-trouble")
    } | set(nat_alarms)
    # Per zone, on what its NAT publishes (nat-metrics), by its group: the graph outlives the instance.
    groups_by_zone = {settings["availability_zone"]: group for group, settings in stack.config["groups"].items()}
    for alarm_name, (kind, zone) in nat_alarms.items():
        alarm = alarms.pop(alarm_name)
        assert alarm["Namespace"] == "NatAsgHook" and alarm["Period"] == 60
        assert alarm["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": groups_by_zone[zone]}]
        shape = (alarm["MetricName"], alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"])
        assert (
            shape
            == {
                "conntrack": ("ConntrackUsePercent", "Maximum", "GreaterThanThreshold", 80, "notBreaching"),
                "drops": ("PacketsDropCount", "Sum", "GreaterThanOrEqualToThreshold", 10, "notBreaching"),
                "nat-silent": ("ActiveConnectionCount", "SampleCount", "LessThanThreshold", 1, "breaching"),  # silence breaches
            }[kind]
        ), alarm_name
    zone = alarms[f"{name}-zone-without-nat"]
    assert (zone["Namespace"], zone["MetricName"], zone.get("Dimensions", [])) == ("NatAsgHook", "ZonesWithoutOwnNat", [])
    assert zone["Period"] == 60 and zone["EvaluationPeriods"] == 10 and zone["TreatMissingData"] == "breaching"
    # The fleet guard: NATs of two zones or more reporting outside trouble in the same minute.
    outside = alarms.pop(f"{name}-outside-trouble")
    assert outside["Threshold"] == 2 and outside["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    queries = {q["Id"]: q for q in outside["Metrics"]}
    groups = sorted(stack.config["groups"])
    assert queries["zones"]["Expression"] == " + ".join(f"FILL(m{i}, 0)" for i in range(len(groups)))
    for i, group in enumerate(groups):
        metric = queries[f"m{i}"]["MetricStat"]
        assert (metric["Metric"]["Namespace"], metric["Metric"]["MetricName"]) == ("NatAsgHook", "CheckEndpointsUnreachable")
        assert metric["Metric"]["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": group}]
        assert (metric["Period"], metric["Stat"]) == (60, "Maximum")
    failover = alarms[f"{name}-failover-too-long"]
    assert (failover["Namespace"], failover["MetricName"]) == ("NatAsgHook", "ZonesFailedOver")
    assert failover["Period"] * failover["EvaluationPeriods"] == 15 * 60
    assert alarms[f"{name}-authorization-errors"]["MetricName"] == "AuthorizationErrors"
    for alarm in alarms.values():
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_the_dashboard_shows_every_zone_and_the_hook_and_is_a_root_output(stack, emulator):
    name = stack.outputs["lambda_function_name"]
    assert stack.outputs["dashboard_url"].endswith(f"#dashboards/dashboard/{name}")
    body = json.loads(emulator.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])
    lines = [line for w in body["widgets"] if w["type"] == "metric" for line in w["properties"]["metrics"]]
    nat_metrics = ("BytesOutToDestination", "BytesInFromDestination", "ActiveConnectionCount", "ConnectionEstablishedCount")
    for group in stack.config["groups"]:
        for metric in (*nat_metrics, "PacketsDropCount", "ErrorPortAllocation", "ConntrackUsePercent"):
            assert any(line[:4] == ["NatAsgHook", metric, "AutoScalingGroupName", group] for line in lines), (metric, group)
    for metric in ("ZonesFailedOver", "ZonesWithoutOwnNat", "Invocations", "CutoverDuration"):
        assert any(line[:2] == ["NatAsgHook", metric] for line in lines), metric
    assert ["AWS/Lambda", "Errors", "FunctionName", name] in lines
    [text] = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    for group, settings in stack.config["groups"].items():
        assert f"| {settings['availability_zone']} | `{group}` | `{settings['eip_allocation_id']}` |" in text
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    described = {a["AlarmArn"] for a in emulator.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{name}-")["MetricAlarms"]}
    assert set(alarm_widget["properties"]["alarms"]) == described

    # The runbook's picture of it (docs/dashboard.svg, python -m nat_lab.dashboard) is this dashboard's grid.
    drawn = dashboard.layout(dashboard.widgets_in_svg(dashboard.OUT.read_text()))
    assert drawn == dashboard.layout(dashboard.widgets(body)), "docs/dashboard.svg is out of date: python -m nat_lab.dashboard"


def test_the_function_runs_with_the_rendered_config_and_its_wiring(stack, emulator):
    function = emulator.client("lambda").get_function(FunctionName=stack.outputs["lambda_function_name"])
    conf = function["Configuration"]
    assert (conf["Runtime"], conf["Handler"], conf["Architectures"]) == ("provided.al2023", "bootstrap", ["x86_64"])
    assert conf["Environment"]["Variables"]["NAT_ASG_HOOK_CONFIG"] == stack.outputs["hook_config"]
    assert conf["TracingConfig"]["Mode"] == "Active"
    assert not conf.get("VpcConfig", {}).get("SubnetIds"), "the function runs outside the VPC"
    assert "ReservedConcurrentExecutions" not in function.get("Concurrency", {}), "no reservation unless opted in"

    name = stack.outputs["lambda_function_name"]
    events_client = emulator.client("events")
    rule_arns = set()
    for rule in (f"{name}-{purpose}" for purpose in RULES):
        rule_arns.add(events_client.describe_rule(Name=rule)["Arn"])
        [target] = events_client.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] == conf["FunctionArn"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0 and target["DeadLetterConfig"]["Arn"].endswith("-dead-letter")
    policy = json.loads(emulator.client("lambda").get_policy(FunctionName=name)["Policy"])
    source_arns = {s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]}
    assert source_arns == rule_arns
    invoke = emulator.client("lambda").get_function_event_invoke_config(FunctionName=name)
    assert invoke["MaximumEventAgeInSeconds"] <= 300
    # One failure, one dead letter: the on-failure destination, and no function DLQ besides it.
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"].endswith("-dead-letter")
    assert "DeadLetterConfig" not in conf


def test_nat_groups_are_created_only_after_the_hooks_wiring(stack):
    """The first instance must find every rule, target, permission and the policies in place (its
    Launch Successful, its terminate hook, its own launch completion): in the apply's own log, every
    ASG starts creating after all of them completed."""
    log = stack.apply_log.splitlines()

    def line_of(needle: str) -> int:
        return next(i for i, line in enumerate(log) if needle in line)

    wiring_done = max(
        line_of(f"{address}: Creation complete")
        for address in (
            *(f"module.hook.aws_cloudwatch_event_rule.{rule.replace('-', '_')}" for rule in RULES),
            *(f'module.hook.aws_cloudwatch_event_target.this["{rule}"]' for rule in RULES),
            *(f'module.hook.aws_lambda_permission.events["{rule}"]' for rule in RULES),
            "module.hook.aws_iam_role_policy.this",
            "module.hook.aws_lambda_function_event_invoke_config.this",
        )
    )
    for zone in ZONES:
        created = line_of(f'module.nat["{zone}"].aws_autoscaling_group.this: Creating...')
        assert created > wiring_done
        assert created > line_of(f'module.nat["{zone}"].aws_iam_role_policy.instance: Creation complete')


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
