"""The e2e tests' shared worlds: three zones with the module's lifecycle hooks, converged."""

from __future__ import annotations

import pytest

from nat_lab import hook
from nat_lab.constants import LAUNCH_HOOK, TERMINATE_HOOK
from nat_lab.world import assert_converged, seed_world


@pytest.fixture
def hooked(fresh_moto):
    """Three zones seeded as after a replacement, then given the module's lifecycle hooks (every
    Moto runs Auto Scaling's lifecycle: the session's emulator, emptied, is enough)."""
    moto = fresh_moto
    world = seed_world(moto)
    autoscaling = moto.client("autoscaling")
    for name in world.groups:
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=2)
        for hook_name, transition, default in (
            (LAUNCH_HOOK, "autoscaling:EC2_INSTANCE_LAUNCHING", "ABANDON"),
            (TERMINATE_HOOK, "autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE"),
        ):
            autoscaling.put_lifecycle_hook(
                LifecycleHookName=hook_name,
                AutoScalingGroupName=name,
                LifecycleTransition=transition,
                HeartbeatTimeout=300,
                DefaultResult=default,
            )
    return moto, world


@pytest.fixture
def converged(hooked, tmp_path):
    """Three zones, each on its own NAT (the schedule converges them)."""
    moto, world = hooked
    config = world.write_config(tmp_path / "hook-config.json")
    run = hook.run(moto.env(), "reconcile", config=config)
    assert run.code == 0, run.stderr
    for name in world.groups:
        assert_converged(moto, world, name)
    return moto, world, config
