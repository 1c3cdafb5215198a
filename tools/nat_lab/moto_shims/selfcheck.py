"""Each patched behaviour driven once through the server's own HTTP API, at start.

`run(endpoint)` raises ShimError naming the first patch whose behaviour is not there (an answer
moto gives without the patch, or an error). It works in a region of its own and the server resets
the emulator afterwards, so nothing of it is left for the server's users. About 40 requests: well
under a second. Not checked here: `fidelity.lambda-signatures` (it matters only with IAM enforced;
tests/terraform/test_terraform_iam.py depends on it) and `fidelity.aws-managed-policies` beyond one policy.
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from .. import fis
from . import ShimError

REGION = "eu-west-3"  # a region of its own: nothing the tools seed lives there
CREDENTIALS = {"aws_access_key_id": "selfcheck", "aws_secret_access_key": "selfcheck"}
LAUNCH, TERMINATE = "selfcheck-launch", "selfcheck-terminate"


class Check:
    def __init__(self, endpoint: str, data_plane: bool):
        self.endpoint = endpoint
        self.data_plane = data_plane
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=15)
        self.clients = {
            name: boto3.client(name, endpoint_url=endpoint, region_name=REGION, config=config, **CREDENTIALS)
            for name in ("ec2", "autoscaling", "iam", "lambda", "events", "ssm", "fis")
        }

    def __getattr__(self, name):
        return self.clients[name]

    def ledger(self) -> dict:
        url = f"{self.endpoint}/nat-lab/lifecycle-actions?region={REGION}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    def members(self, group: str) -> dict[str, str]:
        [found] = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
        return {i["InstanceId"]: i["LifecycleState"] for i in found["Instances"]}

    def complete(self, group: str, hook: str, instance: str, result: str = "CONTINUE") -> None:
        self.autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=group, LifecycleHookName=hook, InstanceId=instance, LifecycleActionResult=result
        )


def failed(check: str, seen: str) -> ShimError:
    """`check` is "patch" or "patch: the behaviour"."""
    patch, _, behaviour = check.partition(": ")
    return ShimError(patch, f"{behaviour + ': ' if behaviour else ''}{seen}")


def expect(check: str, ok: bool, seen) -> None:
    if not ok:
        raise failed(check, f"saw {seen!r}")


def refuses(check: str, code: str, call, **params) -> None:
    """`call(**params)` must fail with AWS's error `code`."""
    try:
        call(**params)
    except ClientError as exc:
        expect(check, exc.response["Error"]["Code"] == code, exc.response["Error"])
    else:
        expect(check, False, f"{call.__name__} succeeded")


def run(endpoint: str, data_plane: bool = False) -> None:
    """Every patched behaviour once; ShimError on the first that does not hold."""
    c = Check(endpoint, data_plane)
    current = "setup"
    try:
        current = "fidelity.launch-template-tags"
        vpc = c.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = c.ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
        ami = c.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        data = {"ImageId": ami, "InstanceType": "t4g.nano"}
        if data_plane:
            data["NetworkInterfaces"] = [{"DeviceIndex": 0, "AssociatePublicIpAddress": True, "SubnetId": subnet}]
        c.ec2.create_launch_template(
            LaunchTemplateName="selfcheck",
            LaunchTemplateData=data,
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "Project", "Value": "selfcheck"}]}],
        )
        [version] = c.ec2.describe_launch_template_versions(LaunchTemplateName="selfcheck")["LaunchTemplateVersions"]
        expect(current, "TagSpecifications" not in version["LaunchTemplateData"], version["LaunchTemplateData"])

        current = "fidelity.default-instance-warmup"
        hooks = [
            {
                "LifecycleHookName": LAUNCH,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "HeartbeatTimeout": 300,
                "DefaultResult": "ABANDON",
            },
            {
                "LifecycleHookName": TERMINATE,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": 300,
                "DefaultResult": "CONTINUE",
            },
        ]
        c.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="selfcheck",
            MinSize=1,
            MaxSize=2,
            DesiredCapacity=1,
            DefaultInstanceWarmup=60,
            InstanceMaintenancePolicy={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200},
            LaunchTemplate={"LaunchTemplateName": "selfcheck", "Version": "$Latest"},
            VPCZoneIdentifier=subnet,
            LifecycleHookSpecificationList=hooks,
        )
        [group] = c.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["selfcheck"])["AutoScalingGroups"]
        expect(current, group.get("DefaultInstanceWarmup") == 60, group.get("DefaultInstanceWarmup"))
        current = "fidelity.instance-maintenance-policy"
        policy = group.get("InstanceMaintenancePolicy")
        expect(current, policy == {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200}, policy)

        current = "fidelity.mixed-instances-policy"
        mixed = {
            "InstancesDistribution": {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 0},
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "selfcheck", "Version": "$Latest"},
                "Overrides": [{"InstanceType": "t4g.nano"}, {"InstanceType": "t4g.micro"}],
            },
        }
        c.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="selfcheck-mixed",
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=0,
            MixedInstancesPolicy=mixed,
            VPCZoneIdentifier=subnet,
        )
        c.autoscaling.update_auto_scaling_group(AutoScalingGroupName="selfcheck-mixed", MaxSize=2)
        [mixed_group] = c.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["selfcheck-mixed"])["AutoScalingGroups"]
        kept = mixed_group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("Overrides")
        expect(current, kept == mixed["LaunchTemplate"]["Overrides"], mixed_group.get("MixedInstancesPolicy"))
        distribution = {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 0}
        c.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName="selfcheck-mixed", MixedInstancesPolicy={"InstancesDistribution": distribution}
        )
        [mixed_group] = c.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["selfcheck-mixed"])["AutoScalingGroups"]
        policy = mixed_group.get("MixedInstancesPolicy", {})
        expect(
            current,
            policy.get("LaunchTemplate", {}).get("Overrides") == mixed["LaunchTemplate"]["Overrides"]
            and int(policy.get("InstancesDistribution", {}).get("OnDemandBaseCapacity", -1)) == 1,
            policy,
        )

        current = "fidelity.lifecycle-hook-placeholders"
        found = c.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="selfcheck")["LifecycleHooks"]
        expect("lifecycle: hooks created with the group", {h["LifecycleHookName"] for h in found} == {LAUNCH, TERMINATE}, found)
        expect(current, not any(h.get("RoleARN") or h.get("NotificationTargetARN") for h in found), found)

        current = "lifecycle: launch held in Pending:Wait"
        [(instance, state)] = c.members("selfcheck").items()
        expect(current, state == "Pending:Wait", state)

        current = "lifecycle: the ledger at /nat-lab/lifecycle-actions"
        active = c.ledger()["active"]
        expect(current, [(a["instance"], a["hook"]) for a in active] == [(instance, LAUNCH)], active)

        if data_plane:
            current = "lab.put-events recorded for the EventBridge stand-in"
            c.events.put_events(Entries=[{"Source": "nat-lab.selfcheck", "DetailType": "Self Check", "Detail": "{}"}])
            from nat_lab.lab import motoserver

            recorded = [(e["region"], e["source"]) for e in motoserver.PUT_EVENTS]
            expect(current, recorded[-1:] == [(REGION, "nat-lab.selfcheck")], recorded)
            current = "lab.instance-refresh answered (moto has none)"
            refuses(
                current, "ValidationError", c.autoscaling.start_instance_refresh, AutoScalingGroupName="selfcheck-none", Strategy="Rolling"
            )
            found = c.autoscaling.describe_instance_refreshes(AutoScalingGroupName="selfcheck-none")
            expect(current, found.get("InstanceRefreshes") == [], found)
            current = "lab.ssm-hosts: Run Command only on the lab's hosts"
            command = {"DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["true"]}}
            refuses(current, "InvalidInstanceId", c.ssm.send_command, InstanceIds=["i-00000000000selfck"], **command)
            current = "lab.fis-spot-interruption: EC2 warns, the reclaim waits for the notice"
            arn = f"arn:aws:ec2:{REGION}:123456789012:instance/i-00000000000selfck"
            role = "arn:aws:iam::123456789012:role/selfcheck"
            template = c.fis.create_experiment_template(**fis.spot_interruption(arn, role, "selfcheck", "selfcheck"))["experimentTemplate"][
                "id"
            ]
            experiment = c.fis.start_experiment(clientToken="selfcheck", experimentTemplateId=template)["experiment"]["id"]
            warned = [w for w in motoserver.SPOT_WARNINGS if w["experiment"] == experiment]
            expect(current, [w["instance"] for w in warned] == ["i-00000000000selfck"], motoserver.SPOT_WARNINGS)
            expect(current, "i-00000000000selfck" in motoserver.RECLAIMS, motoserver.RECLAIMS)
            c.fis.stop_experiment(id=experiment)
            expect(current, "i-00000000000selfck" not in motoserver.RECLAIMS, motoserver.RECLAIMS)
            motoserver.SPOT_WARNINGS[:] = [w for w in motoserver.SPOT_WARNINGS if w["experiment"] != experiment]
            c.fis.delete_experiment_template(id=template)
            current = "lab.temporary-public-ip"
            [reservation] = c.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
            expect(current, bool(reservation["Instances"][0].get("PublicIpAddress")), reservation["Instances"][0].get("PublicIpAddress"))

        current = "lifecycle: CompleteLifecycleAction CONTINUE"
        c.complete("selfcheck", LAUNCH, instance)
        expect(current, c.members("selfcheck") == {instance: "InService"}, c.members("selfcheck"))
        current = "lifecycle: a completed action is AWS's ValidationError"
        refuses(current, "ValidationError", c.complete, group="selfcheck", hook=LAUNCH, instance=instance)

        current = "lifecycle: terminate held in Terminating:Wait"
        c.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=False)
        states = c.members("selfcheck")
        expect(current, states.get(instance) == "Terminating:Wait", states)
        current = "lifecycle: RecordLifecycleActionHeartbeat"
        c.autoscaling.record_lifecycle_action_heartbeat(AutoScalingGroupName="selfcheck", LifecycleHookName=TERMINATE, InstanceId=instance)
        current = "lifecycle: CompleteLifecycleAction on a terminate action"
        c.complete("selfcheck", TERMINATE, instance)
        expect(current, instance not in c.members("selfcheck"), c.members("selfcheck"))
        calls = [(x["call"], x["instance"], x["accepted"]) for x in c.ledger()["calls"]]
        expect("lifecycle: every call recorded", len(calls) == 4 and [a for _, _, a in calls] == [True, False, True, True], calls)

        current = "fidelity.run-instances-from-a-template"
        profile = c.iam.create_instance_profile(InstanceProfileName="selfcheck")["InstanceProfile"]
        c.ec2.create_launch_template(
            LaunchTemplateName="selfcheck-run",
            LaunchTemplateData={
                "ImageId": ami,
                "InstanceType": "t4g.nano",
                "IamInstanceProfile": {"Arn": profile["Arn"]},
                "MetadataOptions": {"HttpTokens": "required"},
                "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": False}],
            },
        )
        [ran] = c.ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "selfcheck-run"})["Instances"]
        expect(current, ran.get("SubnetId") == subnet and ran.get("MetadataOptions", {}).get("HttpTokens") == "required", ran)

        current = "fidelity.no-user-data"  # what the provider sends for an instance without user data
        [blank] = c.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData="", SubnetId=subnet)["Instances"]
        attribute = c.ec2.describe_instance_attribute(InstanceId=blank["InstanceId"], Attribute="userData")
        expect(current, not attribute.get("UserData"), attribute.get("UserData"))

        current = "fidelity.aws-managed-policies"
        policy = c.iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")["Policy"]
        expect(current, policy["PolicyName"] == "AmazonSSMManagedInstanceCore", policy)

        current = "fidelity.lambda-configuration"
        role = c.iam.create_role(RoleName="selfcheck", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

        current = "fidelity.remove-role-from-instance-profile"
        c.iam.create_instance_profile(InstanceProfileName="selfcheck-removal")
        c.iam.add_role_to_instance_profile(InstanceProfileName="selfcheck-removal", RoleName="selfcheck")
        c.iam.remove_role_from_instance_profile(InstanceProfileName="selfcheck-removal", RoleName="selfcheck")
        refuses(
            current, "NoSuchEntity", c.iam.remove_role_from_instance_profile, InstanceProfileName="selfcheck-removal", RoleName="selfcheck"
        )
        current = "fidelity.delete-launch-template-not-found"
        gone = c.ec2.create_launch_template(LaunchTemplateName="selfcheck-gone", LaunchTemplateData={"InstanceType": "t4g.nano"})
        gone_id = gone["LaunchTemplate"]["LaunchTemplateId"]
        c.ec2.delete_launch_template(LaunchTemplateId=gone_id)
        refuses(current, "InvalidLaunchTemplateId.NotFound", c.ec2.delete_launch_template, LaunchTemplateId=gone_id)
        current = "fidelity.lambda-configuration"
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        dead = "arn:aws:sqs:eu-west-3:123456789012:selfcheck"
        c.clients["lambda"].create_function(
            FunctionName="selfcheck",
            Runtime="provided.al2023",
            Handler="bootstrap",
            Role=role,
            Code={"ZipFile": archive.getvalue()},
            DeadLetterConfig={"TargetArn": dead},
            LoggingConfig={"LogFormat": "JSON"},
        )
        config = c.clients["lambda"].get_function(FunctionName="selfcheck")["Configuration"]
        expect(current, config.get("DeadLetterConfig", {}).get("TargetArn") == dead and "LoggingConfig" in config, config)
    except ShimError:
        raise
    # ResponseParserError: an unpatched moto's internal error is an HTML 500 page, which botocore
    # cannot parse (it is not a BotoCoreError): the patch does not hold, said as such.
    except (ClientError, BotoCoreError, ResponseParserError, OSError, ValueError, KeyError) as exc:
        raise failed(current, f"{type(exc).__name__}: {exc}") from exc
