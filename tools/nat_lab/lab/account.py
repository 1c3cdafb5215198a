"""The lab as the account a trial (`nat_lab.trial`) runs against: per zone an egress probe instance
in the emulator (in the zone's private subnet, as the egress-probe module makes it) whose SSM Run
Command runs in the zone's private host namespace, and the root stack's outputs as
`terraform output -json` would print them. The driver then runs unchanged: its probes are the
lab's private hosts, its acts the emulator's APIs, its measurements the lab's packets."""

from __future__ import annotations

import json
from pathlib import Path

from . import world as lab_world
from .core import Lab

PURPOSE_TAG = "nat-asg-hook:purpose"


def probe_hosts(lab: Lab) -> dict[str, str]:
    """One egress probe instance per zone (made once), registered with the emulator's SSM: zone ->
    instance ID."""
    ec2 = lab.emulator.client("ec2")
    found = {}
    for zone in lab.world.zones.values():
        reservation = ec2.run_instances(
            ImageId=lab_world.AMI,
            InstanceType=lab_world.INSTANCE_TYPE,
            MinCount=1,
            MaxCount=1,
            SubnetId=zone.private_subnet,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": f"nat-lab-egress-probe-{zone.zone}"}, {"Key": PURPOSE_TAG, "Value": "egress-probe"}],
                }
            ],
        )
        found[zone.zone] = reservation["Instances"][0]["InstanceId"]
    lab.emulator.ssm_hosts({instance: host_namespace(lab, zone) for zone, instance in found.items()})
    return found


def host_namespace(lab: Lab, zone: str) -> str:
    return f"{lab.registry.prefix}host-{zone[-1]}"


def outputs(lab: Lab, config: dict, probes: dict[str, str], path: Path) -> Path:
    """The root stack's outputs the trial reads, as `terraform output -json` prints them."""
    zones = lab.world.zones.values()
    values = {
        "hook_config": config,
        "nat_autoscaling_group_names": {z.zone: z.name for z in zones},
        "nat_eip_allocation_ids": {z.zone: z.eip_allocation_id for z in zones},
        "nat_public_ips": {z.zone: z.eip for z in zones},
        "private_route_table_ids": {z.zone: z.route_table_ids[0] for z in zones},
        "egress_probe_instance_ids": probes,
    }
    path.write_text(json.dumps({name: {"sensitive": False, "type": "object", "value": value} for name, value in values.items()}, indent=2))
    return path
