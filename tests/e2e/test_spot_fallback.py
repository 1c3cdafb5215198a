"""End to end on moto: Spot with an on-demand fallback. A Spot group whose launch fails for want of
Spot capacity is switched to on-demand (its on-demand base capacity to 1, the time on the group's
`nat-asg-hook:spot-unavailable` tag), and the schedule switches it back once the configured wait is
over. Every assertion reads the group as the emulator holds it; the zones' routes never move.

moto launches whatever the distribution says and never fails a launch nor sends the event: the
tests send `EC2 Instance Launch Unsuccessful` as Auto Scaling would, and judge what the hook did to
the group. That a switch back to Spot makes Auto Scaling replace the on-demand NAT (launching
first) is AWS's behaviour, which moto does not model (docs/design.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from test_failover import replay

from nat_lab import events, hook
from nat_lab.world import snapshot

TAG = "nat-asg-hook:spot-unavailable"
LONG_AGO = "2026-01-01T00:00:00Z"
OVERRIDES = [{"InstanceType": "t4g.nano"}, {"InstanceType": "t4g.micro"}]
NOT_SPOT = "The image id '[ami-12345678]' does not exist. Launching EC2 instance failed."


def on_spot(moto, world, group: str) -> None:
    """The module's Spot distribution for `group`: no on-demand base, 0 % on-demand above it, two types."""
    moto.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=group,
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": world.launch_template, "Version": "$Latest"},
                "Overrides": OVERRIDES,
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": 0,
                "OnDemandPercentageAboveBaseCapacity": 0,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
    )


def group_read(moto, group: str) -> dict:
    """The group's distribution (base, percentage, strategy), its overrides and its Spot mark."""
    [found] = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    policy = found["MixedInstancesPolicy"]
    distribution = policy["InstancesDistribution"]
    return {
        "base": int(distribution["OnDemandBaseCapacity"]),
        "percent": int(distribution["OnDemandPercentageAboveBaseCapacity"]),
        "strategy": distribution.get("SpotAllocationStrategy"),
        "overrides": policy["LaunchTemplate"]["Overrides"],
        "mark": next((t["Value"] for t in found.get("Tags", []) if t["Key"] == TAG), None),
    }


def with_fallback(world, tmp_path, seconds: int):
    config = world.config()
    config["spot_fallback"] = {"retry_spot_after_seconds": seconds}
    path = tmp_path / f"hook-config-fallback-{seconds}.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def spot(converged, tmp_path):
    moto, world, _ = converged
    group = sorted(world.groups)[0]
    on_spot(moto, world, group)
    return moto, world, group, with_fallback(world, tmp_path, 6 * 3600)


def test_no_spot_capacity_switches_the_group_to_on_demand_once_and_moves_no_route(spot, tmp_path):
    moto, world, group, config = spot
    before = snapshot(moto, world)
    failed = events.launch_unsuccessful(group)

    result = replay(moto.env(), config, tmp_path, failed)
    assert result["outcome"] == "applied", result
    [switched] = result["capacity"]
    assert switched["purchase"] == "on-demand" and switched["status"] == "applied", switched
    found = group_read(moto, group)
    assert (found["base"], found["percent"], found["strategy"]) == (1, 0, "price-capacity-optimized"), found
    assert found["overrides"] == OVERRIDES, "the launch template's overrides stay as they were"
    assert found["mark"] == failed["time"] == switched["spot_unavailable_since"]
    assert snapshot(moto, world) == before, "a capacity switch moves no address and no route"

    # The same failure again (a retry of the launch, a duplicated event): nothing more is written.
    result = replay(moto.env(), config, tmp_path, events.launch_unsuccessful(group))
    assert result["outcome"] == "unchanged" and "capacity" not in result, result
    assert group_read(moto, group)["mark"] == failed["time"], "the mark keeps the first failure's time"


def test_an_old_failure_is_not_a_shortage_now_and_switches_nothing(spot, tmp_path):
    """A dead letter replayed late, or an event without a time: Auto Scaling retries a failed launch
    within minutes, so an old failure says nothing about Spot now."""
    moto, world, group, config = spot
    for when in (LONG_AGO, None):
        old = events.launch_unsuccessful(group)
        if when is None:
            del old["time"]
        else:
            old["time"] = when
        result = replay(moto.env(), config, tmp_path, old)
        assert result["outcome"] == "stale" and "old" in result["reason"], result
    found = group_read(moto, group)
    assert (found["base"], found["mark"]) == (0, None), found


def test_a_failure_on_demand_would_share_and_a_group_without_the_fallback_change_nothing(spot, tmp_path):
    moto, world, group, config = spot
    result = replay(moto.env(), config, tmp_path, events.launch_unsuccessful(group, NOT_SPOT))
    assert result["outcome"] == "ignored" and "not a Spot capacity failure" in result["reason"], result
    assert group_read(moto, group)["base"] == 0

    plain = world.write_config(tmp_path / "no-fallback.json")
    result = replay(moto.env(), plain, tmp_path, events.launch_unsuccessful(group))
    assert result["outcome"] == "ignored" and "no on-demand fallback" in result["reason"], result
    found = group_read(moto, group)
    assert (found["base"], found["mark"]) == (0, None), found

    result = replay(moto.env(), config, tmp_path, events.launch_unsuccessful("someone-elses-group"))
    assert result["outcome"] == "ignored" and result["reason"] == "group is not configured", result


def test_a_dry_run_plans_the_switch_and_changes_nothing(spot, tmp_path):
    moto, world, group, config = spot
    run = hook.run(moto.env(), "replay", str(events.write(events.launch_unsuccessful(group), tmp_path)), "--dry-run", config=config)
    assert run.code == 0, run.stderr
    assert run.result["dry_run"] and run.result["capacity"][0]["status"] == "planned", run.result
    assert group_read(moto, group)["base"] == 0 and group_read(moto, group)["mark"] is None


def test_the_schedule_tries_spot_again_only_once_the_wait_is_over(spot, tmp_path):
    moto, world, group, config = spot  # wait: six hours
    # As the hook left the group after a shortage an hour ago: its mark, then on-demand.
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    autoscaling = moto.client("autoscaling")
    tag = {"ResourceId": group, "ResourceType": "auto-scaling-group", "Key": TAG, "Value": an_hour_ago, "PropagateAtLaunch": False}
    autoscaling.create_or_update_tags(Tags=[tag])
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=group, MixedInstancesPolicy={"InstancesDistribution": {"OnDemandBaseCapacity": 1}}
    )
    assert group_read(moto, group)["base"] == 1

    # An hour of six: the group stays on-demand, the zones as they were.
    before = snapshot(moto, world)
    run = hook.run(moto.env(), "reconcile", config=config)
    assert run.code == 0, run.stderr
    assert "capacity" not in run.result and group_read(moto, group)["base"] == 1, run.result
    assert snapshot(moto, world) == before

    # verify says so, as a note: egress is whole on the on-demand NAT (exit 0), it only costs more.
    held = f"on-demand: Spot was unavailable at {an_hour_ago}; Spot is tried again in 300 min"
    checked = hook.run(moto.env(), "verify", "--json", config=config)
    zones = {z["auto_scaling_group"]: z for z in json.loads(checked.stdout)}
    assert checked.code == 0 and zones[group]["status"] == "healthy" and zones[group]["capacity"] == held, zones[group]
    assert not any("capacity" in z for name, z in zones.items() if name != group), zones
    assert held in hook.run(moto.env(), "verify", config=config).stdout

    # With a half-hour wait it is over: back to Spot (Auto Scaling then replaces the NAT, launching first).
    shorter = with_fallback(world, tmp_path, 1800)
    run = hook.run(moto.env(), "reconcile", config=shorter)
    assert run.code == 0, run.stderr
    [switched] = run.result["capacity"]
    assert (switched["auto_scaling_group"], switched["purchase"], switched["on_demand_base_capacity"]) == (group, "spot", 0)
    assert switched["spot_unavailable_since"] == an_hour_ago and run.result["outcome"] == "applied"
    found = group_read(moto, group)
    assert (found["base"], found["percent"], found["overrides"]) == (0, 0, OVERRIDES), found
    assert snapshot(moto, world) == before, "the switch itself moves nothing; the group's replacement will"

    # Back on Spot, the next schedule has nothing to switch, and verify no hold to tell.
    run = hook.run(moto.env(), "reconcile", config=shorter)
    assert run.code == 0 and "capacity" not in run.result, run.result
    checked = hook.run(moto.env(), "verify", "--json", config=shorter)
    assert checked.code == 0 and not any("capacity" in z for z in json.loads(checked.stdout)), checked.stdout
