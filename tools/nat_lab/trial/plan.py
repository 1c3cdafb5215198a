"""What a trial will do, how long it takes and what it costs: printed before anything is touched.

The prices are AWS's public list prices for us-east-1 (December 2026); another region's differ by
a few per cent. The estimate is an upper bound: every replacement is billed as if it took the whole
bound of its run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lab.scenarios import SCENARIOS, Scenario
from .environment import Environment

# Seconds a run takes on a real account, beyond the trial's own lead-in and tail: an instance's
# launch and boot, its self-check and launch hook, the warmup of a refresh (the lab's are seconds).
EXPECTED_SECONDS = {
    "planned-refresh": 420,
    "terminated-by-group": 360,
    "terminated-by-operator": 300,
    "killed": 360,
    "spot-interruption": 300,
}
SETTLE_SECONDS = 60  # between two runs: every zone whole again

USD_PER_HOUR = {  # on-demand Linux, us-east-1
    "t4g.nano": 0.0042,
    "t4g.micro": 0.0084,
    "t4g.small": 0.0168,
    "t4g.medium": 0.0336,
    "t3.nano": 0.0052,
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "c6gn.medium": 0.0432,
    "c7gn.medium": 0.0624,
}
UNKNOWN_TYPE_USD_PER_HOUR = 0.10  # an instance type not in the table: counted high
PUBLIC_IPV4_USD_PER_HOUR = 0.005  # the new NAT's temporary public address
EGRESS_USD_PER_GB = 0.09  # data transfer out to the internet
FIS_USD_PER_ACTION_MINUTE = 0.10
BYTES_OUT_PER_PROBE = 2_000  # an HTTPS request's outbound bytes (TLS handshake, request), rounded up


# What a scenario needs that a real account lacks, as the plan says it.
LACKS = {
    "lab": "the lab's own hands (a NAT's forwarding broken, the emulator's faults, a lost event, a Spot shortage, a drain)",
    "spot-interruption": "a Spot interruption: give a role Fault Injection Service may assume (--fis-role-arn, FIS_ROLE_ARN)",
}


@dataclass
class Plan:
    runs: list[tuple[Scenario, str]]  # (scenario, zone), one zone at a time, in order
    skipped: dict[str, str]  # scenario -> why a real account does not run it
    seconds: float
    usd: float
    lines: list[str]


def portable(offers: frozenset[str]) -> tuple[list[Scenario], dict[str, str]]:
    """The scenarios a backend offering `offers` runs, and why each other one is left out."""
    chosen, skipped = [], {}
    for scenario in SCENARIOS.values():
        if not scenario.needs_hook:
            skipped[scenario.name] = "a baseline without the hook: only the lab removes the hook"
        elif scenario.zones != 1:
            skipped[scenario.name] = "hits more than one zone at once: the trial takes one zone at a time"
        elif not scenario.needs <= offers:
            skipped[scenario.name] = "needs " + "; ".join(LACKS.get(n, n) for n in sorted(scenario.needs - offers))
        else:
            chosen.append(scenario)
    return chosen, skipped


def make(
    env: Environment,
    scenarios: list[Scenario],
    skipped: dict[str, str],
    rate: float,
    lead_in: float,
    tail: float,
    url: str,
    zones: list[str] | None = None,
) -> Plan:
    """The runs: each scenario in each of `zones` (default: every zone), one at a time; every zone
    is probed in every run."""
    runs = [(s, z) for s in scenarios for z in zones or env.zones]
    seconds = sum(lead_in + EXPECTED_SECONDS.get(s.name, 360) + tail + SETTLE_SECONDS for s, _ in runs)
    probing = sum(lead_in + EXPECTED_SECONDS.get(s.name, 360) + tail for s, _ in runs)
    usd, costs = 0.0, []
    extra_hours = sum(EXPECTED_SECONDS.get(s.name, 360) for s, _ in runs) / 3600.0
    prices = [USD_PER_HOUR.get(t, UNKNOWN_TYPE_USD_PER_HOUR) for t in env.instance_types.values()] or [UNKNOWN_TYPE_USD_PER_HOUR]
    instances = extra_hours * max(prices)
    addresses = extra_hours * PUBLIC_IPV4_USD_PER_HOUR
    traffic = probing * rate * len(env.zones) * BYTES_OUT_PER_PROBE / 1e9 * EGRESS_USD_PER_GB
    fis = sum(3 for s, _ in runs if s.name == "spot-interruption") * FIS_USD_PER_ACTION_MINUTE
    for label, amount in (
        ("replacement NAT instances (one per run, billed per second)", instances),
        ("their temporary public IPv4 addresses", addresses),
        (f"probe traffic out ({rate:g} requests/s per zone while probing)", traffic),
        ("Fault Injection Service (Spot interruptions)", fis),
    ):
        if amount:
            costs.append(f"    {label}: {amount:.4f} USD")
        usd += amount
    types = ", ".join(f"{z}: {t or '?'}" for z, t in env.instance_types.items())
    lines = [
        f"aws-trial: account {env.account}, region {env.region}, zones {', '.join(env.zones)} (NATs {types})",
        f"  failover in the hook's configuration: {'on' if env.failover else 'off'}",
        "  runs, one zone at a time (every zone whole again before the next):",
        *[f"    {i + 1:2}. {s.name} in {z} ({env.group(z)}): {s.title}" for i, (s, z) in enumerate(runs)],
        "  left out:",
        *[f"    {name}: {why}" for name, why in skipped.items()],
        "  what it touches:",
        *[f"    {z}: NAT group {env.group(z)} and its instances (replaced once per run); probe {env.probes[z]}" for z in env.zones],
        f"    each probe runs SSM Run Command {len(runs) * 3}x or more: a prober at {rate:g}/s to {url}, a stop, the collection",
        f"  how long: about {seconds / 60:.0f} minutes (real launches and boots; each run ends earlier when its zone is whole)",
        f"  what it costs: at most about {usd:.2f} USD (list prices, us-east-1):",
        *costs,
        "    SSM Run Command, EventBridge, the hook's Lambda invocations and logs: no charge or under a cent",
        "  it leaves: every zone on a new NAT of its own group, with its EIP; nothing else changed",
    ]
    return Plan(runs, skipped, seconds, usd, lines)
