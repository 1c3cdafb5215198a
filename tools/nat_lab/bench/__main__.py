"""`python -m nat_lab.bench` (`make bench`): measure, then rewrite the generated blocks of docs/benchmarks.md and write the raw
measurements (target/bench/benchmarks.json)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

from .. import REPO
from ..moto import Moto
from ..proxy import Proxy
from . import __doc__ as DOC
from . import report
from .measure import cold_start, critical_path, soak


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m nat_lab.bench", description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=Path, default=REPO / "target/release/nat-asg-hook")
    parser.add_argument("--zip", type=Path, default=REPO / "target/lambda/nat-asg-hook/bootstrap.zip")
    parser.add_argument("--out", type=Path, default=REPO / "docs/benchmarks.md")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every request (default 0.1)")
    parser.add_argument("--tables", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--reps",
        type=int,
        default=10,
        help="repetitions per N after the first (launch, done, failover, fail back, unrelated)",
    )
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--no-soak", action="store_true")
    args = parser.parse_args()
    args.python_cmd = ".venv/bin/python -m nat_lab.bench " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (("latency", args.latency), ("reps", args.reps), ("cold_runs", args.cold_runs))
    )
    binary = args.bin.resolve()
    if not binary.is_file():
        print(f"{binary} is missing: make bench builds it", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="nat-asg-hook-bench-") as tmp:
        work = Path(tmp)
        with Moto(log_dir=work) as moto, Proxy(moto.endpoint, latency=args.latency) as proxy:
            paths = []
            for n in args.tables:
                print(f"critical path, N = {n} ...", flush=True)
                paths.append(critical_path(moto, proxy, binary, work, n, args.reps))
                p = paths[-1]
                print(
                    f"  launch rounds {[r['rounds'] for r in p['launch']]}, handler ms {[r['handler_ms'] for r in p['launch']]}; "
                    f"done rounds {[r['rounds'] for r in p['done']]}, mutating {[r['mutating'] for r in p['done']]}; "
                    f"failover rounds {[r['rounds'] for r in p['failover']]}, failback {[r['rounds'] for r in p['failback']]}, "
                    f"unrelated {[r['rounds'] for r in p['unrelated']]}",
                    flush=True,
                )
            print("cold start ...", flush=True)
            cold = cold_start(moto, proxy, binary, work, args.cold_runs)
            print(
                f"  rust init ms {[round(r['init'] * 1000, 1) for r in cold['rust']]}; "
                f"python {[round(r['init'] * 1000) for r in cold['python']]}",
                flush=True,
            )
            soak_result = None
            if not args.no_soak:
                print("soak ...", flush=True)
                soak_result = soak(moto, binary, work)
                print(f"  {soak_result['invocations']} invocations, violations {len(soak_result['violations'])}", flush=True)

    sizes = {"host binary (x86_64, release)": binary.stat().st_size}
    if args.zip.is_file():
        sizes["Lambda zip (arm64, `cargo lambda build --release --arm64 --output-format zip`)"] = args.zip.stat().st_size
        with zipfile.ZipFile(args.zip) as z:
            for info in z.infolist():
                sizes[f"  `{info.filename}` inside the zip, uncompressed"] = info.file_size
    else:
        print(f"warning: {args.zip} is missing; the zip size is left out", file=sys.stderr)
    report.write(args.out, args, paths, cold, sizes, soak_result)
    raw = REPO / "target" / "bench" / "benchmarks.json"  # the raw measurements, next to the build
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"paths": paths, "cold": cold, "sizes": sizes, "soak": soak_result}, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
