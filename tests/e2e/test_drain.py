"""End to end on moto: an operator drains a zone for maintenance and gives it back (issue 17, item 3).

`drain GROUP` tags the group (nat-asg-hook:drained) and moves the zone's default routes to a healthy
sibling's NAT; the schedule, a launch of the drained group's new NAT and a state change keep it there;
`undrain GROUP` removes the tag and hands the zone back (EIP, then routes). Every assertion reads the
emulator's route tables, EIP associations and group tags, or the requests the recording proxy saw."""

from __future__ import annotations

import json

from nat_lab import events, hook
from nat_lab.constants import LAUNCH_HOOK
from nat_lab.proxy import Proxy
from nat_lab.world import DESTINATION, assert_converged, eip_eni, in_service, primary_eni, routes, snapshot

TAG = "nat-asg-hook:drained"
OK, UNHEALTHY, USAGE = 0, 1, 2


def drain_tag(moto, group) -> str | None:
    out = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return next((t["Value"] for t in out["AutoScalingGroups"][0].get("Tags", []) if t["Key"] == TAG), None)


def members(moto, group) -> dict[str, str]:
    out = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return {i["InstanceId"]: i["LifecycleState"] for i in out["AutoScalingGroups"][0]["Instances"]}


def kill(moto, group) -> tuple[str, str]:
    """The group's NAT dies; the group launches a replacement that waits in Pending:Wait."""
    [dead] = in_service(moto, group)
    moto.client("ec2").terminate_instances(InstanceIds=[dead])
    [waiting] = [i for i, state in members(moto, group).items() if state == "Pending:Wait"]
    return dead, waiting


def prove(moto, group, instance):
    moto.client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=group, LifecycleHookName=LAUNCH_HOOK, InstanceId=instance, LifecycleActionResult="CONTINUE"
    )
    assert members(moto, group)[instance] == "InService"


def tables_on(moto, world, group, eni) -> bool:
    return all(routes(moto, t)[DESTINATION].get("NetworkInterfaceId") == eni for t in world.groups[group].route_table_ids)


def nat_eni(moto, group) -> str:
    [nat] = in_service(moto, group)
    return primary_eni(moto, nat)


def replay(moto, config, tmp_path, event) -> dict:
    run = hook.run(moto.env(), "replay", str(events.write(event, tmp_path)), config=config)
    assert run.code == OK, run.stderr
    return run.result


def test_drain_moves_the_zone_to_a_sibling_every_trigger_keeps_it_there_and_undrain_brings_it_back(converged, tmp_path):
    moto, world, config = converged
    a, b = sorted(world.groups)[:2]
    own_eni, b_eni = nat_eni(moto, a), nat_eni(moto, b)
    eip = world.groups[a].eip_allocation_id
    env = dict(moto.env(), USER="alice")

    # The dry run prints the plan and changes nothing, the tag included.
    before = snapshot(moto, world)
    dry = hook.run(env, "drain", a, "--reason", "kernel patch CHG-42", "--dry-run", config=config)
    assert dry.code == OK, dry.stderr
    assert dry.result["dry_run"] and dry.result["drain"]["status"] == "planned"
    assert f"plan: mark {a} drained" in dry.stdout and "plan: " + world.groups[a].route_table_ids[0] in dry.stdout, dry.stdout
    assert snapshot(moto, world) == before and drain_tag(moto, a) is None

    run = hook.run(env, "drain", a, "--reason", "kernel patch CHG-42", config=config)
    assert run.code == OK, run.stderr
    result = run.result
    assert result["outcome"] == "applied" and result["auto_scaling_group"] == a
    assert result["failover"]["auto_scaling_group"] == b
    assert sorted(x["route_table_id"] for x in result["actions"]) == sorted(world.groups[a].route_table_ids)
    assert result["drain"]["status"] == "applied"
    tag = drain_tag(moto, a)
    assert tag is not None and tag.endswith(" alice: kernel patch CHG-42") and tag[:4].isdigit(), tag
    assert tables_on(moto, world, a, b_eni)
    assert eip_eni(moto, eip) == own_eni, "the EIP never crosses zones"
    assert_converged(moto, world, b)

    # verify: drained, since when and why; not healthy (exit 1), not a fault.
    verify = hook.run(moto.env(), "verify", config=config)
    assert verify.code == UNHEALTHY, verify.stdout
    first = verify.stdout.splitlines()[0]
    assert first.startswith(f"DRAINED: {a} ({world.groups[a].zone}) drained since {tag.split()[0]} (alice: kernel patch CHG-42)"), first
    assert f"its routes are on {b}'s NAT" in first, first
    zones = {z["auto_scaling_group"]: z for z in json.loads(hook.run(moto.env(), "verify", "--json", config=config).stdout)}
    assert zones[a]["status"] == "drained" and zones[a]["drained"]["reason"] == "alice: kernel patch CHG-42"
    assert {zones[g]["status"] for g in zones if g != a} == {"healthy"}

    # The schedule, and a launch event of the drained group's own NAT, keep the zone on the sibling.
    assert hook.run(moto.env(), "reconcile", config=config).code == OK
    assert tables_on(moto, world, a, b_eni)
    [nat] = in_service(moto, a)
    again = replay(moto, config, tmp_path, events.launch(a, nat, world.groups[a].zone))
    assert again["outcome"] == "unchanged" and again["failover"]["auto_scaling_group"] == b, again
    assert tables_on(moto, world, a, b_eni)

    # Maintenance: the drained NAT is killed; its state change, its replacement's launch and the
    # schedule leave the zone on the sibling, and the EIP where it was.
    dead, replacement = kill(moto, a)
    replay(moto, config, tmp_path, events.state_change(dead, "shutting-down"))
    prove(moto, a, replacement)
    launched = replay(moto, config, tmp_path, events.launch(a, replacement, world.groups[a].zone))
    assert launched["outcome"] == "unchanged", launched
    assert hook.run(moto.env(), "reconcile", config=config).code == OK
    assert tables_on(moto, world, a, b_eni)
    assert eip_eni(moto, eip) != primary_eni(moto, replacement), "a drained zone's new NAT takes nothing"

    # Undrain: the tag goes, the zone follows its own proven NAT again, EIP and routes, at once.
    back = hook.run(moto.env(), "undrain", a, config=config)
    assert back.code == OK, back.stderr
    assert back.result["outcome"] == "applied" and "failover" not in back.result
    assert back.result["drain"] == {"auto_scaling_group": a, "drained": False, "tag": TAG, "status": "applied"}
    assert drain_tag(moto, a) is None
    assert_converged(moto, world, a, replacement)
    assert hook.run(moto.env(), "verify", config=config).code == OK


def test_a_drained_nat_carries_no_other_zone(converged, tmp_path):
    moto, world, config = converged
    a, b, c = sorted(world.groups)
    # a failed over onto b (first by name)...
    dead, _ = kill(moto, a)
    replay(moto, config, tmp_path, events.state_change(dead, "shutting-down"))
    assert tables_on(moto, world, a, nat_eni(moto, b))
    # ...then b is drained: both zones go to c at once, and stay there.
    run = hook.run(moto.env(), "drain", b, "--reason", "patch", config=config)
    assert run.code == OK, run.stderr
    assert {g["auto_scaling_group"] for g in run.result["groups"]} == {a, b}
    c_eni = nat_eni(moto, c)
    assert tables_on(moto, world, a, c_eni) and tables_on(moto, world, b, c_eni)
    assert hook.run(moto.env(), "reconcile", config=config).code == OK
    assert tables_on(moto, world, a, c_eni) and tables_on(moto, world, b, c_eni)


def test_drain_with_failover_off_or_no_healthy_sibling_is_refused_and_changes_nothing(converged, tmp_path):
    moto, world, config = converged
    a, b, c = sorted(world.groups)
    off = tmp_path / "no-failover.json"
    off.write_text(json.dumps(dict(world.config(), failover=False)))
    before = snapshot(moto, world)
    refused = hook.run(moto.env(), "drain", a, config=off)
    assert refused.code == USAGE, refused.stderr
    assert "failover is off" in refused.stderr and "nothing changed" in refused.stderr and refused.stdout == ""
    assert snapshot(moto, world) == before and drain_tag(moto, a) is None

    unknown = hook.run(moto.env(), "drain", "nat-nowhere", config=config)
    assert unknown.code == USAGE and "not a configured group" in unknown.stderr

    # No sibling can take the zone (both siblings' NATs died, their replacements still proving themselves).
    for sibling in (b, c):
        dead, _ = kill(moto, sibling)
        replay(moto, config, tmp_path, events.state_change(dead, "terminated"))
    before = snapshot(moto, world)
    refused = hook.run(moto.env(), "drain", a, config=config)
    assert refused.code == USAGE, refused.stderr
    assert "no healthy sibling zone can take" in refused.stderr, refused.stderr
    assert snapshot(moto, world) == before and drain_tag(moto, a) is None
    # --force drains anyway: the mark is written, the zone stays on its own NAT (nowhere else to go).
    forced = hook.run(moto.env(), "drain", a, "--force", config=config)
    assert forced.code == OK, forced.stderr
    assert drain_tag(moto, a) is not None
    assert_converged(moto, world, a)


def test_drain_and_undrain_twice_answer_unchanged_with_no_mutating_call(converged):
    moto, world, config = converged
    a, b = sorted(world.groups)[:2]
    with Proxy(moto.endpoint) as proxy:
        env = proxy.env(moto.env())
        # Undrain of a zone that was never drained.
        never = hook.run(env, "undrain", a, config=config)
        assert never.code == OK and never.result["outcome"] == "unchanged", never.stdout + never.stderr
        assert [r.action for r in proxy.since() if r.mutating] == []

        assert hook.run(env, "drain", a, "--reason", "first", config=config).code == OK
        assert "CreateOrUpdateTags" in [r.action for r in proxy.since() if r.mutating], "the proxy sees the mark"
        tag = drain_tag(moto, a)
        mark = proxy.recorder.mark()  # what the first drain did is before this
        second = hook.run(env, "drain", a, "--reason", "second", config=config)
        assert second.code == OK, second.stderr
        assert second.result["outcome"] == "unchanged" and second.result["drain"]["status"] == "unchanged"
        assert [r.action for r in proxy.since(mark) if r.mutating] == []
        assert "DescribeAutoScalingGroups" in [r.action for r in proxy.since(mark)], "it did look"
        assert drain_tag(moto, a) == tag, "the first mark (since when, why) is kept"
        assert tables_on(moto, world, a, nat_eni(moto, b))

        assert hook.run(env, "undrain", a, config=config).code == OK
        mark = proxy.recorder.mark()
        twice = hook.run(env, "undrain", a, config=config)
        assert twice.code == OK and twice.result["outcome"] == "unchanged", twice.stdout
        assert [r.action for r in proxy.since(mark) if r.mutating] == []
    assert drain_tag(moto, a) is None
    assert_converged(moto, world, a)
