"""What a trial will do, how long it takes and what it costs: printed before anything is touched.

The prices are AWS's public list prices for us-east-1 (December 2026); another region's differ by
a few per cent. Two estimates: the expected (each replacement as long as a real one takes), and the
worst (every run lasting its whole bound).
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
BYTES_OUT_PER_PROBE = 2_000  # an HTTPS request's outbound bytes (TLS handshake, request), rounded up; HTTP's are fewer


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
    bound: float = 900.0,
    settle: float = 900.0,
) -> Plan:
    """The runs: each scenario in each of `zones` (default: every zone), one at a time; every zone
    is probed in every run. How long and what it costs, expected (a real replacement's time) and at
    worst (every run lasting its bound, every settle its own)."""
    runs = []
    for scenario in scenarios:
        for zone in zones or env.zones:
            if scenario.name == "spot-interruption" and not env.spot.get(zone):
                skipped[f"{scenario.name} in {zone}"] = "its NAT is on-demand: FIS interrupts only Spot instances"
                continue
            runs.append((scenario, zone))
    prices = [USD_PER_HOUR.get(t, UNKNOWN_TYPE_USD_PER_HOUR) for t in env.instance_types.values()] or [UNKNOWN_TYPE_USD_PER_HOUR]

    def estimate(replacement: dict[str, float], between: float) -> tuple[float, dict[str, float]]:
        """Seconds, and USD by item, when a run's replacement takes `replacement[scenario]` s and
        every zone is whole again `between` s later."""
        waits = [replacement[s.name] for s, _ in runs]
        probing = sum(lead_in + wait + tail for wait in waits)
        extra_hours = sum(waits) / 3600.0
        spot_runs = sum(1 for s, _ in runs if s.name == "spot-interruption")
        gigabytes_out = probing * rate * len(env.zones) * BYTES_OUT_PER_PROBE / 1e9
        return probing + between * len(runs), {
            "replacement NAT instances (one per run, billed per second)": extra_hours * max(prices),
            "their temporary public IPv4 addresses": extra_hours * PUBLIC_IPV4_USD_PER_HOUR,
            f"probe traffic out ({rate:g} requests/s per zone while probing)": gigabytes_out * EGRESS_USD_PER_GB,
            "Fault Injection Service (Spot interruptions, 3 action-minutes each)": spot_runs * 3 * FIS_USD_PER_ACTION_MINUTE,
        }

    names = {s.name for s, _ in runs}
    seconds, expected = estimate({n: min(EXPECTED_SECONDS.get(n, 360), bound) for n in names}, SETTLE_SECONDS)
    worst_seconds, worst = estimate(dict.fromkeys(names, bound), settle)
    usd, worst_usd = sum(expected.values()), sum(worst.values())
    costs = [f"    {label}: {amount:.4f} USD (at worst {worst[label]:.4f})" for label, amount in expected.items() if amount]
    types = ", ".join(f"{z}: {t or '?'}{' (Spot)' if env.spot.get(z) else ''}" for z, t in env.instance_types.items())
    lines = [
        f"aws-trial: account {env.account}, region {env.region}, zones {', '.join(env.zones)} (NATs {types})",
        f"  failover in the hook's configuration: {'on' if env.failover else 'off'}",
        "  runs, one zone at a time (every zone whole again before the next):",
        *[f"    {i + 1:2}. {s.name} in {z} ({env.group(z)}): {s.title}" for i, (s, z) in enumerate(runs)],
        "  left out:",
        *[f"    {name}: {why}" for name, why in skipped.items()],
        "  what it touches:",
        *[f"    {z}: NAT group {env.group(z)} and its instances (replaced once per run); probe {env.probes[z]}" for z in env.zones],
        f"    each probe runs SSM Run Command {len(runs) * 4}x: a prober at {rate:g}/s to {url}, a stop, the collection, the clean-up",
        f"  how long: about {seconds / 60:.0f} minutes with real launches and boots; at worst {worst_seconds / 60:.0f} minutes "
        "(every run waiting its whole bound)",
        f"  what it costs: about {usd:.2f} USD, at worst {worst_usd:.2f} USD (list prices, us-east-1):",
        *costs,
        "    SSM Run Command, EventBridge, the hook's Lambda invocations and logs: no charge or under a cent",
        "  it leaves: every zone on a new NAT of its own group, with its EIP; nothing else changed",
    ]
    return Plan(runs, skipped, seconds, usd, lines)
