"""The state reader that every judgement is made with (nat_lab.state): read against the emulator
after moving things by hand, so that a judge that always says "converged" (or never does) fails
here, before it can make a test of the hook pass or fail for the wrong reason."""

from __future__ import annotations

import pytest

from nat_lab.constants import DESTINATION
from nat_lab.state import Snapshot, read_state
from nat_lab.world import Group, World, assert_converged, replace_instance


def converge_by_hand(moto, world, group: str) -> str:
    """What the hook does for a launch, done with boto3: returns the instance's primary ENI."""
    ec2 = moto.client("ec2")
    g = world.groups[group]
    eni = read_state(moto, world).owner_eni(group)
    ec2.associate_address(AllocationId=g.eip_allocation_id, NetworkInterfaceId=eni, AllowReassociation=True)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    for table in g.route_table_ids:
        ec2.replace_route(RouteTableId=table, DestinationCidrBlock=DESTINATION, NetworkInterfaceId=eni)
    return eni


def test_a_seeded_zone_is_not_converged_and_says_why(world, moto):
    state = read_state(moto, world)
    for name, g in world.groups.items():
        zone = state.zone(name)
        assert zone.zone == g.zone and state.zone(g.zone) is zone
        [owner] = zone.in_service
        assert zone.owner == owner and owner.eni and owner.eni.startswith("eni-") and owner.alive
        assert owner.source_dest_check is True  # EC2's default
        assert zone.eip.eni == g.previous_eni
        assert {t: r.target for t, r in zone.default_routes().items()} == {t: g.previous_eni for t in g.route_table_ids}
        assert not state.zone_converged(name)
        assert zone.checks() == {"eip_on_instance": False, "source_dest_check_off": False, "routes_on_instance": False}
        problems = zone.problems()
        assert len(problems) == 2 + len(g.route_table_ids), problems
        assert state.serving(name) == {t: None for t in g.route_table_ids}  # the previous NAT is no group's instance
        with pytest.raises(AssertionError, match="EIP on"):
            state.assert_converged(name)


def test_each_part_of_convergence_is_judged_on_its_own(fresh_moto):
    from nat_lab.world import seed_world

    moto = fresh_moto
    world = seed_world(moto, zones=("us-east-1a",), tables_per_zone=2)
    [name] = world.groups
    g = world.groups[name]
    ec2 = moto.client("ec2")
    eni = read_state(moto, world).owner_eni(name)

    ec2.associate_address(AllocationId=g.eip_allocation_id, NetworkInterfaceId=eni, AllowReassociation=True)
    assert read_state(moto, world).zone(name).checks() == {
        "eip_on_instance": True,
        "source_dest_check_off": False,
        "routes_on_instance": False,
    }
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    ec2.replace_route(RouteTableId=g.route_table_ids[0], DestinationCidrBlock=DESTINATION, NetworkInterfaceId=eni)
    state = read_state(moto, world)
    assert state.zone(name).checks() == {"eip_on_instance": True, "source_dest_check_off": True, "routes_on_instance": False}
    assert state.zone(name).problems() == [f"{g.route_table_ids[1]}: default route on {g.previous_eni}, not {eni}"]

    ec2.replace_route(RouteTableId=g.route_table_ids[1], DestinationCidrBlock=DESTINATION, NetworkInterfaceId=eni)
    state = read_state(moto, world)
    assert state.zone_converged(name) and state.zone(name).problems() == []
    assert assert_converged(moto, world, name) == state.zone(name).owner.id


def test_a_replaced_instance_leaves_the_zone_on_an_instance_that_is_gone(world, moto):
    name = next(iter(world.groups))
    eni = converge_by_hand(moto, world, name)
    old, new = replace_instance(moto, name)
    state = read_state(moto, world)
    zone = state.zone(name)
    assert zone.owner.id == new and zone.owner_eni != eni
    assert state.holder(eni).id == old and state.holder(eni).state == "terminated"
    assert not zone.converged()
    assert zone.problems(old) == [f"{name} holds no instance {old}: {[(new, 'InService')]}"]
    assert not any(zone.checks(old).values())
    with pytest.raises(KeyError):
        zone.instance(old)
    assert all(group is None for group in state.serving(name).values())  # the old instance is no group's


def test_a_zone_failed_over_is_served_by_its_siblings_nat(world, moto):
    a, b = list(world.groups)[:2]
    sibling_eni = converge_by_hand(moto, world, b)
    converge_by_hand(moto, world, a)
    table = world.groups[a].route_table_ids[0]
    moto.client("ec2").replace_route(RouteTableId=table, DestinationCidrBlock=DESTINATION, NetworkInterfaceId=sibling_eni)
    state = read_state(moto, world)
    assert state.serving(a) == {table: b}
    assert state.group_of(sibling_eni) == b
    assert not state.zone_converged(a) and state.zone_converged(b)
    assert state.zone(a).checks()["routes_on_instance"] is False


def test_movable_is_what_the_hook_may_change_and_nothing_else(world, moto):
    name = next(iter(world.groups))
    before = read_state(moto, world).movable()
    assert read_state(moto, world).movable() == before
    converge_by_hand(moto, world, name)
    after = read_state(moto, world).movable()
    assert after != before
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != name}
    assert set(after[name]) == {"eip_eni", "routes", "sdc"}


def test_the_lab_snapshot_is_read_into_typed_values():
    """The lab's emulator's /lab-api/state answer (the shape nat_lab.lab.motoserver serves), typed:
    the data plane's questions answered by accessors, none by digging in dicts."""
    raw = {
        "generation": 7,
        "instances": {
            "i-new": {"state": "running", "subnet": "subnet-a", "eni": "eni-new", "private_ip": "10.2.0.5", "source_dest_check": False},
            "i-old": {"state": "terminated", "subnet": "subnet-a", "eni": "eni-old", "private_ip": "10.2.0.4", "source_dest_check": True},
        },
        "enis": {
            "eni-new": {"instance": "i-new", "private_ip": "10.2.0.5", "subnet": "subnet-a", "public_ip": "198.51.100.11"},
            "eni-old": {"instance": "i-old", "private_ip": "10.2.0.4", "subnet": "subnet-a", "public_ip": None},
        },
        "subnets": {"subnet-a": {"cidr": "10.2.0.0/24", "zone": "us-east-1a", "vpc": "vpc-1"}},
        "route_tables": {
            "rtb-private": {
                "vpc": "vpc-1",
                "main": False,
                "subnets": ["subnet-p"],
                "routes": {DESTINATION: {"gateway": None, "eni": "eni-new", "instance": None, "local": False}},
            },
            "rtb-empty": {"vpc": "vpc-1", "main": True, "subnets": [], "routes": {}},
        },
        "addresses": {
            "eipalloc-a": {"public_ip": "198.51.100.11", "eni": "eni-new"},
            "eipalloc-b": {"public_ip": "198.51.100.12", "eni": None},
        },
        "groups": {
            "nat-lab-us-east-1a": {
                "desired": 1,
                "max": 2,
                "instances": {
                    "i-old": {"lifecycle": "Terminating:Wait", "health": "Healthy"},
                    "i-new": {"lifecycle": "InService", "health": "Healthy"},
                },
            }
        },
        "lifecycle_actions": {
            "i-old": {
                "group": "nat-lab-us-east-1a",
                "hook": "nat-asg-hook-terminate",
                "transition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "token": "t",
            }
        },
    }
    snapshot = Snapshot.parse(raw)
    group = "nat-lab-us-east-1a"
    assert snapshot.generation == 7
    assert snapshot.in_service(group) == ["i-new"] and snapshot.in_service("nat-lab-us-east-1b") == []
    assert snapshot.lifecycle(group, "i-old") == "Terminating:Wait" and snapshot.lifecycle(group, "i-gone") is None
    assert snapshot.group_of("i-old") == group and snapshot.group_of("i-elsewhere") is None
    assert snapshot.state_of("i-old") == "terminated" and snapshot.state_of("i-elsewhere") is None
    assert snapshot.public_ip("i-new") == "198.51.100.11" and snapshot.public_ip("i-old") is None
    assert snapshot.eip_holder("eipalloc-a") == "i-new" and snapshot.eip_holder("eipalloc-b") is None
    assert snapshot.default_route("rtb-private").eni == "eni-new"
    assert snapshot.default_route("rtb-empty") is None and snapshot.default_route("rtb-unknown") is None
    assert snapshot.route_tables["rtb-private"].subnets == ("subnet-p",)
    assert snapshot.lifecycle_actions["i-old"].hook == "nat-asg-hook-terminate"
    assert Snapshot().generation == -1 and Snapshot().in_service(group) == []


def test_a_lab_world_and_a_seeded_world_are_one_layout():
    """The lab's zones and the emulator tests' groups are the same `Group`: the hook's configuration
    and the state reader see the same names."""
    world = World("vpc-1")
    world.groups["nat-lab-us-east-1a"] = Group(
        "nat-lab-us-east-1a", "us-east-1a", "eipalloc-a", ["rtb-a"], eip="198.51.100.11", public_subnet="subnet-a"
    )
    assert world.zones["us-east-1a"] is world.groups["nat-lab-us-east-1a"]
    config = world.config(failover=False)
    assert config["failover"] is False and "failover" not in world.config()
    assert World.from_config(config).config() == world.config()
