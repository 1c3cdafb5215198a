"""What each NAT published about its traffic (nat-metrics, read back from the emulator's CloudWatch)
against what the lab counted at its internet side, per zone, over one steady window.

The lab counts in the internet namespace, per zone's EIP, with an nftables table of its own:
- bytes and packets: every packet arriving from the EIP (IP length, as nftables counts: the same
  measure as the NAT's forward-chain counter `outbound`, which sees the same packets before the
  masquerade and the gateway's 1:1 NAT, neither of which changes their length);
- new connections: the first packet of each flow from the EIP (a `nat` chain sees only that one, as
  the NAT's `opened` counter, also in a nat chain, does).
Packets to the check endpoints are left out on both sides' terms: they are the NAT's own self-check
(from the instance itself, or from its forwarding probe's link-local address), never forwarded VPC
traffic, which is all the NAT's counters count.

The window: every zone on its own NAT and EIP (no failover moves a zone's traffic), then, with no
probe running, `nat-metrics publish` in each NAT (the same command as its timer, locked against it)
publishes everything counted so far; the probes run `seconds` (longer than the NAT's 60 s period, so
at least one of its timer's runs falls inside), stop and drain, and a last `nat-metrics publish`
flushes the rest. What a NAT published is the Sum of every datapoint between the two flushes
(GetMetricStatistics); what the lab counted is its counters over the same window.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime

from . import netns
from .fabric import CHECK_ADDRESSES
from .instance import run_in

NAMESPACE = "NatAsgHook"  # the nat-instance module's default metric_namespace
TABLE = "nat_lab_count"
TOLERANCE_PERCENT = 5.0
# metric -> the lab's counter; the first two are the (agreement within TOLERANCE_PERCENT).
COMPARED = {"BytesOutToDestination": "bytes", "ConnectionEstablishedCount": "opened", "PacketsOutToDestination": "packets"}
ASSERTED = ("BytesOutToDestination", "ConnectionEstablishedCount")
DRAIN = 2.0  # after the last probe: its connection's closing packets
SETTLE = 1.1  # the emulator stamps a datapoint when it receives it and compares whole seconds


class Counters:
    """The lab's counters in the internet namespace, per zone's EIP."""

    def __init__(self, ns: str, eips: dict[str, str]):
        self.ns = ns
        self.eips = eips
        checks = ", ".join(CHECK_ADDRESSES)
        lines = ["table ip " + TABLE + " {"]
        for i in range(len(eips)):
            lines += [f"  counter out_{i} {{}}", f"  counter new_{i} {{}}"]
        lines += ["  chain out {", "    type filter hook prerouting priority -310; policy accept;"]
        lines += [f'    ip saddr {eip} ip daddr != {{ {checks} }} counter name "out_{i}"' for i, eip in enumerate(eips.values())]
        lines += ["  }", "  chain opened {", "    type nat hook prerouting priority -100; policy accept;"]
        # `ct state new` also turns connection tracking on in this namespace (a nat chain alone does not,
        # and without it no packet reaches one): the flow's first packet, as the NAT's nat chain sees it.
        lines += [
            f'    ip saddr {eip} ip daddr != {{ {checks} }} ct state new counter name "new_{i}"' for i, eip in enumerate(eips.values())
        ]
        lines += ["  }", "}", ""]
        netns.nft(ns, "\n".join(lines))

    def read(self) -> dict[str, dict[str, int]]:
        """Per zone: bytes, packets, opened."""
        found = json.loads(netns.run("ip", "netns", "exec", self.ns, "nft", "-j", "list", "counters", "table", "ip", TABLE).stdout)
        named = {c["counter"]["name"]: c["counter"] for c in found["nftables"] if "counter" in c}
        out = {}
        for i, zone in enumerate(self.eips):
            out[zone] = {
                "bytes": named[f"out_{i}"]["bytes"],
                "packets": named[f"out_{i}"]["packets"],
                "opened": named[f"new_{i}"]["packets"],
            }
        return out

    def close(self) -> None:
        netns.run("ip", "netns", "exec", self.ns, "nft", "delete", "table", "ip", TABLE, check=False)


def publish(lab, nats: dict) -> None:
    """`nat-metrics publish` in each zone's NAT, as its timer runs it."""
    for zone, nat in nats.items():
        proc = run_in(nat, "/usr/local/sbin/nat-metrics", "publish")
        if proc.returncode != 0:
            raise netns.LabError(f"nat-metrics publish in {nat.id} ({zone}) exited {proc.returncode}: {proc.stderr.strip()}")


def reported(lab, group: str, metric: str, start: datetime, end: datetime) -> tuple[float, int]:
    """The Sum of everything the group published of `metric` in [start, end), and how many datapoints."""
    points = (
        lab.emulator.client("cloudwatch")
        .get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric,
            Dimensions=[{"Name": "AutoScalingGroupName", "Value": group}],
            StartTime=start,
            EndTime=end,
            Period=60 * math.ceil((end - start).total_seconds() / 60),
            Statistics=["Sum", "SampleCount"],
        )
        .get("Datapoints", [])
    )
    return sum(p["Sum"] for p in points), int(sum(p["SampleCount"] for p in points))


def measure(lab, nats: dict, seconds: float) -> list[dict]:
    """One steady window (see the module): `nats` is zone -> its own NAT (a lab Instance), every
    zone whole. One object per zone and compared metric."""
    zones = lab.world.zones
    counters = Counters(lab.fabric.inet, {z: zones[z].eip for z in nats})
    try:
        publish(lab, nats)
        time.sleep(SETTLE)
        start = datetime.now(UTC)
        before = counters.read()
        lab.start_probes()
        try:
            time.sleep(seconds)
        finally:
            probes = lab.stop_probes()
        time.sleep(DRAIN)
        after = counters.read()
        publish(lab, nats)
        time.sleep(SETTLE)
        end = datetime.now(UTC)
    finally:
        counters.close()
    window = (end - start).total_seconds()
    rows = []
    for zone, nat in nats.items():
        group = zones[zone].name
        for metric, counter in COMPARED.items():
            observed = after[zone][counter] - before[zone][counter]
            value, datapoints = reported(lab, group, metric, start, end)
            difference = 100.0 * (value - observed) / observed if observed else (0.0 if not value else None)
            rows.append(
                {
                    "zone": zone,
                    "metric": metric,
                    "reported": int(value),
                    "observed": observed,
                    "difference_percent": None if difference is None else round(difference, 3),
                    "within_tolerance": difference is not None and abs(difference) <= TOLERANCE_PERCENT,
                    "asserted": metric in ASSERTED,
                    "datapoints": datapoints,
                    "group": group,
                    "nat": nat.id,
                    "eip": zones[zone].eip,
                    "probes": len(probes.get(zone, [])),
                    "failed_probes": sum(1 for p in probes.get(zone, []) if not p.ok),
                    "window_s": round(window, 1),
                    "window_start": start.isoformat(timespec="seconds"),
                    "window_end": end.isoformat(timespec="seconds"),
                }
            )
    return rows


def steady(lab, timeout: float = 180.0) -> dict:
    """Every zone on its own NAT and EIP (by hand if nothing else did it): zone -> that NAT."""
    from .scenarios import own_nat, settle

    zones = list(lab.world.zones)
    lab.wait(lambda s: all(lab.in_service(z) for z in zones), timeout)
    if not settle(lab, None):
        raise netns.LabError(f"the zones never came up on their own NATs: {lab.timeline.changes[-10:]}")
    return {z: lab.instances.live[own_nat(lab.state, lab, z)] for z in zones}
