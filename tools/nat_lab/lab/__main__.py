"""`make lab`: every scenario, with failover on and off, plus the baseline without a hook; writes
target/lab/egress.json, the generated blocks of docs/egress.md, and docs/egress/*.png. First, one
steady window compares what each NAT published with what the lab counted (metrics.py): writes
target/lab/metrics.json and docs/egress.md's `metrics` block.

    python -m nat_lab.lab [--short] [--scenarios a,b] [--modes none,on,off] [--event-delay S] ...
    python -m nat_lab.lab --metrics-only     # only the metrics window (and only its block of the docs)

Needs root (network namespaces); exits 2 saying why when the machine cannot run it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .. import REPO
from .. import hook as hook_lab
from . import metrics, netns, report
from .core import Lab, Settings, default_module
from .eventbridge import EventBridge
from .hookwire import Hook
from .scenarios import SCENARIOS, execute, hook_config, settle

SHORT = [("planned-refresh", "on"), ("terminated-by-group", "on")]
MODE_NAMES = {"none": "no hook", "on": "failover on", "off": "failover off"}


def plan_runs(scenarios: list[str], modes: list[str]) -> list[tuple[str, str]]:
    runs = []
    for mode in modes:
        for name in scenarios:
            needs_hook = SCENARIOS[name].needs_hook
            if (mode == "none") != (not needs_hook):
                continue
            runs.append((name, mode))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nat_lab.lab", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help=f"only {', '.join(f'{s} ({m})' for s, m in SHORT)}")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--modes", default="none,on,off", help="none (no hook), on, off (failover)")
    parser.add_argument("--out", type=Path, default=REPO / "target" / "lab")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "egress.md", help="the report; '-' for none")
    parser.add_argument("--module", type=Path, default=None, help="the nat-instance module (default: terraform/modules/nat-instance)")
    parser.add_argument("--probe-rate", type=float, default=Settings.probe_rate)
    parser.add_argument("--event-delay", type=float, default=Settings.event_delay)
    parser.add_argument("--api-latency", type=float, default=Settings.api_latency)
    parser.add_argument("--schedule", type=float, default=Settings.schedule_seconds)
    parser.add_argument(
        "--serve",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="bring the lab up with the hook (failover on), write OUT/lab-state.tsv for "
        "scripts/verify_nat.sh --lab, and keep it up SECONDS (Ctrl-C ends it earlier)",
    )
    parser.add_argument(
        "--metrics-seconds",
        type=float,
        default=65.0,
        help="the metrics window's probing, seconds (over the NATs' 60 s period); 0 skips it",
    )
    parser.add_argument("--metrics-only", action="store_true", help="only the metrics window: no scenario, only the docs' metrics block")
    parser.add_argument("--boot-delay", type=float, default=Settings.boot_delay, help="seconds before an instance's user data runs")
    args = parser.parse_args(argv)

    reason = netns.unavailable()
    if reason:
        print(f"lab: {reason}", file=sys.stderr)
        return 2
    names = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    runs = SHORT if args.short else plan_runs(names, [m for m in args.modes.split(",") if m])
    if args.metrics_only:
        runs = []
    binary = None
    try:
        binary = hook_lab.hook_bin()
    except FileNotFoundError as exc:
        print(f"lab: {exc}: only the runs without a hook", file=sys.stderr)
        runs = [(s, m) for s, m in runs if m == "none"]
    settings = Settings(
        probe_rate=args.probe_rate,
        event_delay=args.event_delay,
        api_latency=args.api_latency,
        schedule_seconds=args.schedule,
        boot_delay=args.boot_delay,
    )
    if args.serve:
        return serve(settings, args, binary)
    started = time.monotonic()
    rows: list[dict] = []
    pictures: dict[tuple[str, str], str] = {}
    docs = None if str(args.docs) == "-" else args.docs
    run_dir = args.out / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    for old in sorted(args.out.glob("run-*"))[:-2]:  # the two last runs' logs and instance files stay
        shutil.rmtree(old, ignore_errors=True)
    failures = 0
    metric_rows: list[dict] = []
    with Lab(run_dir, settings, module=args.module or default_module()) as lab:
        if args.metrics_seconds > 0:
            print(f"lab: metrics, reported against observed ({args.metrics_seconds:.0f} s of probes)", file=sys.stderr)
            metric_rows = metrics.measure(lab, metrics.steady(lab), args.metrics_seconds)
            failures += sum(1 for r in metric_rows if r["asserted"] and not r["within_tolerance"])
        for mode in dict.fromkeys(m for _, m in runs):
            hook = None
            if mode != "none":
                hook = Hook(lab.emulator, hook_config(lab, mode == "on"), run_dir / "logs", settings.api_latency, binary)
            bridge = EventBridge(lab, hook.function if hook else None, settings.event_delay, settings.schedule_seconds)
            bridge.start_schedule()
            try:
                for name, run_mode in runs:
                    if run_mode != mode:
                        continue
                    scenario = SCENARIOS[name]
                    if not settle(lab, bridge):
                        print(f"lab: the world is not whole before {name} ({MODE_NAMES[mode]}); running it anyway", file=sys.stderr)
                    print(f"lab: {name} ({MODE_NAMES[mode]})", file=sys.stderr)
                    run, probes = execute(lab, bridge, scenario, failover=mode == "on", hook=hook is not None)
                    found = report.measure(lab, run, probes, str(binary) if hook else None)
                    rows += found
                    failures += sum(1 for r in found if r["foreign_sources"] or not r["ends_on_own_eip"] and r["hook"])
                    if docs is not None:
                        relative = f"egress/{name}-{mode}.png"
                        report.picture(lab, run, probes, found, docs.parent / relative)
                        pictures[(name, MODE_NAMES[mode])] = relative
            finally:
                bridge.stop()
                if hook is not None:
                    hook.stop()
    elapsed = time.monotonic() - started
    command = (
        "make lab" if not (args.short or args.metrics_only) else f"python -m nat_lab.lab {'--short' if args.short else '--metrics-only'}"
    )
    if metric_rows:
        path = report.write_metrics(metric_rows, args.out, docs, command)
        for r in metric_rows:
            print(
                f"lab: {r['zone']} {r['metric']}: reported {r['reported']}, observed {r['observed']} ({r['difference_percent']} %)",
                file=sys.stderr,
            )
        print(f"lab: metrics in {path}", file=sys.stderr)
    if args.metrics_only:
        return 1 if failures else 0
    path = report.write(rows, args.out, docs, pictures, elapsed, command)
    print(
        f"lab: {len(rows)} results in {path} ({elapsed:.0f} s); {failures} with foreign sources, not back on their own EIP "
        "or metrics not within 5 %",
        file=sys.stderr,
    )
    return 1 if failures else 0


def serve(settings: Settings, args, binary) -> int:
    run_dir = args.out / f"serve-{time.strftime('%Y%m%d-%H%M%S')}"
    with Lab(run_dir, settings, module=args.module or default_module()) as lab:
        hook = Hook(lab.emulator, hook_config(lab, True), run_dir / "logs", settings.api_latency, binary) if binary else None
        bridge = EventBridge(lab, hook.function if hook else None, settings.event_delay, settings.schedule_seconds)
        bridge.start_schedule()
        state_file = args.out / "lab-state.tsv"
        try:
            whole = settle(lab, bridge)
            lab.write_state_file(state_file)
            print(
                f"lab: up ({'every zone on its own NAT' if whole else 'NOT every zone on its own NAT'}); "
                f"scripts/verify_nat.sh --lab {state_file}; namespaces {lab.registry.prefix}*; emulator {lab.emulator.endpoint}",
                file=sys.stderr,
            )
            time.sleep(args.serve)
        except KeyboardInterrupt:
            pass
        finally:
            state_file.unlink(missing_ok=True)
            bridge.stop()
            if hook is not None:
                hook.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
