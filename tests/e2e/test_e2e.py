"""End to end on the real path: moto server, a seeded 3-zone NAT world, the real binary through
`replay` and through `cargo lambda watch` + `cargo lambda invoke`. Every assertion reads the
emulator's state (EIP association, ENI attribute, route tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nat_lab import events, hook
from nat_lab.proxy import Proxy
from nat_lab.world import (
    DESTINATION,
    assert_converged,
    in_service,
    primary_eni,
    replace_instance,
    routes,
    snapshot,
)

MUTATING = {"associate_address", "disable_source_dest_check", "replace_route", "create_route"}


def replay(moto, config_file, tmp_path, event, *flags):
    path = events.write(event, tmp_path)
    return hook.run(moto.env(), "replay", str(path), *flags, config=config_file)


def launch_events(moto, world, kind="launch-successful"):
    out = {}
    for g in world.groups.values():
        [instance] = in_service(moto, g.name)
        out[g.name] = (instance, events.launch(g.name, instance, g.zone, kind))
    return out


def test_verify_fails_then_replays_converge_every_zone_then_verify_passes(world, moto, config_file, tmp_path):
    before = hook.run(moto.env(), "verify", config=config_file)
    assert before.code == 1, before.stdout + before.stderr
    for g in world.groups.values():
        assert routes(moto, g.route_table_ids[0])[DESTINATION]["NetworkInterfaceId"] == g.previous_eni

    for group, (instance, event) in launch_events(moto, world).items():
        run = replay(moto, config_file, tmp_path, event)
        assert run.code == 0, run.stderr
        assert run.result["outcome"] == "applied"
        assert run.result["instance_id"] == instance
        assert run.result["network_interface_id"] == primary_eni(moto, instance)
        assert {a["action"] for a in run.result["actions"]} == {"associate_address", "disable_source_dest_check", "replace_route"}
        assert_converged(moto, world, group)

    after = hook.run(moto.env(), "verify", config=config_file)
    assert after.code == 0, after.stdout + after.stderr
    as_json = hook.run(moto.env(), "verify", "--json", config=config_file)
    assert as_json.code == 0 and '"healthy": true' in as_json.stdout


def test_lambda_path_through_cargo_lambda_watch_and_invoke(world, moto, config_file, tmp_path, logs):
    with hook.LambdaWatch(moto.env(), config_file.read_text(), logs) as function:
        for group, (instance, event) in launch_events(moto, world).items():
            code, result, stderr = function.invoke(events.write(event, tmp_path))
            assert code == 0, stderr
            assert result["outcome"] == "applied" and result["instance_id"] == instance
            assert_converged(moto, world, group)
        # The same function answers a repeat without changing anything.
        group, (instance, event) = next(iter(launch_events(moto, world).items()))
        code, result, stderr = function.invoke(events.write(event, tmp_path))
        assert code == 0 and result["outcome"] == "unchanged" and result["actions"] == [], stderr


def test_second_replay_is_unchanged_and_makes_no_mutating_call(world, moto, config_file, tmp_path):
    group, (instance, event) = next(iter(launch_events(moto, world).items()))
    assert replay(moto, config_file, tmp_path, event).result["outcome"] == "applied"
    before = snapshot(moto, world)
    # The repeat goes through the recording proxy: every request it makes is counted.
    with Proxy(moto.endpoint) as proxy:
        path = events.write(event, tmp_path)
        again = hook.run(proxy.env(moto.env()), "replay", str(path), config=config_file)
        requests = proxy.since()
    assert again.code == 0, again.stderr
    assert again.result["outcome"] == "unchanged"
    assert again.result["actions"] == []
    assert [r.action for r in requests if r.mutating] == []
    # One round: the zones' EIPs and tables, the event's instance, the groups and their instances.
    assert sorted(r.action for r in requests) == [
        "DescribeAddresses",
        "DescribeAutoScalingGroups",
        "DescribeInstances",
        "DescribeInstances",
        "DescribeRouteTables",
    ]
    assert snapshot(moto, world) == before


def test_old_instance_event_after_a_replacement_is_stale_and_moves_nothing_back(world, moto, config_file, tmp_path):
    g = next(iter(world.groups.values()))
    [first] = in_service(moto, g.name)
    first_event = events.launch(g.name, first, g.zone)
    assert replay(moto, config_file, tmp_path, first_event).result["outcome"] == "applied"

    old, new = replace_instance(moto, g.name)
    assert old == first
    assert replay(moto, config_file, tmp_path, events.launch(g.name, new, g.zone)).result["outcome"] == "applied"
    assert_converged(moto, world, g.name)
    before = snapshot(moto, world)

    for kind, outcome in (("launch-successful", "stale"), ("launch-lifecycle-action", "ignored")):
        late = replay(moto, config_file, tmp_path, events.launch(g.name, old, g.zone, kind))
        assert late.code == 0, late.stderr
        assert late.result["outcome"] == outcome, late.result
        assert late.result["actions"] == []
    assert snapshot(moto, world) == before
    assert_converged(moto, world, g.name)


def test_reconcile_heals_a_route_changed_by_hand(world, moto, config_file, tmp_path):
    for _instance, event in launch_events(moto, world).values():
        assert replay(moto, config_file, tmp_path, event).code == 0
    g = next(iter(world.groups.values()))
    table = g.route_table_ids[0]
    moto.client("ec2").replace_route(RouteTableId=table, DestinationCidrBlock=DESTINATION, NetworkInterfaceId=world.unrelated_eni)
    assert hook.run(moto.env(), "verify", config=config_file).code == 1

    dry = hook.run(moto.env(), "reconcile", "--dry-run", config=config_file)
    assert dry.code == 0, dry.stderr
    assert [a["status"] for a in dry.result["actions"]] == ["planned"]
    assert routes(moto, table)[DESTINATION]["NetworkInterfaceId"] == world.unrelated_eni, "dry run changed a route"

    healed = hook.run(moto.env(), "reconcile", config=config_file)
    assert healed.code == 0, healed.stderr
    assert healed.result["outcome"] == "applied"
    assert [(a["action"], a["route_table_id"]) for a in healed.result["actions"]] == [("replace_route", table)]
    assert {r["auto_scaling_group"]: r["outcome"] for r in healed.result["groups"]}[g.name] == "applied"
    for group in world.groups:
        assert_converged(moto, world, group)
    assert hook.run(moto.env(), "verify", config=config_file).code == 0


def test_dry_run_replay_prints_the_plan_and_changes_nothing(world, moto, config_file, tmp_path):
    before = snapshot(moto, world)
    group, (instance, event) = next(iter(launch_events(moto, world).items()))
    run = replay(moto, config_file, tmp_path, event, "--dry-run")
    assert run.code == 0, run.stderr
    assert run.result["dry_run"] is True
    assert {a["status"] for a in run.result["actions"]} == {"planned"}
    assert any(line.startswith("plan: ") for line in run.stdout.splitlines())
    assert snapshot(moto, world) == before


def test_a_deleted_route_is_created(world, moto, config_file, tmp_path):
    g = next(iter(world.groups.values()))
    table = g.route_table_ids[0]
    moto.client("ec2").delete_route(RouteTableId=table, DestinationCidrBlock=DESTINATION)
    [instance] = in_service(moto, g.name)
    run = replay(moto, config_file, tmp_path, events.launch(g.name, instance, g.zone))
    assert run.code == 0, run.stderr
    assert "create_route" in {a["action"] for a in run.result["actions"]}
    assert_converged(moto, world, g.name)


@pytest.mark.parametrize("name", ["unrelated-group.json", "terminate-successful.json"])
def test_unrelated_events_are_ignored(world, moto, config_file, name):
    before = snapshot(moto, world)
    run = hook.run(moto.env(), "replay", str(events.EVENTS / name), config=config_file)
    assert run.code == 0, run.stderr
    assert run.result["outcome"] == "ignored"
    assert snapshot(moto, world) == before


@pytest.mark.parametrize("path", sorted((events.EVENTS / "invalid").glob("*.json")), ids=lambda p: p.name)
def test_invalid_events_exit_non_zero_with_state_untouched(world, moto, config_file, path: Path):
    before = snapshot(moto, world)
    run = hook.run(moto.env(), "replay", str(path), config=config_file)
    assert run.code == 2, (run.code, run.stdout, run.stderr)
    assert "malformed event" in run.stderr or "not a JSON document" in run.stderr, run.stderr
    assert run.stdout == ""
    assert snapshot(moto, world) == before


def test_misconfigured_zone_is_an_error_and_moves_nothing(world, moto, tmp_path):
    config = world.config()
    name = next(iter(config["groups"]))
    config["groups"][name]["availability_zone"] = "us-east-1d"
    path = tmp_path / "wrong-zone.json"
    path.write_text(__import__("json").dumps(config))
    before = snapshot(moto, world)
    [instance] = in_service(moto, name)
    run = replay(moto, path, tmp_path, events.launch(name, instance, "us-east-1a"))
    assert run.code == 1
    assert "ZoneMismatch" in run.stderr and "us-east-1d" in run.stderr
    assert snapshot(moto, world) == before


def test_a_bad_configuration_stops_start_up_with_the_group_and_field(tmp_path, moto):
    path = tmp_path / "bad.json"
    path.write_text(
        '{"groups": {"nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-1", "route_table_ids": ["rtb-11111111"]}}}'
    )
    run = hook.run(moto.env(), "verify", config=path)
    assert run.code == 2
    assert 'group "nat-a": eip_allocation_id' in run.stderr


@pytest.mark.parametrize("timeout", ["0", "901", "18446744073709551615"])
def test_an_out_of_range_timeout_is_refused_before_any_call(world, moto, config_file, timeout):
    before = snapshot(moto, world)
    run = hook.run(moto.env(), "replay", str(events.EVENTS / "launch-successful.json"), "--timeout", timeout, config=config_file)
    assert run.code == 2, (run.code, run.stderr)
    assert "--timeout" in run.stderr and "panicked" not in run.stderr, run.stderr
    assert snapshot(moto, world) == before


def test_replay_takes_lambdas_failure_record_from_the_dead_letter_queue(world, moto, config_file, tmp_path):
    g = next(iter(world.groups.values()))
    [instance] = in_service(moto, g.name)
    record = events.load("dead-letter/on-failure-record.json")
    record["requestPayload"] = events.launch(g.name, instance, g.zone)
    run = hook.run(moto.env(), "replay", str(events.write(record, tmp_path)), config=config_file)
    assert run.code == 0, run.stderr
    assert run.result["outcome"] == "applied" and run.result["instance_id"] == instance
    assert "failure record" in run.stderr
    assert_converged(moto, world, g.name)
