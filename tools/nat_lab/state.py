"""The emulator's state, read into plain values, and the judgements made on it.

One reader for everything that judges the hook by the state it leaves: the tests, the soak, the
benchmarks, the demo and the data-plane lab. It reads boto3 (on moto, never through the proxy) in a
handful of batched calls and returns a `State`: per NAT group (one zone), the instances the group
holds (any lifecycle state) with their primary network interface and its source/dest check, the
zone's Elastic IP and where it is associated, and each private route table's routes (target and
state). The judgements ("this zone is converged on that instance", "whose NAT serves this table")
are written once, here.

    from nat_lab.state import StateReader, read_state

    state = read_state(moto, world)              # once; or StateReader(moto, world).read() repeatedly
    zone = state.zone("nat-us-east-1a")          # by group name, or by availability zone
    zone.owner                                   # the newest InService instance (may own the zone)
    state.owner_eni("us-east-1a")                # its primary ENI
    state.zone_converged("us-east-1a")           # EIP, source/dest check off, every default route on it
    zone.problems(instance_id)                   # why not, in words ([] when converged)
    zone.checks(instance_id)                     # {"eip_on_instance": .., "source_dest_check_off": .., "routes_on_instance": ..}
    state.serving("us-east-1a")                  # {table: group whose NAT its default route targets}

`world` is a `nat_lab.world.World` (seeded, the lab's, or `World.from_config(hook_config)` for a
stack Terraform built): anything with `.groups`, each with `name`, `zone`, `eip_allocation_id`,
`route_table_ids`. The source is anything with `.client(service)`, e.g. a `nat_lab.moto.Moto`.

The data-plane lab follows its emulator's whole-region snapshot (`GET /lab-api/state`, served by
nat_lab.lab.motoserver) after every change; `Snapshot.parse` reads that into typed values too:

    snapshot = Snapshot.parse(emulator.state())
    snapshot.in_service("nat-lab-us-east-1a")    # the group's InService instances
    snapshot.eip_holder(allocation_id)           # the instance its EIP is on
    snapshot.route_tables[table].routes.get(DESTINATION)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .constants import DESTINATION


def primary_eni(instance: dict) -> str | None:
    """The primary network interface (device index 0) of an instance as DescribeInstances returns it."""
    return next(
        (n["NetworkInterfaceId"] for n in instance.get("NetworkInterfaces", []) if n.get("Attachment", {}).get("DeviceIndex", 0) == 0),
        None,
    )


@dataclass(frozen=True)
class Instance:
    id: str
    lifecycle: str | None  # the group's lifecycle state (Pending:Wait, InService, Terminating:Wait, ...); None outside a group
    health: str | None  # the group's health status (Healthy, Unhealthy); None outside a group
    state: str  # EC2's: pending, running, shutting-down, terminated, stopping, stopped
    launched: datetime | None
    eni: str | None  # the primary network interface
    source_dest_check: bool | None  # of that interface (the one routes use), not the instance's copy
    public_ip: str | None
    private_ip: str | None

    @property
    def in_service(self) -> bool:
        return self.lifecycle == "InService"

    @property
    def alive(self) -> bool:
        return self.state in ("pending", "running")


@dataclass(frozen=True)
class Route:
    target: str | None  # the network interface, or the gateway, the route points at
    state: str | None  # active, or blackhole


@dataclass(frozen=True)
class Address:
    allocation_id: str
    public_ip: str | None
    eni: str | None  # the network interface it is associated with, None when unassociated
    association_id: str | None


@dataclass(frozen=True)
class Zone:
    """One NAT group: its zone, its instances, its EIP and its private route tables."""

    group: str
    zone: str
    instances: tuple[Instance, ...]  # every instance the group holds, oldest launch first
    eip: Address
    tables: dict[str, dict[str, Route]]  # route table -> destination CIDR -> route

    @property
    def in_service(self) -> list[Instance]:
        return [i for i in self.instances if i.in_service]

    @property
    def owner(self) -> Instance | None:
        """The instance that may own the zone: the newest the group holds InService."""
        held = self.in_service
        return held[-1] if held else None

    @property
    def owner_eni(self) -> str | None:
        return self.owner.eni if self.owner else None

    def instance(self, instance_id: str) -> Instance:
        found = self._find(instance_id)
        if found is None:
            raise KeyError(f"{self.group} holds no instance {instance_id}: {[i.id for i in self.instances]}")
        return found

    def _find(self, instance_id: str | None) -> Instance | None:
        """The instance by id; with None, the owner."""
        if instance_id is None:
            return self.owner
        return next((i for i in self.instances if i.id == instance_id), None)

    def default_routes(self) -> dict[str, Route | None]:
        return {table: routes.get(DESTINATION) for table, routes in self.tables.items()}

    def checks(self, instance_id: str | None = None) -> dict[str, bool]:
        """Each part of convergence on the instance (by default the owner), on its own; all False
        for an instance the group does not hold."""
        instance = self._find(instance_id)
        eni = instance.eni if instance else None
        return {
            "eip_on_instance": eni is not None and self.eip.eni == eni,
            "source_dest_check_off": eni is not None and instance.source_dest_check is False,
            "routes_on_instance": eni is not None
            and all(r is not None and r.target == eni and r.state == "active" for r in self.default_routes().values()),
        }

    def problems(self, instance_id: str | None = None) -> list[str]:
        """Why the zone is not converged on the instance (by default the owner): the EIP, source/dest
        check off and every default route active on its primary interface. Empty when it is."""
        instance = self._find(instance_id)
        if instance is None:
            which = instance_id or "InService"
            return [f"{self.group} holds no instance {which}: {[(i.id, i.lifecycle) for i in self.instances]}"]
        if not instance.in_service:
            return [f"{self.group}: {instance.id} is {instance.lifecycle}, not InService"]
        eni = instance.eni
        out = []
        if self.eip.eni != eni:
            out.append(f"{self.group}: EIP on {self.eip.eni}, not {eni} ({instance.id})")
        if instance.source_dest_check is not False:
            out.append(f"{self.group}: source/dest check still on for {eni} ({instance.id})")
        for table, route in self.default_routes().items():
            if route is None:
                out.append(f"{table}: no default route, not on {eni}")
            elif route.target != eni:
                out.append(f"{table}: default route on {route.target}, not {eni}")
            elif route.state != "active":
                out.append(f"{table}: default route on {eni} is {route.state}")
        return out

    def converged(self, instance_id: str | None = None) -> bool:
        return not self.problems(instance_id)

    def movable(self) -> dict:
        """What the hook may change, as plain values to compare before and after: the EIP's
        interface, every route of every table, the source/dest check of each InService instance."""
        return {
            "eip_eni": self.eip.eni,
            "routes": {t: {dest: r.target for dest, r in routes.items()} for t, routes in self.tables.items()},
            "sdc": {i.id: i.source_dest_check for i in self.in_service},
        }


@dataclass(frozen=True)
class State:
    zones: dict[str, Zone]  # by group name
    instances: dict[str, Instance] = field(default_factory=dict)  # every instance read: the groups', and route targets' holders
    holders: dict[str, str] = field(default_factory=dict)  # network interface -> the instance it is attached to

    def zone(self, key: str) -> Zone:
        """A zone by its group's name or by its availability zone."""
        if key in self.zones:
            return self.zones[key]
        found = [z for z in self.zones.values() if z.zone == key]
        if len(found) != 1:
            raise KeyError(f"no single group for {key!r}: {sorted(self.zones)}")
        return found[0]

    def owner_eni(self, key: str) -> str | None:
        return self.zone(key).owner_eni

    def zone_converged(self, key: str, instance_id: str | None = None) -> bool:
        return self.zone(key).converged(instance_id)

    def assert_converged(self, key: str, instance_id: str | None = None) -> Instance:
        """Raises AssertionError with the reasons unless the zone is converged; returns the instance."""
        zone = self.zone(key)
        problems = zone.problems(instance_id)
        assert not problems, "; ".join(problems)
        return zone.instance(instance_id) if instance_id else zone.owner

    def holder(self, eni: str | None) -> Instance | None:
        """The instance the interface is attached to, if it was read."""
        instance_id = self.holders.get(eni or "")
        return self.instances.get(instance_id) if instance_id else None

    def group_of(self, eni: str | None) -> str | None:
        """The group whose instance has this primary interface."""
        return next((z.group for z in self.zones.values() for i in z.instances if eni and i.eni == eni), None)

    def serving(self, key: str) -> dict[str, str | None]:
        """Per route table of the zone, the group whose NAT instance its default route targets
        (its own, a sibling's during failover), or None (no route, or not a group's instance)."""
        return {t: self.group_of(r.target if r else None) for t, r in self.zone(key).default_routes().items()}

    def movable(self) -> dict:
        """`Zone.movable` of every zone: compare two to prove nothing moved."""
        return {name: z.movable() for name, z in self.zones.items()}


class StateReader:
    """Reads a `State` for a world, with its boto3 clients made once (the soak reads after every
    invocation). Six calls at most: the groups, their instances, the addresses, the route tables,
    the interfaces, and the instances behind route targets outside the groups."""

    def __init__(self, source, world):
        self.world = world
        self.ec2 = source.client("ec2")
        self.autoscaling = source.client("autoscaling")

    def read(self) -> State:
        groups = self.world.groups
        found = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=sorted(groups))["AutoScalingGroups"]
        held = {g["AutoScalingGroupName"]: {i["InstanceId"]: i for i in g["Instances"]} for g in found}
        raw = self._instances([i for members in held.values() for i in members])

        addresses = {
            a["AllocationId"]: a
            for a in self.ec2.describe_addresses(AllocationIds=[g.eip_allocation_id for g in groups.values()])["Addresses"]
        }
        table_ids = [t for g in groups.values() for t in g.route_table_ids]
        tables = {
            t["RouteTableId"]: {
                r["DestinationCidrBlock"]: Route(r.get("NetworkInterfaceId") or r.get("GatewayId"), r.get("State"))
                for r in t["Routes"]
                if "DestinationCidrBlock" in r
            }
            for t in (self.ec2.describe_route_tables(RouteTableIds=table_ids)["RouteTables"] if table_ids else [])
        }

        enis = {primary_eni(i) for i in raw.values()}
        enis |= {r.target for routes in tables.values() for r in routes.values() if r.target and r.target.startswith("eni-")}
        enis |= {a.get("NetworkInterfaceId") for a in addresses.values()}
        enis.discard(None)
        interfaces = {}
        if enis:
            filters = [{"Name": "network-interface-id", "Values": sorted(enis)}]
            interfaces = {n["NetworkInterfaceId"]: n for n in self.ec2.describe_network_interfaces(Filters=filters)["NetworkInterfaces"]}
        holders = {eni: n["Attachment"]["InstanceId"] for eni, n in interfaces.items() if n.get("Attachment", {}).get("InstanceId")}
        outside = sorted(set(holders.values()) - set(raw))
        raw.update(self._instances(outside))

        membership = {i: m for members in held.values() for i, m in members.items()}
        instances = {}
        for instance_id, r in raw.items():
            eni = primary_eni(r)
            member = membership.get(instance_id, {})
            instances[instance_id] = Instance(
                id=instance_id,
                lifecycle=member.get("LifecycleState"),
                health=member.get("HealthStatus"),
                state=r["State"]["Name"],
                launched=r.get("LaunchTime"),
                eni=eni,
                source_dest_check=interfaces.get(eni, {}).get("SourceDestCheck"),
                public_ip=r.get("PublicIpAddress"),
                private_ip=r.get("PrivateIpAddress"),
            )

        zones = {}
        for name, g in groups.items():
            members = sorted((instances[i] for i in held.get(name, {}) if i in instances), key=_launch_order)
            a = addresses[g.eip_allocation_id]
            zones[name] = Zone(
                group=name,
                zone=g.zone,
                instances=tuple(members),
                eip=Address(g.eip_allocation_id, a.get("PublicIp"), a.get("NetworkInterfaceId") or None, a.get("AssociationId")),
                tables={t: tables[t] for t in g.route_table_ids},
            )
        return State(zones, instances, holders)

    def _instances(self, ids: list[str]) -> dict[str, dict]:
        if not ids:
            return {}
        reservations = self.ec2.describe_instances(InstanceIds=sorted(ids))["Reservations"]
        return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


def _launch_order(instance: Instance) -> tuple[float, str]:
    return (instance.launched.timestamp() if instance.launched else 0.0, instance.id)


def read_state(source, world) -> State:
    """One reading (clients made for it): `StateReader(source, world).read()`."""
    return StateReader(source, world).read()


# --- the lab's emulator: its whole-region snapshot, typed ---------------------------------------


@dataclass(frozen=True)
class SnapshotInstance:
    state: str  # EC2's
    subnet: str | None
    eni: str | None  # the primary network interface
    private_ip: str | None
    source_dest_check: bool  # on the instance or on its primary interface


@dataclass(frozen=True)
class SnapshotInterface:
    instance: str | None  # the instance it is attached to
    private_ip: str | None
    subnet: str | None
    public_ip: str | None  # its EIP's, or the temporary public IP


@dataclass(frozen=True)
class SnapshotRoute:
    gateway: str | None
    eni: str | None
    instance: str | None
    local: bool


@dataclass(frozen=True)
class SnapshotTable:
    vpc: str
    main: bool
    subnets: tuple[str, ...]  # the subnets explicitly associated with it
    routes: dict[str, SnapshotRoute]  # destination CIDR -> route


@dataclass(frozen=True)
class SnapshotMember:
    lifecycle: str  # the group's lifecycle state of the instance
    health: str | None


@dataclass(frozen=True)
class SnapshotGroup:
    desired: int
    max: int
    instances: dict[str, SnapshotMember]


@dataclass(frozen=True)
class LifecycleAction:
    """An open lifecycle action: what the EventBridge stand-in puts in a lifecycle-action event."""

    group: str
    hook: str
    transition: str
    token: str


@dataclass(frozen=True)
class Snapshot:
    """Everything the lab's data plane follows, at one generation of the emulator's change feed."""

    generation: int = -1
    instances: dict[str, SnapshotInstance] = field(default_factory=dict)
    enis: dict[str, SnapshotInterface] = field(default_factory=dict)
    route_tables: dict[str, SnapshotTable] = field(default_factory=dict)
    addresses: dict[str, Address] = field(default_factory=dict)  # by allocation id
    groups: dict[str, SnapshotGroup] = field(default_factory=dict)
    lifecycle_actions: dict[str, LifecycleAction] = field(default_factory=dict)  # by instance
    put_events: tuple[dict, ...] = ()  # every event PutEvents accepted, in order (custom sources)
    launch_failures: tuple[dict, ...] = ()  # every launch a group could not make, in order (Spot short)
    spot_warnings: tuple[dict, ...] = ()  # every Spot interruption warning FIS had EC2 send, in order

    @classmethod
    def parse(cls, raw: dict) -> Snapshot:
        """The emulator's `/lab-api/state` answer (JSON), typed."""
        return cls(
            generation=raw["generation"],
            instances={i: SnapshotInstance(**v) for i, v in raw["instances"].items()},
            enis={i: SnapshotInterface(**v) for i, v in raw["enis"].items()},
            route_tables={
                t: SnapshotTable(v["vpc"], v["main"], tuple(v["subnets"]), {d: SnapshotRoute(**r) for d, r in v["routes"].items()})
                for t, v in raw["route_tables"].items()
            },
            addresses={a: Address(a, v["public_ip"], v["eni"], None) for a, v in raw["addresses"].items()},
            groups={
                g: SnapshotGroup(v["desired"], v["max"], {i: SnapshotMember(**m) for i, m in v["instances"].items()})
                for g, v in raw["groups"].items()
            },
            lifecycle_actions={i: LifecycleAction(**a) for i, a in raw["lifecycle_actions"].items()},
            put_events=tuple(raw.get("put_events", ())),
            launch_failures=tuple(raw.get("launch_failures", ())),
            spot_warnings=tuple(raw.get("spot_warnings", ())),
        )

    def members(self, group: str) -> dict[str, SnapshotMember]:
        """The instances the group holds (none for a group not in the snapshot)."""
        found = self.groups.get(group)
        return found.instances if found else {}

    def lifecycle(self, group: str, instance_id: str) -> str | None:
        member = self.members(group).get(instance_id)
        return member.lifecycle if member else None

    def in_service(self, group: str) -> list[str]:
        return [i for i, m in self.members(group).items() if m.lifecycle == "InService"]

    def group_of(self, instance_id: str) -> str | None:
        """The group that holds the instance, if any does."""
        return next((g for g, v in self.groups.items() if instance_id in v.instances), None)

    def state_of(self, instance_id: str) -> str | None:
        """EC2's state of the instance; None for one the snapshot does not hold."""
        found = self.instances.get(instance_id)
        return found.state if found else None

    def interface(self, eni: str | None) -> SnapshotInterface | None:
        return self.enis.get(eni or "")

    def public_ip(self, instance_id: str) -> str | None:
        """The public address of the instance's primary interface (its EIP's, or its temporary one)."""
        found = self.instances.get(instance_id)
        interface = self.interface(found.eni if found else None)
        return interface.public_ip if interface else None

    def eip_holder(self, allocation_id: str) -> str | None:
        """The instance whose interface the EIP is associated with, or None."""
        address = self.addresses.get(allocation_id)
        interface = self.interface(address.eni if address else None)
        return interface.instance if interface else None

    def default_route(self, table_id: str) -> SnapshotRoute | None:
        table = self.route_tables.get(table_id)
        return table.routes.get(DESTINATION) if table else None
