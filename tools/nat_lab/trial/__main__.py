"""`make aws-trial`: the lab's scenarios against a deployed environment, measured by its egress
probes; writes target/aws-trial/egress.json, egress.md and egress/*.png.

    python -m nat_lab.trial [--tf-dir terraform | --outputs FILE] [--scenarios a,b] [--zones a,b] [--yes]

Prints the plan (runs, what it touches, how long, what it costs) and does nothing more unless
confirmed: --yes, CONFIRM=1, or "yes" typed at the prompt. Exit status: 0 done, every zone back on
its own EIP (or only the plan printed); 1 a run found foreign sources or a zone not back on its own
EIP; 2 refused before anything was touched (bad input, the environment not ready); 3 the trial
stopped part-way (interrupted, or a zone did not come back); the report holds the runs done.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from .. import REPO, markdown
from ..lab import report
from ..lab.scenarios import SCENARIOS
from . import plan as planning
from .environment import Account, from_outputs, problems, terraform_outputs
from .probes import TrialError
from .run import Settings, Trial, offers

TITLE = "Egress through a NAT replacement: a real account"


def arguments(argv):
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m nat_lab.trial", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--tf-dir", type=Path, default=REPO / "terraform", help="the applied root stack (terraform output -json)")
    where.add_argument("--outputs", type=Path, help="a file holding the root stack's `terraform output -json`")
    parser.add_argument("--region", default=None, help="default: the credentials' region (AWS_REGION, the profile)")
    parser.add_argument("--scenarios", default="", help="default: every scenario a real account can run")
    parser.add_argument("--zones", default="", help="the zones to act on (default: every zone); every zone is probed")
    parser.add_argument("--out", type=Path, default=REPO / "target" / "aws-trial")
    parser.add_argument("--check-ip-url", default=defaults.url, help="answers with the caller's address (plain text)")
    parser.add_argument("--probe-rate", type=float, default=defaults.rate, help="requests per second per zone (the lab's)")
    parser.add_argument("--probe-timeout", type=float, default=defaults.timeout)
    parser.add_argument("--lead-in", type=float, default=defaults.lead_in, help="seconds of probes before each act")
    parser.add_argument("--tail", type=float, default=defaults.tail, help="seconds of probes after the zone is whole")
    parser.add_argument("--bound", type=float, default=defaults.bound, help="the longest a run waits for its zone, seconds")
    parser.add_argument("--settle", type=float, default=defaults.settle, help="the longest the trial waits for every zone between runs")
    parser.add_argument("--refresh-warmup", type=float, default=None, help="an instance refresh's warmup (default: the group's)")
    parser.add_argument(
        "--fis-role-arn",
        default=os.environ.get("FIS_ROLE_ARN", ""),
        help="a role AWS Fault Injection Service assumes to interrupt a Spot NAT: runs spot-interruption",
    )
    parser.add_argument("--yes", action="store_true", default=os.environ.get("CONFIRM") == "1", help="run without asking (CONFIRM=1)")
    return parser.parse_args(argv)


def confirmed(args) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("aws-trial: nothing done: run it with CONFIRM=1 (make aws-trial CONFIRM=1) or --yes", flush=True)
        return False
    answer = input("aws-trial: run it? Type yes: ").strip().lower()
    if answer != "yes":
        print("aws-trial: nothing done", flush=True)
    return answer == "yes"


def write(trial: Trial, elapsed: float, ended: str) -> Path:
    """target/aws-trial: egress.json and egress.md (the lab's table, goals and pictures)."""
    out = trial.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "egress.json").write_text(json.dumps(trial.rows, indent=2) + "\n")
    document = out / "egress.md"
    document.unlink(missing_ok=True)
    blocks = report.blocks(trial.rows, trial.pictures, elapsed, "make aws-trial")
    blocks["trial"] = (
        f"Account {trial.env.account}, region {trial.env.region}, started {trial.stamp}; {ended}. "
        "Read it next to docs/egress.md (the lab): same scenarios, same columns (docs/aws-trial.md)."
    )
    markdown.write(document, TITLE, {"trial": blocks.pop("trial"), **blocks})
    return document


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    account = Account(args.region)
    region = account.region
    if not region:
        print("aws-trial: no region: set AWS_REGION or pass --region", file=sys.stderr)
        return 2
    try:
        outputs = json.loads(args.outputs.read_text()) if args.outputs else terraform_outputs(args.tf_dir)
        env = from_outputs(outputs, region)
    except (TrialError, OSError, ValueError) as exc:
        print(f"aws-trial: {exc}", file=sys.stderr)
        return 2
    zones = [z for z in args.zones.split(",") if z]
    unknown = [z for z in zones if z not in env.world.zones]
    if unknown:
        print(f"aws-trial: unknown zones {', '.join(unknown)} (the environment's: {', '.join(env.zones)})", file=sys.stderr)
        return 2
    settings = Settings(
        url=args.check_ip_url,
        rate=args.probe_rate,
        timeout=args.probe_timeout,
        lead_in=args.lead_in,
        tail=args.tail,
        bound=args.bound,
        settle=args.settle,
        refresh_warmup=args.refresh_warmup,
        fis_role_arn=args.fis_role_arn,
    )
    chosen, skipped = planning.portable(offers(settings))
    names = [s for s in args.scenarios.split(",") if s]
    if names:
        unknown = [n for n in names if n not in SCENARIOS]
        refused = [n for n in names if n in skipped]
        if unknown or refused:
            why = [f"{n}: unknown" for n in unknown] + [f"{n}: {skipped[n]}" for n in refused]
            print(f"aws-trial: cannot run {'; '.join(why)}", file=sys.stderr)
            return 2
        chosen = [s for s in chosen if s.name in names]
    try:
        found = problems(env, account)
    except (ClientError, BotoCoreError) as exc:  # refused a read: permissions, credentials, a region without the service
        found = [f"could not read the environment: {exc}"]
    if found:
        print("aws-trial: refused, nothing touched:", file=sys.stderr)
        for line in found:
            print(f"  - {line}", file=sys.stderr)
        return 2
    plan = planning.make(
        env, chosen, skipped, settings.rate, settings.lead_in, settings.tail, settings.url, zones or None, settings.bound, settings.settle
    )
    print("\n".join(plan.lines), flush=True)
    if not confirmed(args):
        return 0
    return execute(env, account, settings, args.out, plan)


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: a BaseException, so that no `except Exception` on the way swallows it."""


def execute(env, account, settings, out: Path, plan) -> int:
    signals = (signal.SIGINT, signal.SIGTERM)

    def stop(signum, _frame):
        for each in signals:  # the first signal stops the trial; the clean-up is not cut short by another
            signal.signal(each, signal.SIG_IGN)
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, stop) for s in signals}
    trial = Trial(env, account, settings, out)
    started = time.monotonic()
    ended, code = "every run done", 0
    try:
        for index, (scenario, zone) in enumerate(plan.runs):
            print(f"aws-trial: run {index + 1}/{len(plan.runs)}: {scenario.name} in {zone}", flush=True)
            trial.one(index, scenario, zone)
    except Interrupted as exc:
        ended, code = f"interrupted ({exc}) after {len(trial.pictures)} of {len(plan.runs)} runs", 3
        print(f"aws-trial: {ended}: stopping the probes and putting things back", flush=True)
    except (TrialError, ClientError, BotoCoreError) as exc:  # throttled past the SDK's retries, a refusal, a lost connection
        ended, code = f"stopped: {exc}", 3
        print(f"aws-trial: {ended}", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 (a fault of the trial's own: the clean-up and the report still come)
        ended, code = f"stopped by an error: {type(exc).__name__}: {exc}", 3
        traceback.print_exc()
    finally:
        for signum in previous:  # a signal during the clean-up must not cut it short
            signal.signal(signum, signal.SIG_IGN)
    left = trial.finish()
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    if left:
        ended += "; NOT as found: " + "; ".join(left)
        code = 3
    path = write(trial, time.monotonic() - started, ended)
    bad = [r for r in trial.rows if r["foreign_sources"] or not r["ends_on_own_eip"]]
    print(f"aws-trial: {len(trial.rows)} rows in {path.parent / 'egress.json'} and {path}; {ended}", flush=True)
    if code == 0 and bad:
        print(f"aws-trial: {len(bad)} rows with foreign sources or not back on their own EIP", flush=True)
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
