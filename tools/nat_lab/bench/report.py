"""docs/benchmarks.md's generated blocks, written from the measurements of `measure`: the machine,
the command, the tables and the figures drawn from them. The prose around them (how the harness
works, what the numbers led to) is the document's own, edited by hand (nat_lab.markdown)."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path

from .. import REPO, markdown


def median(values):
    return statistics.median(values) if values else float("nan")


# --- the document --------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}; "
        f"commit {commit}{' (with uncommitted changes)' if dirty else ''}; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )


TITLE = "nat-asg-hook benchmarks"


def write(path: Path, args, paths: list[dict], cold: dict, sizes: dict, soak_result: dict | None) -> Path:
    return markdown.write(path, TITLE, blocks(args, paths, cold, sizes, soak_result))


def blocks(args, paths: list[dict], cold: dict, sizes: dict, soak_result: dict | None) -> dict[str, str]:
    """Every generated block of docs/benchmarks.md, by name."""
    return {
        "machine": f"Machine: {machine()}.",
        "summary": "\n".join(summary(args, paths, cold, sizes, soak_result)),
        "command": "\n".join(["```sh", args.python_cmd, "```"]),
        "critical-path": "\n".join(critical_path(args, paths)),
        "rounds": "\n".join(rounds(args, paths)),
        "first-event": "\n".join(first_event(paths)),
        "cold-start": "\n".join(cold_start(args, cold)),
        "sizes": "\n".join(markdown.table(["artefact", "bytes", "MB"], [(n, f"{b:,}", f"{b / 1e6:.2f}") for n, b in sizes.items()], "lrr")),
        "soak": "\n".join(soak(soak_result)),
    }


def _worst_rounds(rows: list[dict]) -> str:
    return str(sorted({r["rounds"] for r in rows})[-1])


def summary(args, paths: list[dict], cold: dict, sizes: dict, soak_result: dict | None) -> list[str]:
    latency_ms = args.latency * 1000
    floor = 3 * latency_ms  # a launch: observe, identity, routes
    rust_c, python_c = cold["rust"], cold["python"]
    r_init = median([r["init"] for r in rust_c]) * 1000
    p_init = median([r["init"] for r in python_c]) * 1000
    zip_bytes = next((v for k, v in sizes.items() if k.startswith("Lambda zip")), None)
    rows = [
        (
            "dependent rounds, launch (N = " + ", ".join(str(p["tables"]) for p in paths) + " tables)",
            " / ".join(_worst_rounds(p["launch"]) for p in paths),
        )
    ]
    for label, key in (("terminate action, failover", "failover"), ("unrelated state change", "unrelated")):
        rows.append(
            (
                f"dependent rounds, {label}",
                " / ".join(_worst_rounds(p[key]) for p in paths)
                + f", mutating calls {' / '.join(str(max(r['mutating'] for r in p[key])) for p in paths)}",
            )
        )
    rows.append(
        (
            "dependent rounds, replay of a done event",
            " / ".join(_worst_rounds(p["done"]) for p in paths)
            + f", mutating calls {max(r['mutating'] for p in paths for r in p['done'])}",
        )
    )
    rows.append(
        (
            f"launch handler time vs 3 × {latency_ms:.0f} ms = {floor:.0f} ms",
            ", ".join(f"N={p['tables']}: {median([r['handler_ms'] for r in p['launch']]):.0f} ms" for p in paths),
        )
    )
    rows.append(
        (
            "hook's own time per launch (no request outstanding)",
            ", ".join(f"N={p['tables']}: {median([r['own_ms'] for r in p['launch']]):.1f} ms" for p in paths),
        )
    )
    rows.append(
        (
            "cold start: spawn to first Runtime API poll",
            f"{r_init:.1f} ms; Python + boto3 client pair {p_init:.0f} ms: **{p_init / r_init:.0f}×**",
        )
    )
    rows.append(
        (
            "peak RSS (function after two events)",
            f"{median([r['rss_kib'] for r in rust_c]) / 1024:.1f} MiB "
            f"(boto3 pair idle: {median([r['rss_kib'] for r in python_c]) / 1024:.1f} MiB)",
        )
    )
    if zip_bytes:
        rows.append(("Lambda zip (arm64)", f"{zip_bytes / 1e6:.2f} MB ({zip_bytes:,} bytes)"))
    if soak_result:
        rows.append(
            (
                "fault soak",
                f"{soak_result['events']} events, {sum(soak_result['proxy']['faults'].values())} faults injected, "
                f"{soak_result['errors_reported']} errors reported, false successes {soak_result['false_successes']}, "
                f"stale moves {sum(1 for v in soak_result['violations'] if v.startswith('moved'))}",
            )
        )
    return markdown.table(["", ""], rows)


EVENTS = (
    ("launch (Launch Successful)", "launch"),
    ("replay of a done event", "done"),
    ("terminate action, failover to the sibling", "failover"),
    ("launch, fail back", "failback"),
    ("state change, unrelated instance", "unrelated"),
)


def critical_path(args, paths: list[dict]) -> list[str]:
    latency_ms = args.latency * 1000
    rows = []
    for p in paths:
        for label, key in EVENTS:
            found = p[key]
            if not found:
                continue
            shape = " + ".join(str(n) for n in found[0]["round_sizes"])
            rows.append(
                (
                    p["tables"],
                    label,
                    "/".join(map(str, sorted({r["rounds"] for r in found}))),
                    f"{found[0]['requests']} ({shape})",
                    "/".join(map(str, sorted({r["mutating"] for r in found}))),
                    f"{median([r['handler_ms'] for r in found]):.0f}",
                    f"{found[0]['rounds'] * latency_ms:.0f}",
                    f"{median([r['emulator_ms'] for r in found]):.0f}",
                    f"{median([r['own_ms'] for r in found]):.1f}",
                )
            )
    header = [
        "N tables",
        "event",
        "dependent rounds",
        "requests (per round)",
        "mutating calls",
        "handler ms",
        "floor ms",
        "emulator ms",
        "own ms",
    ]
    return [
        f"{latency_ms:.0f} ms per request; medians over {args.reps} events per row; floor = rounds × {latency_ms:.0f} ms.",
        "",
        *markdown.table(header, rows, "rlrlrrrrr"),
    ]


def rounds(args, paths: list[dict]) -> list[str]:
    """What each round of the first N's events holds, and the launch against its floor."""
    floor = 3 * args.latency * 1000
    p1 = paths[0]
    out = []
    for label, key in (
        ("launch", "launch"),
        ("done", "done"),
        ("failover", "failover"),
        ("fail back", "failback"),
        ("unrelated state change", "unrelated"),
    ):
        row = p1[key][0]
        if row:
            out.append(f"- {label}: " + " → ".join("{" + ", ".join(r) + "}" for r in row["shape"]))
    out += [
        "",
        f"**Launch: {'/'.join(str(p['launch'][0]['rounds']) for p in paths)} dependent rounds for N = "
        f"{', '.join(str(p['tables']) for p in paths)}** (observe, identity, routes: each one concurrent round whatever N);",
        f"handler time against 3 × latency = {floor:.0f} ms: "
        + ", ".join(
            f"N={p['tables']}: {median([r['handler_ms'] for r in p['launch']]):.0f} ms "
            f"({median([r['handler_ms'] for r in p['launch']]) / floor:.2f}×)"
            for p in paths
        )
        + ".",
    ]
    return out


def first_event(paths: list[dict]) -> list[str]:
    header = [
        "N tables",
        "first event after init: handler ms",
        "its own ms",
        "rounds",
        "`replay`: process wall ms",
        "its handler ms",
        "function peak RSS MiB",
    ]
    rows = [
        (
            p["tables"],
            p["first"]["handler_ms"],
            f"{p['first']['own_ms']:.1f}",
            p["first"]["rounds"],
            f"{median([r['seconds'] for r in p['replay']]) * 1000:.0f}",
            f"{median([r['handler_ms'] for r in p['replay']]):.0f}",
            f"{p['rss_kib'] / 1024:.1f}",
        )
        for p in paths
    ]
    return markdown.table(header, rows, "rrrrrrr")


def cold_start(args, cold: dict) -> list[str]:
    rust, python = cold["rust"], cold["python"]
    r_init = median([r["init"] for r in rust])
    p_init = median([r["init"] for r in python])

    def rng(values, scale=1000, fmt="{:.0f}"):
        return f"{fmt.format(median(values) * scale)} ({fmt.format(min(values) * scale)}-{fmt.format(max(values) * scale)})"

    header = ["", "init ms", "first event: invoke ms", "its own ms", "second event (done): invoke ms", "its own ms", "peak RSS MiB"]
    rows = [
        (
            "nat-asg-hook (release, host)",
            rng([r["init"] for r in rust], fmt="{:.1f}"),
            rng([r["first"] for r in rust]),
            f"{median([r['first_own_ms'] for r in rust]):.1f}",
            rng([r["second"] for r in rust]),
            f"{median([r['second_own_ms'] for r in rust]):.1f}",
            rng([r["rss_kib"] for r in rust], 1 / 1024, "{:.1f}"),
        ),
        (
            "Python + boto3 client pair",
            rng([r["init"] for r in python], fmt="{:.1f}"),
            "-",
            "-",
            "-",
            "-",
            rng([r["rss_kib"] for r in python], 1 / 1024, "{:.1f}"),
        ),
    ]
    return [
        f"{len(rust)} runs each; the hook's first event is a launch with one route table at {args.latency * 1000:.0f} ms per request.",
        "",
        *markdown.table(header, rows, "lrrrrrr"),
        "",
        f"**Init: {r_init * 1000:.1f} ms against {p_init * 1000:.0f} ms for boto3: {p_init / r_init:.0f}× faster.** "
        f"Peak RSS {median([r['rss_kib'] for r in rust]) / 1024:.1f} MiB after two events, against "
        f"{median([r['rss_kib'] for r in python]) / 1024:.1f} MiB for the idle boto3 pair. "
        f"AWS requests the hook made during init: {max(r['init_requests'] for r in rust)}.",
    ]


def soak(s: dict | None) -> list[str]:
    if not s:
        return ["Not run (`--no-soak`)."]
    p = s["proxy"]
    header = [
        "events",
        "invocations",
        "faults injected",
        "of them after the write was forwarded",
        "SDK retries seen",
        "errors reported (exit 1)",
        "redeliveries",
        "outcomes",
        "false successes",
        "stale moves",
    ]
    faults = ", ".join(f"{k} {v}" for k, v in p["faults"].items())
    row = (
        s["events"],
        s["invocations"],
        f"{sum(p['faults'].values())} ({faults})",
        p["faults_after_forwarding"],
        p["sdk_retries"],
        s["errors_reported"],
        s["redeliveries"],
        ", ".join(f"{k} {v}" for k, v in sorted(s["outcomes"].items())),
        s["false_successes"],
        sum(1 for v in s["violations"] if v.startswith("moved")),
    )
    return [
        f"Seed {s['seed']}: {s['events']} events over 3 zones ({', '.join(f'{k} {v}' for k, v in sorted(s['labels'].items()))}), "
        f"every request through the proxy at a {s['fault_rate']:.0%} fault rate.",
        "",
        *markdown.table(header, [row], "rrlrrrrlrr"),
        "",
        f"Outages: {s['outages']}; events never delivered successfully: {s['undelivered']}; final reconcile "
        f"succeeded at attempt {s['final_reconcile_attempts']} and left every group on its current instance; "
        f"{s['seconds']:.0f} s in all.",
    ]
