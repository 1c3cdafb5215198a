"""End to end on moto: the signals that a NAT that still runs is about to stop forwarding. Its own
report (`NAT Self-Check Failed`, put on the bus right after it marked itself Unhealthy) moves its
zone only once its group holds it Unhealthy; EC2's Spot interruption warning is proof by itself: the
hook marks the NAT Unhealthy in its group (so that the group replaces it now and no later decision
picks it) and hands the zone over while the NAT still forwards. Every assertion reads the emulator's
state or the requests the recording proxy saw."""

from __future__ import annotations

from test_failover import replay, zone_tables_on

from nat_lab import events, hook
from nat_lab.proxy import Proxy
from nat_lab.world import in_service, primary_eni, snapshot

LONG_AGO = "2026-01-01T00:00:00Z"


def health(moto, group) -> dict[str, str]:
    out = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return {i["InstanceId"]: i["HealthStatus"] for i in out["AutoScalingGroups"][0]["Instances"]}


def ec2_state(moto, instance) -> str:
    [reservation] = moto.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def test_a_nat_s_own_report_moves_its_zone_only_once_its_group_holds_it_unhealthy(converged, tmp_path):
    moto, world, config = converged
    a, b = sorted(world.groups)[:2]
    [nat] = in_service(moto, a)
    sibling_eni = primary_eni(moto, in_service(moto, b)[0])
    before = snapshot(moto, world)

    # A report alone (forged, crossed, or the NAT's mark lost): the group holds it healthy.
    forged = events.self_check_failed(a, nat)
    forged["time"] = LONG_AGO  # not young: not waited for
    result = replay(moto.env(), config, tmp_path, forged)
    assert result["outcome"] == "stale" and "healthy" in result["reason"], result
    assert snapshot(moto, world) == before

    # The NAT marks itself Unhealthy and reports: its zone goes to a sibling at once.
    moto.client("autoscaling").set_instance_health(InstanceId=nat, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
    result = replay(moto.env(), config, tmp_path, events.self_check_failed(a, nat))
    assert result["outcome"] == "applied" and result["failover"]["auto_scaling_group"] == b, result
    assert zone_tables_on(moto, world, a, sibling_eni)
    # No flapping: the schedule never takes the zone back to the NAT that took itself out.
    again = hook.run(moto.env(), "reconcile", config=config)
    assert again.code == 0, again.stderr
    assert zone_tables_on(moto, world, a, sibling_eni)


def test_ec2_s_spot_warning_hands_the_zone_over_while_the_nat_runs_and_its_group_replaces_it(converged, tmp_path):
    moto, world, config = converged
    a, b = sorted(world.groups)[:2]
    [nat] = in_service(moto, a)
    sibling_eni = primary_eni(moto, in_service(moto, b)[0])

    result = replay(moto.env(), config, tmp_path, events.spot_warning(nat))
    assert result["outcome"] == "applied" and result["failover"]["auto_scaling_group"] == b, result
    assert zone_tables_on(moto, world, a, sibling_eni)
    assert ec2_state(moto, nat) == "running", "handed over while it still forwards"
    assert health(moto, a)[nat] == "Unhealthy", "its group was told: it replaces it now"

    # A repeated warning changes nothing, with no mutating call.
    before = snapshot(moto, world)
    with Proxy(moto.endpoint) as proxy:
        again = replay(proxy.env(moto.env()), config, tmp_path, events.spot_warning(nat))
        mutating = [r.action for r in proxy.since() if r.mutating]
    assert again["outcome"] == "unchanged" and mutating == [], (again, mutating)
    assert snapshot(moto, world) == before


def test_a_warned_sibling_is_never_chosen(converged, tmp_path):
    moto, world, config = converged
    a, b, c = sorted(world.groups)
    replay(moto.env(), config, tmp_path, events.spot_warning(in_service(moto, b)[0]))
    # b's zone went to a or c; now a's NAT is warned too: a's zone goes to c, never to b's NAT.
    [nat_a] = in_service(moto, a)
    result = replay(moto.env(), config, tmp_path, events.spot_warning(nat_a))
    assert result["outcome"] == "applied" and result["failover"]["auto_scaling_group"] == c, result
    assert zone_tables_on(moto, world, a, primary_eni(moto, in_service(moto, c)[0]))


def test_a_spot_warning_for_an_instance_no_nat_group_launched_is_one_read(converged, tmp_path):
    moto, world, config = converged
    ec2 = moto.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    [web] = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"]]
    before = snapshot(moto, world)
    with Proxy(moto.endpoint) as proxy:
        result = replay(proxy.env(moto.env()), config, tmp_path, events.spot_warning(web))
        actions = sorted(r.action for r in proxy.since())
    assert result["outcome"] == "ignored", result
    assert actions == ["DescribeInstances"], "the rule sees every Spot instance of the region: one call each"
    assert snapshot(moto, world) == before


def test_a_rebalance_recommendation_moves_nothing(converged, tmp_path):
    moto, world, config = converged
    [nat] = in_service(moto, sorted(world.groups)[0])
    before = snapshot(moto, world)
    result = replay(moto.env(), config, tmp_path, events.rebalance(nat))
    assert result["outcome"] == "ignored" and "capacity rebalancing" in result["reason"], result
    assert snapshot(moto, world) == before
