"""The lab's NAT world (a `nat_lab.world.World`): the root stack's layout seeded into the lab's
emulator, and each zone's NAT group built from what Terraform plans for the nat-instance module.

The user data is never copied: a scratch root module calls `terraform/modules/nat-instance` once
per zone, `terraform plan` renders it (the module's own `templatefile`, with the lab's check-IP
URL), and the planned launch template (user data, temporary public IP, metadata options) and the
group's lifecycle hooks are what the lab's groups launch from.

Layout, as the root stack builds it: a VPC (10.2.0.0/16, the local environment's), per zone a
public subnet (a /24) routed to the internet gateway and a private subnet (a /20) with its own
route table, whose default route the hook owns (none at first), and a static EIP.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import terraform as tf_lab
from .. import userdata
from ..constants import DESTINATION, REGION, ZONES
from ..moto import Moto
from ..world import Group, World
from .netns import LabError

VPC_CIDR = "10.2.0.0/16"
NAME = "nat-lab"
AMI = "ami-760aaa0f"  # in moto's image catalogue (the local environment's)
INSTANCE_TYPE = "t3.nano"
MODULE = tf_lab.TERRAFORM_DIR / "modules" / "nat-instance"


@dataclass
class Plan:
    """What Terraform planned for one zone's nat-instance module."""

    user_data: str  # the rendered script
    launch_template_data: dict
    hooks: list[dict]
    max_size: int
    maintenance_policy: dict | None = None  # InstanceMaintenancePolicy, as planned


def seed_network(emulator: Moto, zones=ZONES) -> World:
    ec2 = emulator.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_table, DestinationCidrBlock=DESTINATION, GatewayId=igw)
    world = World(vpc, vpc_cidr=VPC_CIDR, internet_gateway=igw, public_table=public_table)
    network = ipaddress.ip_network(VPC_CIDR)
    for i, zone in enumerate(zones):
        public_cidr = str(list(network.subnets(new_prefix=network.prefixlen + 8))[i])
        private_net = list(network.subnets(new_prefix=network.prefixlen + 4))[i + 1]
        public = ec2.create_subnet(VpcId=vpc, CidrBlock=public_cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=public_table, SubnetId=public)
        private = ec2.create_subnet(VpcId=vpc, CidrBlock=str(private_net), AvailabilityZone=zone)["Subnet"]["SubnetId"]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=private)
        # moto draws EIPs from 127.0.0.0/8, which no namespace routes: the lab names them, from
        # TEST-NET-2 (198.51.100.0/24), one per zone.
        address = ec2.allocate_address(Domain="vpc", Address=f"198.51.100.{11 + i}")
        group = Group(
            name=f"{NAME}-{zone}",
            zone=zone,
            eip_allocation_id=address["AllocationId"],
            route_table_ids=[table],
            eip=address["PublicIp"],
            public_subnet=public,
            public_cidr=public_cidr,
            private_subnet=private,
            private_cidr=str(private_net),
            host_ip=str(private_net.network_address + 100),
        )
        world.groups[group.name] = group
    return world


def module_variables(module: Path) -> set[str]:
    return {m.group(1) for tf in module.glob("*.tf") for m in re.finditer(r'^variable\s+"([^"]+)"', tf.read_text(), re.M)}


ROOT = """terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}

provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  endpoints {{
{endpoints}
  }}
}}

variable "zones" {{
  type = any
}}

module "nat" {{
  source   = "{module}"
  for_each = var.zones
{arguments}
}}
"""
SERVICES = ("autoscaling", "ec2", "iam", "kms", "logs", "ssm", "sts", "cloudwatch", "events", "lambda", "sqs")


_PLANS: dict[str, dict[str, Plan]] = {}


def _fingerprint(module: Path, settings: dict[str, object], zones) -> str:
    digest = hashlib.sha256(json.dumps([str(module), settings, list(zones)], sort_keys=True).encode())
    for path in sorted(module.rglob("*")):
        if path.is_file() and ".terraform" not in path.parts:
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def plan_module(emulator: Moto, world: World, workdir: Path, settings: dict[str, object], module: Path | None = None) -> dict[str, Plan]:
    """`terraform plan` of the nat-instance module for every zone; `settings` are module variables
    given when the module declares them (check_ip_urls, self-check timings); unknown ones are left
    out, so the lab runs with whatever the module offers. Nothing the lab reads depends on the
    resources' IDs but the zones' EIPs (a new NAT finds the serving one by its zone's EIP), so a plan
    is made once per module content, settings and EIPs in a process."""
    module = module or MODULE
    key = _fingerprint(module, settings, [(z.zone, z.eip_allocation_id) for z in world.zones.values()])
    if key not in _PLANS:
        _PLANS[key] = _plan(emulator, world, workdir, settings, module)
    return _PLANS[key]


def _plan(emulator: Moto, world: World, workdir: Path, settings: dict[str, object], module: Path) -> dict[str, Plan]:
    declared = module_variables(module)
    if "check_ip_urls" not in declared:
        raise LabError(
            f"{module} has no check_ip_urls variable: the lab runs the module's self-checking user data "
            "(the instance proves itself against check endpoints, here the lab's) and this module has none"
        )
    per_zone = {
        z.zone: {
            "name": z.name,
            "vpc_id": world.vpc_id,
            "vpc_cidr_block": world.vpc_cidr,
            "subnet_id": z.public_subnet,
            "ami_id": AMI,
            "instance_type": INSTANCE_TYPE,
            **({"eip_allocation_id": z.eip_allocation_id} if "eip_allocation_id" in declared else {}),
            **{k: v for k, v in settings.items() if k in declared},
        }
        for z in world.zones.values()
    }
    names = sorted(next(iter(per_zone.values())))
    root = workdir / "nat-lab-plan"
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.tf").write_text(
        ROOT.format(
            region=REGION,
            endpoints="\n".join(f'    {s} = "{emulator.endpoint}"' for s in SERVICES),
            module=module,
            arguments="\n".join(f"  {n} = each.value.{n}" for n in names),
        )
    )
    (root / "terraform.tfvars.json").write_text(json.dumps({"zones": per_zone}))
    tf = tf_lab.Terraform(root, emulator.env())
    tf.init()
    tf.run("plan", "-input=false", "-no-color", "-out=lab.tfplan")
    planned = json.loads(tf.run("show", "-json", "lab.tfplan").stdout)
    plans = {}
    for zone in world.zones:
        prefix = f'module.nat["{zone}"].'
        after = {
            r["address"][len(prefix) :]: r["change"]["after"]
            for r in planned["resource_changes"]
            if r["address"].startswith(prefix) and r.get("change", {}).get("after") is not None
        }
        template = after["aws_launch_template.this"]
        group = after["aws_autoscaling_group.this"]
        plans[zone] = Plan(
            user_data=userdata.decode(template["user_data"]),
            launch_template_data=_launch_template_data(template),
            hooks=[
                {
                    "LifecycleHookName": h["name"],
                    "LifecycleTransition": h["lifecycle_transition"],
                    "HeartbeatTimeout": int(h.get("heartbeat_timeout") or 3600),
                    "DefaultResult": h.get("default_result") or "ABANDON",
                }
                for h in group.get("initial_lifecycle_hook") or []
            ],
            max_size=int(group.get("max_size") or 1),
            maintenance_policy=next(
                (
                    {"MinHealthyPercentage": int(p["min_healthy_percentage"]), "MaxHealthyPercentage": int(p["max_healthy_percentage"])}
                    for p in group.get("instance_maintenance_policy") or []
                ),
                None,
            ),
        )
    return plans


def _launch_template_data(planned: dict) -> dict:
    interfaces = planned.get("network_interfaces") or [{}]
    public = str(interfaces[0].get("associate_public_ip_address") or "false").lower() == "true"
    metadata = (planned.get("metadata_options") or [{}])[0]
    return {
        "ImageId": planned.get("image_id") or AMI,
        "InstanceType": planned.get("instance_type") or INSTANCE_TYPE,
        "NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": public, "DeleteOnTermination": True}],
        "MetadataOptions": {
            "HttpEndpoint": metadata.get("http_endpoint") or "enabled",
            "HttpTokens": metadata.get("http_tokens") or "required",
            "HttpPutResponseHopLimit": int(metadata.get("http_put_response_hop_limit") or 1),
        },
    }


def launch_groups(emulator: Moto, world: World, plans: dict[str, Plan], user_data: dict[str, str] | None = None) -> None:
    """Per zone, the launch template and the group as planned (hooks in place before the first
    launch, as `initial_lifecycle_hook` does), then one instance each. `user_data` replaces a zone's
    rendered script (the broken variants a test feeds the lab)."""
    ec2 = emulator.client("ec2")
    autoscaling = emulator.client("autoscaling")
    for zone in world.zones.values():
        plan = plans[zone.zone]
        script = (user_data or {}).get(zone.zone, plan.user_data)
        data = dict(plan.launch_template_data, UserData=base64.b64encode(script.encode()).decode())
        zone.launch_template = ec2.create_launch_template(LaunchTemplateName=zone.name, LaunchTemplateData=data)["LaunchTemplate"][
            "LaunchTemplateId"
        ]
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=zone.name,
            MinSize=0,
            MaxSize=max(plan.max_size, 2),  # launch before terminate: the refresh runs two at once
            DesiredCapacity=0,
            LaunchTemplate={"LaunchTemplateId": zone.launch_template, "Version": "$Latest"},
            VPCZoneIdentifier=zone.public_subnet,
            **({"InstanceMaintenancePolicy": plan.maintenance_policy} if plan.maintenance_policy else {}),
        )
        for hook in plan.hooks:
            autoscaling.put_lifecycle_hook(AutoScalingGroupName=zone.name, **hook)
    for zone in world.zones.values():
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=zone.name, MinSize=1, DesiredCapacity=1)
