"""The NAT world: one layout for every world the laboratory builds or reads. A zone is one NAT
group (`Group`): its availability zone, its static Elastic IP and its private route tables, and,
where the data-plane lab seeded it (nat_lab.lab.world), its subnets, the EIP's address and the
zone's private host. `World` holds them by group name (`zones`: by availability zone), and renders
the hook's configuration.

`seed_world` seeds one through the AWS SDK for the emulator tests: a VPC, and per zone a public
subnet, a single-instance NAT Auto Scaling group, a static Elastic IP and private route tables, all
still pointing at the previous (dead) NAT's network interface, as right after an instance
replacement. `World.from_config` is the view of a world built elsewhere (Terraform)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import state
from .constants import DESTINATION, ZONES

UNRELATED_CIDR = "172.16.0.0/12"


@dataclass
class Group:
    """One zone's NAT group, and the zone's network around it."""

    name: str  # the Auto Scaling group's name
    zone: str  # its availability zone
    eip_allocation_id: str
    route_table_ids: list[str]  # the zone's private route tables (the hook owns their default route)
    previous_eni: str = ""  # seeded worlds: the dead NAT's interface, where everything points at first
    eip: str = ""  # the EIP's public address
    public_subnet: str = ""
    public_cidr: str = ""
    private_subnet: str = ""
    private_cidr: str = ""
    launch_template: str = ""
    host_ip: str = ""  # the lab: the zone's private host (a probe, not an EC2 instance)


@dataclass
class World:
    vpc_id: str
    groups: dict[str, Group] = field(default_factory=dict)  # by group name
    unrelated_eni: str = ""
    launch_template: str = ""
    vpc_cidr: str = ""
    internet_gateway: str = ""
    public_table: str = ""

    @property
    def zones(self) -> dict[str, Group]:
        """The groups by availability zone (one group per zone), in the order they were made."""
        return {g.zone: g for g in self.groups.values()}

    @classmethod
    def from_config(cls, config: dict) -> World:
        """The world helpers' view of a world built elsewhere (Terraform): its groups, from the
        hook's configuration."""
        groups = {
            name: Group(name, g["availability_zone"], g["eip_allocation_id"], list(g["route_table_ids"]))
            for name, g in config["groups"].items()
        }
        return cls(vpc_id="", groups=groups)

    def config(self, failover: bool | None = None, spot_retry_seconds: int | None = None) -> dict:
        """The hook's configuration for this world; `failover` set only when given (the hook's
        default is on); with `spot_retry_seconds`, the Spot fallback."""
        found = {
            "groups": {
                g.name: {
                    "availability_zone": g.zone,
                    "eip_allocation_id": g.eip_allocation_id,
                    "route_table_ids": list(g.route_table_ids),
                }
                for g in self.groups.values()
            },
            "destination_cidr_block": DESTINATION,
        }
        if failover is not None:
            found["failover"] = failover
        if spot_retry_seconds is not None:
            found["spot_fallback"] = {"retry_spot_after_seconds": spot_retry_seconds}
        return found

    def write_config(self, path: Path) -> Path:
        path.write_text(json.dumps(self.config(), indent=2))
        return path


def seed_world(moto, zones=ZONES, tables_per_zone: int = 1, prefix: str = "nat") -> World:
    ec2 = moto.client("ec2")
    asg = moto.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    world = World(vpc_id=vpc, launch_template=f"{prefix}-lt")
    ec2.create_launch_template(
        LaunchTemplateName=world.launch_template,
        LaunchTemplateData={
            "ImageId": ami,
            "InstanceType": "t4g.nano",
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "nat-asg-hook:managed", "Value": "true"}]}],
        },
    )
    for i, zone in enumerate(zones):
        public = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        if not world.unrelated_eni:
            # A VPN appliance elsewhere: its route lives in every private table and must survive.
            world.unrelated_eni = ec2.create_network_interface(SubnetId=public)["NetworkInterface"]["NetworkInterfaceId"]
        previous_eni = ec2.create_network_interface(SubnetId=public)["NetworkInterface"]["NetworkInterfaceId"]
        address = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=address["AllocationId"], NetworkInterfaceId=previous_eni)
        tables = []
        for t in range(tables_per_zone):
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{100 + i * 50 + t}.0/24", AvailabilityZone=zone)
            table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.create_route(RouteTableId=table, DestinationCidrBlock=DESTINATION, NetworkInterfaceId=previous_eni)
            ec2.create_route(RouteTableId=table, DestinationCidrBlock=UNRELATED_CIDR, NetworkInterfaceId=world.unrelated_eni)
            tables.append(table)
        name = f"{prefix}-{zone}"
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=1,
            MaxSize=1,
            DesiredCapacity=1,
            LaunchTemplate={"LaunchTemplateName": world.launch_template, "Version": "$Latest"},
            VPCZoneIdentifier=public,
        )
        world.groups[name] = Group(name, zone, address["AllocationId"], tables, previous_eni, eip=address["PublicIp"], public_subnet=public)
    return world


# --- reading the emulator's state: what every assertion is made on (judged in nat_lab.state) -------


def in_service(moto, group: str) -> list[str]:
    out = moto.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return [i["InstanceId"] for i in out["AutoScalingGroups"][0]["Instances"] if i["LifecycleState"] == "InService"]


def primary_eni(moto, instance_id: str) -> str:
    reservations = moto.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return state.primary_eni(reservations[0]["Instances"][0])


def eip_eni(moto, allocation_id: str) -> str | None:
    address = moto.client("ec2").describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    return address.get("NetworkInterfaceId") or None


def routes(moto, table_id: str) -> dict[str, dict]:
    table = moto.client("ec2").describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    return {r["DestinationCidrBlock"]: r for r in table["Routes"] if "DestinationCidrBlock" in r}


def snapshot(moto, world: World) -> dict:
    """Everything the hook may change, per group: compare two snapshots to prove nothing moved."""
    return state.read_state(moto, world).movable()


def assert_converged(moto, world: World, group: str, instance: str | None = None) -> str:
    """The group's EIP, source/dest check and every default route are on `instance`, by default the
    one instance the group holds InService; the seeded unrelated route is untouched."""
    zone = state.read_state(moto, world).zone(group)
    if instance is None:
        [instance] = [i.id for i in zone.in_service]
    problems = zone.problems(instance) + unrelated_touched(world, zone)
    assert not problems, "; ".join(problems)
    return instance


def unrelated_touched(world: World, zone: state.Zone) -> list[str]:
    """The seeded world's unrelated route (a VPN appliance's) in each of the zone's tables, where
    it was put: the hook must never touch it."""
    if not world.unrelated_eni:
        return []
    return [
        f"{table}: unrelated route touched: {routes.get(UNRELATED_CIDR)}"
        for table, routes in zone.tables.items()
        if getattr(routes.get(UNRELATED_CIDR), "target", None) != world.unrelated_eni
    ]


def replace_instance(moto, group: str) -> tuple[str, str]:
    """Terminates the group's instance through Auto Scaling; moto launches the replacement at once."""
    [old] = in_service(moto, group)
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=old, ShouldDecrementDesiredCapacity=False)
    [new] = in_service(moto, group)
    assert new != old
    return old, new
