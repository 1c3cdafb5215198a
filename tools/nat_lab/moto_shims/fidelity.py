"""Fidelity fixes: moto answers what AWS answers, for fields moto 5 drops or misfiles.

Without the first four, every plan against moto would show a change that AWS would not, and "a
second apply reports no changes" could not be tested at all. They change no call's effect, only
what moto reports back.

- Lambda GetFunction: AWS returns the function's DeadLetterConfig and LoggingConfig; moto drops both.
- EC2 launch templates: moto files the launch template's own tags (CreateLaunchTemplate's
  TagSpecifications, resource type `launch-template`) under the template data's tag specifications,
  as if they were tags for the instances it launches.
- Auto Scaling groups: AWS returns the group's DefaultInstanceWarmup; moto drops it on create and on
  update (and reports no warm-up).
- Auto Scaling groups: AWS returns the group's InstanceMaintenancePolicy; moto drops it on create
  and on update (Terraform's `instance_maintenance_policy` would plan a change after every apply).
- Auto Scaling groups: an UpdateAutoScalingGroup without a MixedInstancesPolicy keeps the group's
  policy in AWS; moto drops it (any later update, Terraform's or a test's, turned a Spot group into
  one without a policy, and every plan showed a change). And one whose MixedInstancesPolicy has no
  LaunchTemplate (the hook's Spot fallback changes the distribution only) keeps the group's launch
  template and overrides in AWS; moto fails it with an internal error.
- IAM RemoveRoleFromInstanceProfile for a role the profile does not hold (a retry of a removal that
  succeeded, e.g. after a slow answer): AWS answers NoSuchEntity, which the provider takes as done;
  moto fails with an internal error (HTTP 500), which the provider retries for many minutes.
- EC2 DeleteLaunchTemplate by ID of a template that is gone (a retry of a deletion that succeeded,
  e.g. after a slow answer on a loaded machine): AWS answers InvalidLaunchTemplateId.NotFound, which
  the provider takes as done; moto answers InvalidLaunchTemplateName.NotFoundException, which fails
  the destroy.
- Lifecycle hooks: moto reports a made-up notification target and role on every hook (placeholders
  left in its code); AWS reports none when the hook was put without them.
- With IAM enforced (the IAM tests), moto recomputes the SigV4 signature of every request, and for
  Lambda's REST API over another request than the SDK signed: every Lambda call would fail with
  SignatureDoesNotMatch, whatever the policy. For Lambda only, the signature comparison is skipped;
  the access key is still looked up and every action still authorized against the user's policies.
  Without enforcement moto checks no signature, and this changes nothing.
- EC2 RunInstances with a launch template (the root stack's egress probes): AWS launches with the
  template's network interfaces, instance profile and metadata options wherever the request gives
  none; moto takes only the template's image, type, key, user data and security groups, and puts
  the instance in the default VPC with a public IP, no profile and IMDSv1 allowed. Only the
  RunInstances call itself is changed: the instances moto's Auto Scaling groups launch are not.
- EC2 DescribeInstanceAttribute userData of an instance launched without user data: AWS answers an
  empty UserData, moto (for an instance Terraform launched) a UserData whose value is the empty
  string, which the provider reads as user data (its hash) and plans to change on every run.
- IAM: every account holds AWS's managed policies; moto holds none unless it loads all of them
  (about 1,300, MOTO_IAM_LOAD_MANAGED_POLICIES) into every IAM backend it starts. It holds the ones
  the stack attaches (AWS_MANAGED_POLICIES), from moto's own copy of AWS's documents.
"""

from __future__ import annotations

import copy
import functools
import json
import threading

# The AWS managed policies the stack attaches: the egress probe's role (modules/egress-probe).
AWS_MANAGED_POLICIES = ("AmazonSSMManagedInstanceCore",)


def _lambda_configuration() -> None:
    from moto.awslambda.models import LambdaFunction

    kept = ("DeadLetterConfig", "LoggingConfig")
    init, get_configuration, update_configuration = (
        LambdaFunction.__init__,
        LambdaFunction.get_configuration,
        LambdaFunction.update_configuration,
    )

    def __init__(self, account_id, spec, *args, **kwargs):
        init(self, account_id, spec, *args, **kwargs)
        self._shim_kept = {key: spec[key] for key in kept if spec.get(key)}

    def patched_get_configuration(self, *args, **kwargs):
        config = get_configuration(self, *args, **kwargs)
        config.update(getattr(self, "_shim_kept", {}))
        return config

    def patched_update_configuration(self, updates, *args, **kwargs):
        kept_now = getattr(self, "_shim_kept", {})
        for key in kept:
            if key in updates:
                kept_now[key] = updates[key]
        self._shim_kept = {key: value for key, value in kept_now.items() if value}
        return update_configuration(self, updates, *args, **kwargs)

    LambdaFunction.__init__ = __init__
    LambdaFunction.get_configuration = patched_get_configuration
    LambdaFunction.update_configuration = patched_update_configuration


def _launch_template_tags() -> None:
    from moto.ec2.models.launch_templates import LaunchTemplateVersion

    init = LaunchTemplateVersion.__init__

    def __init__(self, template, number, data, description, *args, **kwargs):
        specs = data.get("TagSpecifications")
        if specs:
            data = dict(data)
            data["TagSpecifications"] = [s for s in specs if s.get("ResourceType") != "launch-template"]
            if not data["TagSpecifications"]:
                del data["TagSpecifications"]
        init(self, template, number, data, description, *args, **kwargs)

    LaunchTemplateVersion.__init__ = __init__


def _default_instance_warmup() -> None:
    from moto.autoscaling.responses import AutoScalingResponse

    def keeping_warmup(action):
        def patched(self):
            result = action(self)
            warmup = self._get_int_param("DefaultInstanceWarmup")
            if warmup is not None:
                group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
                group.default_instance_warmup = warmup
            return result

        return patched

    AutoScalingResponse.create_auto_scaling_group = keeping_warmup(AutoScalingResponse.create_auto_scaling_group)
    AutoScalingResponse.update_auto_scaling_group = keeping_warmup(AutoScalingResponse.update_auto_scaling_group)


def _instance_maintenance_policy() -> None:
    from moto.autoscaling.responses import AutoScalingResponse

    def keeping_policy(action):
        def patched(self):
            result = action(self)
            policy = self._get_param("InstanceMaintenancePolicy")
            if policy:
                group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
                group.instance_maintenance_policy = policy
            return result

        return patched

    AutoScalingResponse.create_auto_scaling_group = keeping_policy(AutoScalingResponse.create_auto_scaling_group)
    AutoScalingResponse.update_auto_scaling_group = keeping_policy(AutoScalingResponse.update_auto_scaling_group)


def _mixed_instances_policy() -> None:
    from moto.autoscaling.models import FakeAutoScalingGroup

    update = FakeAutoScalingGroup.update

    @functools.wraps(update)
    def keeping_policy(self, *args, mixed_instances_policy=None, **kwargs):
        kept = self.mixed_instances_policy
        if mixed_instances_policy is not None and kept is not None and "LaunchTemplate" not in mixed_instances_policy:
            merged = copy.deepcopy(kept)
            spec = merged["LaunchTemplate"]["LaunchTemplateSpecification"]
            if spec.get("LaunchTemplateId"):
                spec.pop("LaunchTemplateName", None)  # moto stored both; a request may name only one
            merged["InstancesDistribution"] = {
                **kept.get("InstancesDistribution", {}),
                **mixed_instances_policy.get("InstancesDistribution", {}),
            }
            mixed_instances_policy = merged
        result = update(self, *args, mixed_instances_policy=mixed_instances_policy, **kwargs)
        if mixed_instances_policy is None and kept is not None:
            self.mixed_instances_policy = kept  # its launch template is unchanged: nothing to re-resolve
        return result

    FakeAutoScalingGroup.update = keeping_policy


def _remove_role_from_instance_profile() -> None:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import IAMBackend

    remove = IAMBackend.remove_role_from_instance_profile

    @functools.wraps(remove)
    def remove_held_only(self, profile_name, role_name):
        profile = self.get_instance_profile(profile_name)
        if not any(role.name == role_name for role in profile.roles):
            raise NotFoundException(f"The role {role_name} is not in instance profile {profile_name}.")
        return remove(self, profile_name, role_name)

    IAMBackend.remove_role_from_instance_profile = remove_held_only


def _delete_launch_template_not_found() -> None:
    from moto.ec2.exceptions import InvalidLaunchTemplateIdNotFound
    from moto.ec2.models.launch_templates import LaunchTemplateBackend

    delete = LaunchTemplateBackend.delete_launch_template

    @functools.wraps(delete)
    def delete_by_id_says_id(self, name, tid):
        if not name and tid and tid not in self.launch_templates:
            raise InvalidLaunchTemplateIdNotFound(tid)
        return delete(self, name, tid)

    LaunchTemplateBackend.delete_launch_template = delete_by_id_says_id


def _lifecycle_hook_placeholders() -> None:
    from moto.autoscaling.models import LifecycleHook

    init = LifecycleHook.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.role_arn = None
        self.notification_target_arn = None

    LifecycleHook.__init__ = __init__


def _lambda_signatures() -> None:
    from moto.iam.access_control import IAMRequestBase

    check_signature = IAMRequestBase.check_signature

    def patched(self) -> None:
        if self._service != "lambda":
            check_signature(self)

    IAMRequestBase.check_signature = patched


def _run_instances_from_a_template() -> None:
    from moto.ec2.models import EC2Backend
    from moto.ec2.responses.instances import InstanceResponse

    in_request = threading.local()  # set while the RunInstances API call is answered
    run_response, run_backend = InstanceResponse.run_instances, EC2Backend.run_instances

    def patched_response(self):
        in_request.active = True
        try:
            return run_response(self)
        finally:
            in_request.active = False

    def patched_backend(self, image_id, count, user_data, security_group_names, **kwargs):
        template = kwargs.get("launch_template")
        if not (template and getattr(in_request, "active", False)):
            return run_backend(self, image_id, count, user_data, security_group_names, **kwargs)
        data = self._get_template_from_args(template).data
        if not kwargs.get("nics") and not kwargs.get("subnet_id") and data.get("NetworkInterfaces"):
            kwargs["nics"] = [dict(nic) for nic in data["NetworkInterfaces"]]
        if not kwargs.get("metadata_options") and data.get("MetadataOptions"):
            kwargs["metadata_options"] = dict(data["MetadataOptions"])
        requested_profile = kwargs.get("iam_instance_profile_arn") or kwargs.get("iam_instance_profile_name")
        reservation = run_backend(self, image_id, count, user_data, security_group_names, **kwargs)
        profile = data.get("IamInstanceProfile") or {}
        if not requested_profile and (profile.get("Arn") or profile.get("Name")):
            for instance in reservation.instances:
                self.associate_iam_instance_profile(
                    instance_id=instance.id, iam_instance_profile_arn=profile.get("Arn"), iam_instance_profile_name=profile.get("Name")
                )
        return reservation

    InstanceResponse.run_instances = patched_response
    EC2Backend.run_instances = patched_backend


def _no_user_data() -> None:
    from moto.ec2.responses.instances import InstanceResponse

    describe = InstanceResponse.describe_instance_attribute

    def patched(self):
        answer = describe(self)
        result = answer.result
        if isinstance(result, dict) and "UserData" in result:
            value = result["UserData"]
            if not value or (isinstance(value, dict) and not str(value.get("Value") or "")):
                result["UserData"] = {}
        return answer

    InstanceResponse.describe_instance_attribute = patched


@functools.cache
def _aws_managed_policy_documents() -> dict:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    everything = json.loads(aws_managed_policies_data)
    return {name: everything[name] for name in AWS_MANAGED_POLICIES}


def _aws_managed_policies() -> None:
    from moto.iam.models import AWSManagedPolicy, IAMBackend

    init = IAMBackend._init_aws_policies

    def patched(self):
        loaded = init(self)  # all of them, when moto was asked to load them
        if loaded:
            return loaded
        documents = _aws_managed_policy_documents()
        return [AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data) for name, data in documents.items()]

    IAMBackend._init_aws_policies = patched


PATCHES = {
    "fidelity.lambda-configuration": _lambda_configuration,
    "fidelity.launch-template-tags": _launch_template_tags,
    "fidelity.default-instance-warmup": _default_instance_warmup,
    "fidelity.instance-maintenance-policy": _instance_maintenance_policy,
    "fidelity.mixed-instances-policy": _mixed_instances_policy,
    "fidelity.remove-role-from-instance-profile": _remove_role_from_instance_profile,
    "fidelity.delete-launch-template-not-found": _delete_launch_template_not_found,
    "fidelity.lifecycle-hook-placeholders": _lifecycle_hook_placeholders,
    "fidelity.lambda-signatures": _lambda_signatures,
    "fidelity.run-instances-from-a-template": _run_instances_from_a_template,
    "fidelity.no-user-data": _no_user_data,
    "fidelity.aws-managed-policies": _aws_managed_policies,
}
