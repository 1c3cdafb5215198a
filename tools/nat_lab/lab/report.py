"""What the probes measured, per run and zone, and the report: target/lab/egress.json, the generated
blocks of docs/egress.md (nat_lab.markdown; its prose is edited by hand) and a timeline picture per
run (docs/egress/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .. import markdown
from .streams import survivors
from .traffic import Probe


def longest_outage(probes: list[Probe], rate: float) -> tuple[float, bool, float | None]:
    """The longest run of consecutive failed probes (by start time), in ms: from the first failed
    probe's start to the next successful probe's start; a run that lasts to the end counts until
    one probe interval after the last probe. Returns (ms, whether it lasted to the end, its start)."""
    ordered = sorted(probes, key=lambda p: p.start)
    longest, open_ended, at = 0.0, False, None
    run_start = None
    for probe in ordered:
        if not probe.ok:
            if run_start is None:
                run_start = probe.start
            continue
        if run_start is not None:
            if probe.start - run_start > longest:
                longest, open_ended, at = probe.start - run_start, False, run_start
            run_start = None
    if run_start is not None and ordered:
        end = ordered[-1].start + 1.0 / rate
        if end - run_start > longest:
            longest, open_ended, at = end - run_start, True, run_start
    return round(longest * 1000.0), open_ended, at


METRIC_NAMESPACE = "NatAsgHook"  # the nat-instance module's default metric_namespace
OUTSIDE_METRIC = "CheckEndpointsUnreachable"


def outside_trouble(lab, run) -> tuple[dict[str, int | None], int]:
    """What the NATs published during the run (the emulator's CloudWatch): per zone the highest
    CheckEndpointsUnreachable (1: no check endpoint answered; None: nothing published), and the
    most zones that reported 1 in one minute: what the fleet alarm (modules/nat-asg-hook,
    `outside_trouble`, 2 zones or more) evaluates."""
    end = datetime.now(UTC)
    start = end - timedelta(seconds=lab.clock() - run.started + 60)
    cloudwatch = lab.emulator.client("cloudwatch")
    per_zone: dict[str, int | None] = {}
    per_minute: dict[datetime, int] = {}  # minute -> zones that reported 1 in it
    for zone in lab.world.zones.values():
        try:
            points = cloudwatch.get_metric_statistics(
                Namespace=METRIC_NAMESPACE,
                MetricName=OUTSIDE_METRIC,
                Dimensions=[{"Name": "AutoScalingGroupName", "Value": zone.name}],
                StartTime=start,
                EndTime=end + timedelta(seconds=60),
                Period=1,  # every datapoint (the emulator starts its periods at the first one): minutes below
                Statistics=["Maximum"],
            )["Datapoints"]
        except Exception:  # noqa: BLE001 (a report never fails on a read; None says nothing was read)
            points = []
        per_zone[zone.zone] = int(max(p["Maximum"] for p in points)) if points else None
        minutes = {p["Timestamp"].replace(second=0, microsecond=0) for p in points if p["Maximum"] >= 1}
        for minute in minutes:  # CloudWatch's periods of 60 s start on the minute
            per_minute[minute] = per_minute.get(minute, 0) + 1
    return per_zone, max(per_minute.values(), default=0)


def replaced(lab, run, zone: str) -> int:
    """The zone's NAT instances that stopped running during the run (an abandoned launch, which
    never served, is not a replacement)."""
    return sum(1 for c in lab.timeline.since(run.started) if c.kind == "gone" and c.zone == zone and c.detail not in run.abandoned)


def egress(probes: list[Probe], rate: float, own_eip: str, all_eips: set[str], acted: float) -> dict:
    """What one zone's probes measured, wherever they ran (the lab's namespaces, a real account's
    probe instances): the row fields both reports share."""
    ok = [p for p in probes if p.ok]
    sources = sorted({p.source for p in ok})
    outage_ms, open_ended, outage_at = longest_outage(probes, rate)
    final = sorted(probes, key=lambda p: p.start)[-max(1, int(rate)) :]  # the last second (at least the last probe)
    return {
        "probes": len(probes),
        "failed": len(probes) - len(ok),
        "outage_ms": outage_ms,
        "outage_open": open_ended,
        "outage_starts_s": None if outage_at is None else round(outage_at - acted, 3),
        "sources": sources,
        "eips": [own_eip] + sorted(x for x in sources if x in all_eips and x != own_eip),
        "foreign_sources": sum(1 for p in ok if p.source not in all_eips),
        "failed_over_probes": sum(1 for p in ok if p.source in all_eips and p.source != own_eip),
        "ends_on_own_eip": bool(final) and all(p.ok and p.source == own_eip for p in final),
    }


def measure(lab, run, probes: dict[str, list[Probe]], hook_binary: str | None) -> list[dict]:
    """One object per zone of the run (the zones it hit first)."""
    s = lab.settings
    outside, outside_zones = outside_trouble(lab, run)
    all_eips = {z.eip for z in lab.world.zones.values()}
    deliveries = run.bridge.since(run.started) if run.bridge is not None else []
    changes = lab.timeline.since(run.started)
    rows = []
    zones = run.zones + [z for z in lab.world.zones if z not in run.zones]
    for zone_name in zones:
        zone = lab.world.zones[zone_name]
        routed_to = [c.detail for c in changes if c.kind == "route" and c.zone == zone_name and c.at >= run.acted]
        eip_to = [c.detail for c in changes if c.kind == "eip" and c.zone == zone_name and c.at >= run.acted]
        rows.append(
            {
                "scenario": run.scenario.name,
                "title": run.scenario.title,
                "failover": run.failover,
                "hook": run.hook,
                "zone": zone_name,
                "hit": zone_name in run.zones,
                **egress(probes.get(zone_name, []), s.probe_rate, zone.eip, all_eips, run.acted),
                "replaced": replaced(lab, run, zone_name),
                # Long-lived connections: per kind [survived, total] (nat_lab.lab.streams).
                "connections": survivors(lab.streams.get(zone_name, []), lab.stream_service, zone.eip, lab.streams_ended)
                if lab.stream_service is not None
                else {},
                "outside_trouble": outside.get(zone_name),
                "outside_trouble_zones": outside_zones,
                "outside_alarm": outside_zones >= 2,
                "moved_to_abandoned": sorted(i for i in run.abandoned if i in routed_to or i in eip_to),
                "abandoned": sorted(run.abandoned),
                "seen": run.seen if zone_name in run.zones else {},
                "events": [
                    {
                        "kind": d.kind,
                        "instance": d.instance,
                        "observed_s": round(d.observed - run.acted, 3),
                        "delivered_s": round(d.sent - run.acted, 3) if d.sent else None,
                        "done_s": round(d.done - run.acted, 3) if d.done else None,
                        "outcome": d.outcome,
                        "actions": [a.get("action", "?") for a in (d.result or {}).get("actions", []) if isinstance(a, dict)],
                    }
                    for d in deliveries
                    if d.zone in ("", zone_name)
                ],
                "notes": list(run.notes),
                "probe_rate": s.probe_rate,
                "event_delay_s": s.event_delay,
                "api_latency_ms": round(s.api_latency * 1000),
                "parameters": parameters(lab, hook_binary),
            }
        )
    return rows


def parameters(lab, hook_binary: str | None) -> dict:
    s = lab.settings
    return {
        "probe_rate_per_s": s.probe_rate,
        "probe_timeout_s": s.probe_timeout,
        "event_delay_s": s.event_delay,
        "api_latency_ms": round(s.api_latency * 1000),
        "schedule_s": s.schedule_seconds,
        "group_health_check_s": s.health_check_seconds,
        "refresh_warmup_s": s.refresh_warmup,
        "spot_notice_s": s.spot_notice,
        "self_check_interval_s": s.self_check_interval_seconds or "module default",
        "unhealthy_after": s.unhealthy_after or "module default",
        "launch_attempts": s.launch_attempts,
        "launch_retry_s": s.launch_retry_seconds,
        "boot_delay_s": s.boot_delay,
        "hook_binary": hook_binary or "none",
    }


# --- the timeline picture ----------------------------------------------------------------------------


def picture(lab, run, probes: dict[str, list[Probe]], rows: list[dict], path: Path) -> None:
    """The lab run's timeline picture (`draw`, with the lab's EIPs and actions)."""
    eips = {z.zone: z.eip for z in lab.world.zones.values()}
    actions = [c.at - run.acted for c in lab.timeline.since(run.started) if c.kind == "action"]
    mode = "no hook" if not run.hook else f"failover {'on' if run.failover else 'off'}"
    draw(probes, rows, path, eips, actions, f"{run.scenario.title} ({mode})", run.acted)


def draw(
    probes: dict[str, list[Probe]], rows: list[dict], path: Path, eips: dict[str, str], actions: list[float], title: str, acted: float
) -> None:
    """One run's timeline: per zone (`rows`' order) each probe by when it started (seconds since the
    act, `acted` on the probes' clock), coloured by the address it left with (`eips`: zone -> its
    EIP); a black line per action (seconds since the act), a dashed one per event the hook received."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    zones = [r["zone"] for r in rows]
    eip_zone = {eip: zone for zone, eip in eips.items()}
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.9 * len(zones)))
    colours = {"own": "#2a9d4b", "sibling": "#e9a23b", "failed": "#d62828", "foreign": "#7b2cbf"}
    for y, zone in enumerate(zones):
        own = eips[zone]
        points: dict[str, list[float]] = {k: [] for k in colours}
        for p in probes.get(zone, []):
            kind = "failed" if not p.ok else "own" if p.source == own else "sibling" if p.source in eip_zone else "foreign"
            points[kind].append(p.start - acted)
        for kind, xs in points.items():
            if xs:  # a lost probe is drawn larger, on top: one in a thousand must show
                size, width = (60, 1.6) if kind in ("failed", "foreign") else (9, 1.0)
                ax.scatter(
                    xs,
                    [y] * len(xs),
                    s=size,
                    linewidths=width,
                    marker="|",
                    color=colours[kind],
                    label=kind if y == 0 else None,
                    zorder=3 if kind in ("failed", "foreign") else 2,
                )
    markers = [
        (d["delivered_s"], d["kind"].replace("EC2 Instance ", "").replace(" Notification", ""), d["outcome"])
        for r in rows[:1]
        for d in r.get("events", [])
        if d["delivered_s"] is not None
    ]
    for at, label, outcome in markers:
        ax.axvline(at, color="#457b9d", lw=0.8, ls="--")
        ax.text(at, len(zones) - 0.45, f"{label}: {outcome}", rotation=90, fontsize=6, va="top", ha="right", color="#1d3557")
    for at in actions:
        ax.axvline(at, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=1.2)
    ax.set_yticks(range(len(zones)), [f"{z}\n(EIP {eips[z]})" for z in zones], fontsize=7)
    ax.set_ylim(-0.6, len(zones) - 0.4)
    ax.set_xlabel("seconds since the act (black line); dashed: the hook receives an event")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower left", fontsize=7, ncol=4, title="probe: left with", title_fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the documents -----------------------------------------------------------------------------------

TITLE = "Egress through a NAT replacement: the data-plane lab"
RESULTS = (
    "scenario",
    "failover",
    "zone",
    "hit",
    "probes",
    "failed",
    "outage_ms",
    "failed over",
    "foreign",
    "replaced",
    "long-lived kept (client-led, server-led)",
    "sources",
    "ends on own EIP",
)


def _kept(row: dict) -> str:
    """The row's long-lived connections, "survived/total" per kind ("" when none ran)."""
    found = row.get("connections") or {}
    return ", ".join(f"{found[k][0]}/{found[k][1]}" for k in ("client_led", "server_led") if k in found)


def _mode(row: dict) -> str:
    return "no hook" if not row["hook"] else "on" if row["failover"] else "off"


def blocks(rows: list[dict], pictures: dict[tuple[str, str], str], elapsed: float, command: str) -> dict[str, str]:
    """docs/egress.md's generated blocks, by name; the prose around them (how to read the numbers,
    what the lab cannot model) is the document's own."""
    params = rows[0]["parameters"] if rows else {}
    results = []
    for r in rows:
        outage = f"{r['outage_ms']}{' (open)' if r['outage_open'] else ''}"
        results.append(
            (
                r["scenario"],
                _mode(r),
                r["zone"],
                "yes" if r["hit"] else "",
                r["probes"],
                r["failed"],
                outage,
                r["failed_over_probes"],
                r["foreign_sources"],
                r["replaced"],
                _kept(r),
                ", ".join(r["sources"]),
                "yes" if r["ends_on_own_eip"] else "NO",
            )
        )
    timelines = []
    for (scenario, mode), path in pictures.items():
        timelines += [f"### {scenario}, {mode}", "", f"![{scenario} {mode}]({path})", ""]
    return {
        "run": f"Generated by `{command}` ({elapsed:.0f} s on this machine).",
        "parameters": "\n".join(markdown.table(["parameter", "value"], params.items())),
        "results": "\n".join(markdown.table(RESULTS, results)),
        "goals": "\n".join(goals(rows)),
        "timelines": "\n".join(timelines),
    }


def goals(rows: list[dict]) -> list[str]:
    """The issue's goals against what was measured (figures, not assertions)."""
    out = []

    def hit(scenario: str, mode: str) -> list[dict]:
        return [r for r in rows if r["scenario"] == scenario and _mode(r) == mode and r["hit"]]

    refresh = hit("planned-refresh", "on") + hit("planned-refresh", "off")
    if refresh:
        worst = max(r["outage_ms"] for r in refresh)
        out.append(f"- Planned refresh, longest outage <= 250 ms: **{worst} ms** ({'met' if worst <= 250 else 'NOT met'}).")
    for r in hit("terminated-by-group", "off")[:1]:
        out.append(
            f"- terminated-by-group (health replacement, launch before terminate), failover off, <= 250 ms: "
            f"**{r['outage_ms']} ms** ({'met' if r['outage_ms'] <= 250 else 'NOT met'})."
        )
    for mode in ("on", "off"):
        found = [r for r in rows if r["scenario"] == "check-endpoints-unreachable" and _mode(r) == mode]
        if found:
            failed, swapped = sum(r["failed"] for r in found), sum(r["replaced"] for r in found)
            alarm = found[0]["outside_alarm"]
            out.append(
                f"- Check endpoints unreachable 60 s (failover {mode}): failed probes **{failed}**, NATs replaced **{swapped}**, "
                f"zones reporting outside trouble in one minute **{found[0]['outside_trouble_zones']}** (alarm at 2: "
                f"{'raised' if alarm else 'NOT raised'}) ({'met' if failed == 0 and swapped == 0 and alarm else 'NOT met'})."
            )
    for scenario in ("terminated-by-operator", "killed"):
        found = hit(scenario, "on")
        if found and found[0].get("event_delay_s") is None:  # a real account: EventBridge's own delay
            worst = max(r["outage_ms"] for r in found)
            out.append(f"- {scenario}, failover on: **{worst} ms** (the lab's goal is its event delay + 500 ms).")
        elif found:
            delay = found[0]["event_delay_s"] * 1000
            worst = max(r["outage_ms"] for r in found)
            out.append(
                f"- {scenario}, failover on, <= event delay + 500 ms ({delay + 500:.0f} ms): **{worst} ms** "
                f"({'met' if worst <= delay + 500 else 'NOT met'})."
            )
    for r in (r for r in rows if r["scenario"] == "self-check-fails" and r["hit"]):
        moved = ", ".join(r["moved_to_abandoned"]) or "nothing"
        out.append(
            f"- Self-check fails ({_mode(r)}): abandoned {', '.join(r['abandoned']) or 'none'}; "
            f"EIP or routes moved to it: **{moved}** ({'met' if r['abandoned'] and not r['moved_to_abandoned'] else 'NOT met'})."
        )
    for r in hit("drain", "on"):
        steps = r.get("seen") or {}
        moved = all(g not in (None, steps["drain"]["group"]) for g in steps["drain"]["routes_via"].values()) if "drain" in steps else False
        met = r["outage_ms"] == 0 and r["foreign_sources"] == 0 and moved and r["replaced"] == 0 and r["ends_on_own_eip"]
        out.append(
            f"- Drain by hand (failover on), outage 0 ms, 0 foreign sources, its NAT kept: **{r['outage_ms']} ms**, "
            f"**{r['foreign_sources']}** foreign, {r['failed_over_probes']} probes through a sibling's EIP, NATs replaced "
            f"{r['replaced']} ({'met' if met else 'NOT met'})."
        )
    for r in hit("drain", "off"):
        refused = (r.get("seen") or {}).get("drain", {}).get("exit")
        out.append(
            f"- Drain by hand (failover off): refused (exit {refused}), nothing moved; the zone never waits: outage "
            f"**{r['outage_ms']} ms**, {r['failed_over_probes']} probes through a sibling's EIP "
            f"({'met' if refused == 2 and r['failed_over_probes'] == 0 and r['outage_ms'] == 0 else 'NOT met'})."
        )
    for r in (r for r in rows if r["scenario"] == "spot-unavailable" and r["hit"]):
        seen = r.get("seen") or {}
        base = (seen.get("after") or {}).get("on_demand_base_capacity")
        # Failover on, a sibling carries the zone: 0 ms. Off, the warned NAT keeps it until the
        # on-demand one takes it over: a planned cutover, <= 250 ms as a refresh.
        bound = 0 if r["failover"] else 250
        met = r["outage_ms"] <= bound and r["foreign_sources"] == 0 and base == 1 and r["ends_on_own_eip"]
        out.append(
            f"- Spot short ({_mode(r)}), the group falls back to on-demand, outage <= {bound} ms, 0 foreign sources: "
            f"**{r['outage_ms']} ms**, **{r['foreign_sources']}** foreign, {seen.get('launch_failures', 0)} Spot launch(es) "
            f"failed, on-demand base capacity after: {base} ({'met' if met else 'NOT met'})."
        )
    for r in refresh:
        kept = r.get("connections") or {}
        if kept:
            shares = {k: (v[0] / v[1] if v[1] else 1.0) for k, v in kept.items()}
            out.append(
                f"- Planned refresh ({_mode(r)}), established connections kept, >= 95 % of each kind: client-led "
                f"**{kept['client_led'][0]}/{kept['client_led'][1]}**, server-led **{kept['server_led'][0]}/{kept['server_led'][1]}** "
                f"({'met' if min(shares.values()) >= 0.95 else 'NOT met'})."
            )
    foreign = sum(r["foreign_sources"] for r in rows)
    out.append(f"- Foreign sources in every run: **{foreign}** ({'met' if foreign == 0 else 'NOT met'}).")
    waits = [r for r in rows if _mode(r) == "off" and r["hit"]]
    if waits:
        out.append("- Without failover, how long the zone waits for its replacement (lab boot times: a lower bound):")
        out += [f"  - {r['scenario']}: {r['outage_ms']} ms{' (still waiting at the end)' if r['outage_open'] else ''}" for r in waits]
    return out


def metrics_block(rows: list[dict], command: str) -> str:
    """docs/egress.md's `metrics` block: what each NAT published against what the lab counted."""
    if not rows:
        return "Not measured yet: `make lab` measures it."
    first = rows[0]
    lines = [
        f"Generated by `{command}`: one steady window of {first['window_s']:.0f} s "
        f"({first['window_start']} to {first['window_end']}), every zone on its own NAT and EIP, "
        f"{first['probes']} probes per zone.",
        "",
    ]
    table = [
        (
            r["zone"],
            r["metric"],
            r["reported"],
            r["observed"],
            "n/a" if r["difference_percent"] is None else f"{r['difference_percent']:+.2f} %",
            ("yes" if r["within_tolerance"] else "NO") if r["asserted"] else "(not a goal)",
            r["datapoints"],
        )
        for r in rows
    ]
    lines += markdown.table(
        ["zone", "metric", "reported (the NAT)", "observed (the lab)", "difference", "within 5 %", "datapoints"], table, "llrrrlr"
    )
    return "\n".join(lines)


def write_metrics(rows: list[dict], out_dir: Path, docs: Path | None, command: str) -> Path:
    """target/lab/metrics.json and, with `docs`, only its `metrics` block (the other blocks stay)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(rows, indent=2) + "\n")
    if docs is not None:
        current = markdown.blocks(docs.read_text()) if docs.exists() else {}
        markdown.write(docs, TITLE, {**current, "metrics": metrics_block(rows, command)})
    return path


def write(rows: list[dict], out_dir: Path, docs: Path | None, pictures: dict, elapsed: float, command: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "egress.json"
    path.write_text(json.dumps(rows, indent=2) + "\n")
    if docs is not None:
        current = markdown.blocks(docs.read_text()) if docs.exists() else {}
        kept = {"metrics": current["metrics"]} if "metrics" in current else {}  # write_metrics' own
        markdown.write(docs, TITLE, {**kept, **blocks(rows, pictures, elapsed, command)})
    return path
