"""End to end on moto, the design of record: the hook cuts over only to a NAT that proved itself,
moves identity before routes, and hands a leaving NAT's zone to a healthy sibling until its
replacement is in service. Every assertion reads the emulator's state (EIP associations, route
tables, ENI attributes) or the requests the recording proxy saw.

moto does not implement CompleteLifecycleAction and emits no events: the tests send the events the
way EventBridge would; the moto server's lifecycle stand-in (nat_lab.moto_shims.lifecycle) answers
CompleteLifecycleAction, and the hook reaches moto through the proxy, which records it (nat_lab.proxy)."""

from __future__ import annotations

import json

from nat_lab import events, hook
from nat_lab.constants import LAUNCH_HOOK, TERMINATE_HOOK
from nat_lab.proxy import Proxy
from nat_lab.world import (
    DESTINATION,
    assert_converged,
    eip_eni,
    in_service,
    primary_eni,
    routes,
    seed_world,
    snapshot,
)


def replay(env, config, tmp_path, event):
    run = hook.run(env, "replay", str(events.write(event, tmp_path)), config=config)
    assert run.code == 0, run.stderr
    return run.result


def members(moto, group) -> dict[str, str]:
    out = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return {i["InstanceId"]: i["LifecycleState"] for i in out["AutoScalingGroups"][0]["Instances"]}


def waiting(moto, group) -> str:
    """The replacement the group launched, waiting in Pending:Wait for its own self-check."""
    [instance] = [i for i, state in members(moto, group).items() if state == "Pending:Wait"]
    return instance


def retire(moto, group) -> tuple[str, str]:
    """The group takes its NAT away (an instance refresh's terminate, an unhealthy instance): it
    holds it Terminating:Wait and launches the replacement into Pending:Wait."""
    [leaving] = in_service(moto, group)
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=leaving, ShouldDecrementDesiredCapacity=False)
    assert members(moto, group)[leaving] == "Terminating:Wait"
    return leaving, waiting(moto, group)


def kill(moto, group) -> tuple[str, str]:
    """The group's NAT dies outside the group (EC2 terminates it); the group launches a replacement,
    which waits in Pending:Wait while it proves itself."""
    [dead] = in_service(moto, group)
    moto.client("ec2").terminate_instances(InstanceIds=[dead])
    return dead, waiting(moto, group)


def prove(moto, group, instance):
    """What the instance's user data does once its self-check passes."""
    moto.client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=group, LifecycleHookName=LAUNCH_HOOK, InstanceId=instance, LifecycleActionResult="CONTINUE"
    )
    assert members(moto, group)[instance] == "InService"


def default_route(moto, table):
    return routes(moto, table)[DESTINATION].get("NetworkInterfaceId")


def zone_tables_on(moto, world, group, eni):
    return all(default_route(moto, t) == eni for t in world.groups[group].route_table_ids)


def test_the_launch_lifecycle_action_moves_nothing(world, moto, config_file, tmp_path):
    g = next(iter(world.groups.values()))
    [instance] = in_service(moto, g.name)
    before = snapshot(moto, world)
    result = replay(moto.env(), config_file, tmp_path, events.launch(g.name, instance, g.zone, "launch-lifecycle-action"))
    assert result["outcome"] == "ignored" and result["actions"] == []
    assert "completes its own launch action" in result["reason"]
    assert snapshot(moto, world) == before


def test_launch_successful_moves_identity_strictly_before_routes(fresh_moto, tmp_path):

    moto = fresh_moto
    world = seed_world(moto, zones=("us-east-1a",), tables_per_zone=4)
    config = world.write_config(tmp_path / "hook-config.json")
    [name] = world.groups
    [instance] = in_service(moto, name)
    with Proxy(moto.endpoint, latency=0.02) as proxy:
        result = replay(proxy.env(moto.env()), config, tmp_path, events.launch(name, instance, world.groups[name].zone))
        records = [r for r in proxy.since() if r.mutating]
    assert result["outcome"] == "applied"
    identity = [r for r in records if r.action in ("AssociateAddress", "ModifyNetworkInterfaceAttribute")]
    moves = [r for r in records if r.action in ("ReplaceRoute", "CreateRoute")]
    assert len(identity) == 2 and len(moves) == 4, [r.action for r in records]
    assert max(r.end for r in identity) <= min(r.start for r in moves), "a route moved before the identity was in place"
    assert_converged(moto, world, name, instance)


def test_terminate_fails_over_to_a_sibling_and_the_replacement_takes_the_zone_back(converged, tmp_path):
    moto, world, config = converged
    a, b = sorted(world.groups)[:2]
    sibling_eni = primary_eni(moto, in_service(moto, b)[0])
    own_eip_on = eip_eni(moto, world.groups[a].eip_allocation_id)
    leaving, replacement = retire(moto, a)

    result = replay(moto.env(), config, tmp_path, events.terminate(a, leaving))
    assert result["outcome"] == "applied"
    assert result["failover"]["auto_scaling_group"] == b
    assert result["lifecycle_action"] == "CONTINUE"
    calls = moto.lifecycle_actions()["calls"]
    assert [(c["instance"], c["hook"], c["result"]) for c in calls if c.get("accepted")] == [(leaving, TERMINATE_HOOK, "CONTINUE")]
    assert leaving not in members(moto, a), "the group let the old instance go"
    assert zone_tables_on(moto, world, a, sibling_eni)
    assert eip_eni(moto, world.groups[a].eip_allocation_id) == own_eip_on, "the EIP never crosses zones"
    assert_converged(moto, world, b)  # the sibling's own zone is untouched

    verify = hook.run(moto.env(), "verify", config=config)
    assert verify.code == 1, verify.stdout
    assert verify.stdout.startswith(f"FAILED OVER: {a} ") and f"its routes are on {b}'s NAT" in verify.stdout, verify.stdout

    # The scheduled run while the replacement is still proving itself leaves the zone on the sibling.
    still = hook.run(moto.env(), "reconcile", config=config)
    assert still.code == 0 and still.result["zone_health"] == {"without_own_nat": 1, "failed_over": 1}, still.stdout
    assert zone_tables_on(moto, world, a, sibling_eni)

    prove(moto, a, replacement)
    back = replay(moto.env(), config, tmp_path, events.launch(a, replacement, world.groups[a].zone))
    assert back["outcome"] == "applied" and "failover" not in back
    assert_converged(moto, world, a, replacement)
    assert hook.run(moto.env(), "verify", config=config).code == 0


def test_a_nat_killed_outside_its_group_fails_over_on_the_state_change(converged, tmp_path):
    moto, world, config_file = converged
    a, b = sorted(world.groups)[:2]
    killed, replacement = kill(moto, a)
    result = replay(moto.env(), config_file, tmp_path, events.state_change(killed, "shutting-down"))
    assert result["outcome"] == "applied" and result["auto_scaling_group"] == a
    assert result["failover"]["auto_scaling_group"] == b
    assert zone_tables_on(moto, world, a, primary_eni(moto, in_service(moto, b)[0]))

    # Its replacement proves itself and goes in service: its launch takes the zone back.
    prove(moto, a, replacement)
    back = replay(moto.env(), config_file, tmp_path, events.launch(a, replacement, world.groups[a].zone))
    assert back["outcome"] == "applied"
    assert_converged(moto, world, a, replacement)


def test_two_zones_down_both_go_to_the_survivor(converged, tmp_path):
    moto, world, config_file = converged
    a, b, c = sorted(world.groups)
    survivor_eni = primary_eni(moto, in_service(moto, c)[0])
    down = {name: kill(moto, name)[0] for name in (a, b)}
    for instance in down.values():
        replay(moto.env(), config_file, tmp_path, events.state_change(instance, "shutting-down"))
    for name in (a, b):
        assert zone_tables_on(moto, world, name, survivor_eni), name
    assert_converged(moto, world, c)


def test_a_zone_failed_over_onto_a_nat_that_then_leaves_moves_on_with_it(converged, tmp_path):
    """a fails over to b (first by name); then b's NAT leaves: a's tables and b's go to c."""
    moto, world, config_file = converged
    a, b, c = sorted(world.groups)
    first, _ = kill(moto, a)
    replay(moto.env(), config_file, tmp_path, events.state_change(first, "shutting-down"))
    b_eni = primary_eni(moto, in_service(moto, b)[0])
    assert zone_tables_on(moto, world, a, b_eni)

    second, _ = kill(moto, b)
    result = replay(moto.env(), config_file, tmp_path, events.state_change(second, "terminated"))
    assert {g["auto_scaling_group"] for g in result["groups"]} == {a, b}
    c_eni = primary_eni(moto, in_service(moto, c)[0])
    assert zone_tables_on(moto, world, a, c_eni) and zone_tables_on(moto, world, b, c_eni)


def test_failover_off_leaves_the_zone_to_its_replacement(converged, tmp_path):
    moto, world, _ = converged
    config = dict(world.config(), failover=False)
    path = tmp_path / "no-failover.json"
    path.write_text(json.dumps(config))
    a = sorted(world.groups)[0]
    leaving, replacement = retire(moto, a)
    before = snapshot(moto, world)
    result = replay(moto.env(), path, tmp_path, events.terminate(a, leaving))
    assert result["outcome"] == "no_instance" and "failover is off" in result["reason"]
    assert result["lifecycle_action"] == "CONTINUE"
    assert snapshot(moto, world) == before
    # The zone waits for its replacement, whose launch then takes it.
    prove(moto, a, replacement)
    replay(moto.env(), path, tmp_path, events.launch(a, replacement, world.groups[a].zone))
    assert_converged(moto, world, a, replacement)


def test_a_state_change_of_an_instance_no_nat_group_launched_is_one_call(converged, tmp_path):
    moto, world, config_file = converged
    ec2 = moto.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    [web] = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"]]
    ec2.stop_instances(InstanceIds=[web])
    before = snapshot(moto, world)
    with Proxy(moto.endpoint) as proxy:
        result = replay(proxy.env(moto.env()), config_file, tmp_path, events.state_change(web, "stopped"))
        actions = sorted(r.action for r in proxy.since())
    assert result["outcome"] == "ignored"
    assert actions == ["DescribeInstances"], "the rule sees every instance of the region: one call each"
    assert snapshot(moto, world) == before


def test_the_schedule_fails_a_dark_zone_over_and_back(converged, tmp_path):
    """No event at all: the NAT dies outside its group and the notification is lost."""
    moto, world, config_file = converged
    a, b = sorted(world.groups)[:2]
    _, replacement = kill(moto, a)

    over = hook.run(moto.env(), "reconcile", config=config_file)
    assert over.code == 0, over.stderr
    assert over.result["zone_health"] == {"without_own_nat": 1, "failed_over": 1}
    assert zone_tables_on(moto, world, a, primary_eni(moto, in_service(moto, b)[0]))

    # The replacement proves itself; the next run takes the zone back.
    prove(moto, a, replacement)
    back = hook.run(moto.env(), "reconcile", config=config_file)
    assert back.code == 0, back.stderr
    assert back.result["zone_health"] == {"without_own_nat": 0, "failed_over": 0}
    assert_converged(moto, world, a, replacement)


def test_verify_calls_a_zone_on_a_dead_nat_down_and_failed_over_only_once_its_routes_moved(converged):
    """issue 23: `verify` must not call a zone "failed over" while its routes still go to the dead NAT."""
    moto, world, config = converged
    a = sorted(world.groups)[0]
    zone = world.groups[a].zone
    [nat] = in_service(moto, a)
    nat_eni = primary_eni(moto, nat)
    dead, _replacement = kill(moto, a)
    assert dead == nat and zone_tables_on(moto, world, a, nat_eni), "the routes still go to the dead NAT"

    dark = hook.run(moto.env(), "verify", config=config)
    assert dark.code == 1, dark.stdout + dark.stderr
    lines = dark.stdout.splitlines()
    assert lines[0].startswith(f"DOWN: {a} ({zone}) is dark: "), dark.stdout
    assert f"goes to {dead} (terminated)" in lines[0], lines[0]
    assert "FAILED OVER" not in dark.stdout and "failed over to" not in dark.stdout, dark.stdout
    assert lines[-1].startswith("worst: DOWN;"), lines[-1]
    as_json = hook.run(moto.env(), "verify", "--json", config=config)
    assert as_json.code == 1
    zones = {z["auto_scaling_group"]: z for z in json.loads(as_json.stdout)}
    assert zones[a]["status"] == "down" and "failed_over_to" not in zones[a]
    assert all(r["dark"] for r in zones[a]["routes"])

    # The schedule moves the zone onto a sibling: now, and only now, it is failed over.
    moved = hook.run(moto.env(), "reconcile", config=config)
    assert moved.code == 0, moved.stderr
    sibling = moved.result["groups"][0]["failover"]["auto_scaling_group"] if a == moved.result["groups"][0]["auto_scaling_group"] else None
    after = hook.run(moto.env(), "verify", "--json", config=config)
    assert after.code == 1
    zones = {z["auto_scaling_group"]: z for z in json.loads(after.stdout)}
    assert zones[a]["status"] == "failed_over", zones[a]
    sibling = zones[a]["failed_over_to"]
    assert sibling != a and zone_tables_on(moto, world, a, primary_eni(moto, in_service(moto, sibling)[0]))
    assert eip_eni(moto, world.groups[sibling].eip_allocation_id) == primary_eni(moto, in_service(moto, sibling)[0])
    text = hook.run(moto.env(), "verify", config=config)
    assert text.stdout.splitlines()[0].startswith(f"FAILED OVER: {a} ({zone}) has no NAT of its own; its routes are on {sibling}'s NAT")
    assert text.stdout.splitlines()[-1].startswith("worst: FAILED OVER;")
