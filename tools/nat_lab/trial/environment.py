"""The environment a trial runs against, and the checks made before anything is touched.

What it reads is the root stack's `terraform output -json` (in the Terraform directory, or a file
holding it): the NAT groups, EIPs and route tables (`hook_config`), the EIPs' addresses
(`nat_public_ips`) and the egress probes (`egress_probe_instance_ids`). The account and region
are the credentials' own (the usual AWS environment and profile): the checks prove the stack is
there, in that account and region, before the plan is printed.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from ..state import StateReader
from ..world import World
from .probes import TrialError, running


@dataclass
class Environment:
    region: str
    world: World  # the groups, EIP allocations and route tables, from the hook's configuration
    eips: dict[str, str]  # zone -> the EIP's public address
    probes: dict[str, str]  # zone -> its egress probe instance
    failover: bool
    account: str = ""
    instance_types: dict[str, str] = field(default_factory=dict)  # zone -> its NAT's instance type
    warmup: dict[str, int] = field(default_factory=dict)  # zone -> its group's default instance warmup
    spot: dict[str, bool] = field(default_factory=dict)  # zone -> whether its NAT is a Spot instance

    @property
    def zones(self) -> list[str]:
        return list(self.world.zones)

    def group(self, zone: str) -> str:
        return self.world.zones[zone].name


class Account:
    """The AWS APIs with the credentials and region of the environment (AWS_ENDPOINT_URL, when set,
    points them at an emulator: the tests)."""

    def __init__(self, region: str | None):
        self.session = boto3.Session(region_name=region) if region else boto3.Session()
        self._clients: dict[str, object] = {}

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]


def terraform_outputs(tf_dir: Path) -> dict:
    """`terraform output -json` in the root stack's directory."""
    try:
        done = subprocess.run(["terraform", f"-chdir={tf_dir}", "output", "-json"], capture_output=True, text=True, timeout=120)
    except FileNotFoundError as exc:
        raise TrialError("terraform is not installed: give the stack's outputs with --outputs FILE (terraform output -json)") from exc
    if done.returncode != 0:
        raise TrialError(f"terraform output in {tf_dir} failed: {done.stderr.strip()}")
    return json.loads(done.stdout or "{}")


def from_outputs(outputs: dict, region: str) -> Environment:
    """The environment the outputs describe; a TrialError names what is missing."""

    def value(name: str):
        found = outputs.get(name)
        return found.get("value") if isinstance(found, dict) and "value" in found else found

    config = value("hook_config")
    if isinstance(config, str):
        config = json.loads(config)
    if not config or not config.get("groups"):
        raise TrialError("no environment deployed: the outputs have no hook_config with NAT groups (apply the root stack first)")
    world = World.from_config(config)
    eips = value("nat_public_ips") or {}
    probes = value("egress_probe_instance_ids") or {}
    if not probes:
        raise TrialError("the environment has no egress probes: apply it with egress_probe = true (the test environment has it)")
    missing = [z for z in world.zones if z not in eips or z not in probes]
    if missing:
        raise TrialError(f"zones without an EIP address or an egress probe in the outputs: {', '.join(missing)}")
    for zone, group in world.zones.items():
        group.eip = eips[zone]
    return Environment(region, world, dict(eips), {z: probes[z] for z in world.zones}, bool(config.get("failover", True)))


def problems(env: Environment, account: Account) -> list[str]:
    """Everything that stops a trial, found with reads only: credentials, the stack in this account
    and region, the probes managed by SSM, no other trial's probes, every zone whole."""
    try:
        identity = account.client("sts").get_caller_identity()
    except Exception as exc:  # noqa: BLE001 (no credentials is the message)
        return [f"no usable AWS credentials: {exc}"]
    env.account = identity["Account"]
    where = f"account {env.account}, region {env.region}"
    autoscaling, ec2, ssm = account.client("autoscaling"), account.client("ec2"), account.client("ssm")
    names = sorted(g.name for g in env.world.groups.values())
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]
    found = {g["AutoScalingGroupName"]: g for g in groups}
    missing = [n for n in names if n not in found]
    if missing:
        return [
            f"the NAT groups {', '.join(missing)} are not in {where}: "
            "credentials for another account or region, or the environment is not applied"
        ]
    out = []
    try:
        addresses = ec2.describe_addresses(AllocationIds=[g.eip_allocation_id for g in env.world.groups.values()])["Addresses"]
    except Exception as exc:  # noqa: BLE001
        return [f"the zones' EIPs are not in {where}: {exc}"]
    held = {a["AllocationId"]: a.get("PublicIp") for a in addresses}
    for zone, group in env.world.zones.items():
        if held.get(group.eip_allocation_id) != env.eips[zone]:
            out.append(f"{zone}: EIP {group.eip_allocation_id} is {held.get(group.eip_allocation_id)}, the outputs say {env.eips[zone]}")
        env.warmup[zone] = int(found[group.name].get("DefaultInstanceWarmup") or 60)
    managed = {
        i["InstanceId"]: i
        for i in ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": list(env.probes.values())}]).get(
            "InstanceInformationList", []
        )
    }
    for zone, instance in env.probes.items():
        state = managed.get(instance, {}).get("PingStatus")
        if state != "Online":
            out.append(
                f"{zone}: egress probe {instance} is not registered with SSM ({state or 'not managed'}): "
                "its agent must reach SSM through the zone's NAT (docs/aws-trial.md)"
            )
    if not out:
        others = running(ssm, env.probes)
        if others:
            out.append("another trial's probes still run (stop that trial, or wait for them to end): " + "; ".join(others))
    state = StateReader(account, env.world).read()
    for zone in env.zones:
        found_zone = state.zone(zone)
        reasons = found_zone.problems()
        if len(found_zone.instances) != 1:
            reasons.append(f"its group holds {len(found_zone.instances)} instances, not 1 (a replacement or refresh is under way)")
        if reasons:
            out.append(f"{zone} is not healthy before the start: {'; '.join(reasons)}")
        elif found_zone.owner is not None:
            env.instance_types[zone], env.spot[zone] = instance_type(ec2, found_zone.owner.id)
    refreshing = [
        f"{zone} is not healthy before the start: an instance refresh of {group.name} is {found['Status']}"
        for zone, group in env.world.zones.items()
        for found in autoscaling.describe_instance_refreshes(AutoScalingGroupName=group.name, MaxRecords=1).get("InstanceRefreshes", [])
        if found.get("Status") in ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
    ]
    return out + refreshing


def instance_type(ec2, instance_id: str) -> tuple[str, bool]:
    """The instance's type, and whether it is Spot (FIS interrupts only Spot instances)."""
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    found = reservations[0]["Instances"][0] if reservations else {}
    return found.get("InstanceType", ""), found.get("InstanceLifecycle") == "spot"
