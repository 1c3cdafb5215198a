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
- Lifecycle hooks: moto reports a made-up notification target and role on every hook (placeholders
  left in its code); AWS reports none when the hook was put without them.
- With IAM enforced (the IAM tests), moto recomputes the SigV4 signature of every request, and for
  Lambda's REST API over another request than the SDK signed: every Lambda call would fail with
  SignatureDoesNotMatch, whatever the policy. For Lambda only, the signature comparison is skipped;
  the access key is still looked up and every action still authorized against the user's policies.
  Without enforcement moto checks no signature, and this changes nothing.
"""

from __future__ import annotations


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


def install() -> None:
    _lambda_configuration()
    _launch_template_tags()
    _default_instance_warmup()
    _lifecycle_hook_placeholders()
    _lambda_signatures()
