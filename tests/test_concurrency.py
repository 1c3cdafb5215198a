"""Concurrency (issue #5): every zone's NAT replaced at once, and each launch event delivered twice in
parallel (EventBridge delivers at least once; Lambda runs the copies side by side). The proxy holds
the observe requests of all the invocations until every one has arrived, so they all observe the
same old state and all plan the same writes: the worst case for a race. The final state must be
right without any reconcile after it. Assertions read the emulator's state directly."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from nat_lab import events, hook
from nat_lab.proxy import Proxy
from nat_lab.world import assert_converged, in_service, primary_eni, replace_instance, seed_world

# What the gate holds until every invocation has sent it: two calls that only the observe round makes
# (the operator commands may describe instances or groups for other reasons). An invocation cannot act
# before its whole observe round is answered, and its other observe calls leave together with these,
# so every invocation has observed before any acts.
GATED = {"DescribeAddresses", "DescribeRouteTables"}


def hold_leaving_instances(moto, world) -> None:
    """The module's terminate hook on every group: a replaced NAT waits in Terminating:Wait, still
    running, until the hook completes its terminate action (once: a second completion is refused)."""
    for name in world.groups:
        moto.client("autoscaling").put_lifecycle_hook(
            LifecycleHookName="nat-asg-hook-terminate",
            AutoScalingGroupName=name,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            HeartbeatTimeout=300,
            DefaultResult="CONTINUE",
        )


def converge_first_instances(moto, config):
    run = hook.run(moto.env(), "reconcile", config=config)
    assert run.code == 0, run.stderr


def replay_in_parallel(env, config, paths):
    """Starts every replay before waiting for any; returns [(exit code, result or None, stderr)]."""
    procs = [
        subprocess.Popen(
            [str(hook.hook_bin()), "--config", str(config), "replay", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in paths
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=90)
        lines = [line for line in stdout.splitlines() if line.strip()]
        out.append((proc.returncode, json.loads(lines[-1]) if proc.returncode == 0 and lines else None, stderr))
    return out


@pytest.mark.parametrize("kind", ["launch-successful", "terminate"])
def test_all_zones_replaced_at_once_each_event_delivered_twice_in_parallel(fresh_moto, tmp_path, kind):
    """`launch-successful`: each new instance's launch, twice. `terminate`: the launches were lost,
    and each old instance's terminate action, twice, must hand its zone to the new instance."""
    moto = fresh_moto
    world = seed_world(moto, tables_per_zone=3)
    config = world.write_config(tmp_path / "hook-config.json")
    converge_first_instances(moto, config)
    if kind == "terminate":
        hold_leaving_instances(moto, world)

    old, new = {}, {}
    for name in world.groups:
        old[name], new[name] = replace_instance(moto, name)
    new_eni = {name: primary_eni(moto, i) for name, i in new.items()}
    paths = []
    for name, instance in new.items():
        if kind == "terminate":
            event = events.terminate(name, old[name])
        else:
            event = events.launch(name, instance, world.groups[name].zone, kind)
        path = events.write(event, tmp_path, f"{name}.json")
        paths += [path, path]  # the same event, delivered twice

    with Proxy(moto.endpoint, latency=0.05) as proxy:
        proxy.gate(len(paths) * len(GATED), GATED)
        results = replay_in_parallel(proxy.env(moto.env()), config, paths)
        records = proxy.since()
        assert proxy.gate_timeouts == 0, "the observe rounds did not all meet at the gate"

    by_group: dict[str, list[dict]] = {name: [] for name in world.groups}
    for code, result, stderr in results:
        assert code == 0, stderr
        by_group[result["auto_scaling_group"]].append(result)
    for name, pair in by_group.items():
        assert len(pair) == 2
        assert {r["instance_id"] for r in pair} == {new[name]}
        assert {r["outcome"] for r in pair} <= {"applied", "unchanged"}
        assert "applied" in {r["outcome"] for r in pair}, pair
        if kind == "terminate":
            # One completes the terminate action; the other finds it already completed.
            assert sorted(r["lifecycle_action"] for r in pair) == ["CONTINUE", "already completed"], pair

    for name, instance in new.items():
        assert assert_converged(moto, world, name) == instance
    # Every write named one of the new instances' ENIs: nothing went to an old one, even briefly.
    for r in records:
        if r.mutating and "NetworkInterfaceId" in r.params:
            assert r.params["NetworkInterfaceId"] in new_eni.values(), (r.action, r.params)
    assert hook.run(moto.env(), "verify", config=config).code == 0


def test_old_and_new_events_of_every_zone_race_and_the_new_instances_win(fresh_moto, tmp_path):
    """As above, plus each zone's previous instance's late launch event and its terminate action in
    the same batch: the launch is stale whatever the interleaving and moves nothing; the terminate
    action hands the zone to the new instance too, never anywhere else."""
    moto = fresh_moto
    world = seed_world(moto, tables_per_zone=2)
    config = world.write_config(tmp_path / "hook-config.json")
    converge_first_instances(moto, config)
    hold_leaving_instances(moto, world)

    old, new, paths = {}, {}, []
    for name, g in world.groups.items():
        old[name], new[name] = replace_instance(moto, name)
        fresh = events.write(events.launch(name, new[name], g.zone), tmp_path, f"{name}-new.json")
        late = events.write(events.launch(name, old[name], g.zone), tmp_path, f"{name}-old.json")
        leaving = events.write(events.terminate(name, old[name]), tmp_path, f"{name}-old-terminating.json")
        paths += [fresh, late, leaving, fresh]

    with Proxy(moto.endpoint, latency=0.05) as proxy:
        proxy.gate(len(paths) * len(GATED), GATED)
        results = replay_in_parallel(proxy.env(moto.env()), config, paths)
        records = proxy.since()
        assert proxy.gate_timeouts == 0, "the observe rounds did not all meet at the gate"

    for code, result, stderr in results:
        assert code == 0, stderr
        name = result["auto_scaling_group"]
        if result["instance_id"] == old[name]:
            assert result["outcome"] == "stale" and result["actions"] == [], result
            assert "lifecycle_action" not in result or result["lifecycle_action"] is None, result
        else:
            assert result["instance_id"] == new[name] and result["outcome"] in ("applied", "unchanged"), result
    for name, instance in new.items():
        assert assert_converged(moto, world, name) == instance
    new_enis = {primary_eni(moto, i) for i in new.values()}
    for r in records:
        if r.mutating and "NetworkInterfaceId" in r.params:
            assert r.params["NetworkInterfaceId"] in new_enis, (r.action, r.params)
        if r.action == "CompleteLifecycleAction":
            # Only the old instances' terminate actions, and only to let them go.
            assert r.params.get("InstanceId") in old.values(), r.params
            assert (r.params.get("LifecycleHookName"), r.params.get("LifecycleActionResult")) == ("nat-asg-hook-terminate", "CONTINUE")
    assert hook.run(moto.env(), "verify", config=config).code == 0


def test_a_reconcile_that_straddles_a_launch_does_not_move_the_routes_back(fresh_moto, tmp_path):
    """The schedule fires during an instance refresh: the group holds the old instance InService
    and the new one comes in; the new one's launch event moves the routes while the reconcile is
    observing. The reconcile's route and address reads are held until the launch has moved them,
    and its group read must not predate them: with the old instance's view of the group and the new
    instance's routes, it would move everything back to the instance about to be terminated."""
    moto = fresh_moto
    world = seed_world(moto, zones=("us-east-1a",), tables_per_zone=2)
    config = world.write_config(tmp_path / "hook-config.json")
    converge_first_instances(moto, config)
    [name] = world.groups
    [old] = in_service(moto, name)

    with Proxy(moto.endpoint) as proxy:
        proxy.gate(len(GATED) + 1, GATED)  # the reconcile's two reads, and one of ours to open it
        reconcile = subprocess.Popen(
            [str(hook.hook_bin()), "--config", str(config), "reconcile"],
            env=proxy.env(moto.env()),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(200):
            if proxy.held() == len(GATED):
                break
            time.sleep(0.05)
        assert proxy.held() == len(GATED), "the reconcile's observe round never reached the gate"

        # The refresh: a second instance comes in beside the first (a later launch time), and its
        # launch event, straight to the emulator, moves the routes and the EIP to it.
        time.sleep(1.1)
        moto.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=2, DesiredCapacity=2)
        [new] = [i for i in in_service(moto, name) if i != old]
        launch = events.write(events.launch(name, new, world.groups[name].zone), tmp_path, "new.json")
        run = hook.run(moto.env(), "replay", str(launch), config=config)
        assert run.code == 0 and run.result["outcome"] == "applied", run.stderr
        assert_converged(moto, world, name, new)

        assert hook.run(proxy.env(moto.env()), "verify", config=config).code == 0  # its reads open the gate
        stdout, stderr = reconcile.communicate(timeout=60)
        assert proxy.gate_timeouts == 0
        records = proxy.since()

    assert reconcile.returncode == 0, stderr
    [group] = json.loads(stdout.splitlines()[-1])["groups"]
    assert group["outcome"] == "unchanged" and group["instance_id"] == new, group
    assert_converged(moto, world, name, new)
    assert not [r.action for r in records if r.mutating], "the reconcile moved something"
