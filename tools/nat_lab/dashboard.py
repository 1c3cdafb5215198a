"""The deployment's CloudWatch dashboard, drawn: the widget grid of its body (the JSON that
terraform/modules/nat-asg-hook/nat-metrics.tf builds) as an SVG for the runbook.

    python -m nat_lab.dashboard [--body BODY.json] [--out docs/dashboard.svg]

Without --body, the body comes from the module itself: `terraform console` evaluates its
`local.dashboard_widgets` for three example zones, no cloud (each widget's place, type and title:
the rest, such as the alarms' ARNs, is only known after an apply and is not drawn). The drawing
carries each widget's title and place (`data-` attributes), so that a test can hold the picture to
a dashboard that Terraform applied (tests/terraform/test_terraform_apply.py).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import REPO
from . import terraform as tf_lab

MODULE = tf_lab.TERRAFORM_DIR / "modules" / "nat-asg-hook"
OUT = REPO / "docs" / "dashboard.svg"
COLUMNS = 24  # CloudWatch's grid is 24 units wide
UNIT_X, UNIT_Y = 40, 26  # pixels per grid unit
COLOURS = {"metric": "#e8f1fb", "text": "#f4f4f4", "alarm": "#fdecea"}


@dataclass(frozen=True)
class Widget:
    type: str
    x: int
    y: int
    width: int
    height: int
    title: str
    lines: int  # metric lines (0 for text and alarm widgets)


def title_of(widget: dict) -> str:
    properties = widget.get("properties") or {}
    if properties.get("title"):
        return str(properties["title"])
    text = str(properties.get("markdown") or "")
    heading = next((line.lstrip("# ").strip() for line in text.splitlines() if line.strip()), "")
    return heading.split(": ", 1)[-1] or widget.get("type", "")  # "<deployment>: NAT egress": not the name


def widgets(body: dict) -> list[Widget]:
    """The body's widgets: place, type, title (a text widget's: its first line), in the body's order."""
    found = []
    for w in body["widgets"]:
        properties = w.get("properties") or {}
        metrics = properties.get("metrics")
        lines = len(metrics) if isinstance(metrics, list) else int(metrics or 0)
        found.append(Widget(w["type"], int(w.get("x", 0)), int(w.get("y", 0)), int(w["width"]), int(w["height"]), title_of(w), lines))
    return found


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def svg(found: list[Widget], caption: str) -> str:
    """The grid, drawn: one box per widget at its place, its type and title; deterministic text."""
    top = min((w.y for w in found), default=0)
    rows = max((w.y + w.height for w in found), default=1) - top
    width, height = COLUMNS * UNIT_X + 20, rows * UNIT_Y + 50
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="Helvetica, Arial, sans-serif">',
        f"<title>{html.escape(caption)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="14" font-weight="bold">{html.escape(caption)}</text>',
    ]
    for w in found:
        x, y = 10 + w.x * UNIT_X, 34 + (w.y - top) * UNIT_Y
        wpx, hpx = w.width * UNIT_X - 6, w.height * UNIT_Y - 6
        out.append(
            f'<g class="widget" data-type="{w.type}" data-x="{w.x}" data-y="{w.y}" data-width="{w.width}" '
            f'data-height="{w.height}" data-title="{html.escape(w.title, quote=True)}">'
        )
        out.append(f'<rect x="{x}" y="{y}" width="{wpx}" height="{hpx}" rx="4" fill="{COLOURS.get(w.type, "#eee")}" stroke="#8da2b5"/>')
        kind = w.type + (f", {w.lines} lines" if w.lines else "")
        out.append(f'<text x="{x + 6}" y="{y + 14}" font-size="9" fill="#5a6b7b">{html.escape(kind)}</text>')
        for i, line in enumerate(_wrap(w.title, max(10, int(wpx / 6.4)))[:4]):
            out.append(f'<text x="{x + 6}" y="{y + 30 + 14 * i}" font-size="11">{html.escape(line)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def widgets_in_svg(text: str) -> list[Widget]:
    """The widgets a drawing shows (its data- attributes; metric line counts are not kept)."""
    found = []
    for attrs in re.findall(r'<g class="widget" ([^>]*)>', text):
        a = {k: html.unescape(v) for k, v in re.findall(r'data-(\w+)="([^"]*)"', attrs)}
        found.append(Widget(a["type"], int(a["x"]), int(a["y"]), int(a["width"]), int(a["height"]), a["title"], 0))
    return found


def layout(found: list[Widget]) -> list[tuple]:
    """What a drawing must match: each widget's type, place and title."""
    return [(w.type, w.x, w.y, w.width, w.height, w.title) for w in found]


# --- the body, from the module -----------------------------------------------------------------------

EXAMPLE_GROUPS = {
    f"nat-{zone}": {"availability_zone": zone, "eip_allocation_id": f"eipalloc-{i}", "route_table_ids": [f"rtb-{i}"]}
    for i, zone in enumerate(("eu-west-1a", "eu-west-1b", "eu-west-1c"))
}
PROJECTION = (
    "jsonencode({widgets = [for w in local.dashboard_widgets : {type = w.type, x = w.x, y = w.y, width = w.width, "
    "height = w.height, properties = {title = try(w.properties.title, null), markdown = try(w.properties.markdown, null), "
    "metrics = try(length(w.properties.metrics), 0)}}]})"
)


def module_body() -> dict:
    """The module's dashboard widgets (place, type, title; metric line counts), by `terraform console`."""
    with tempfile.TemporaryDirectory(prefix="dashboard-") as work:
        module = Path(work) / "nat-asg-hook"
        shutil.copytree(MODULE, module, ignore=shutil.ignore_patterns(".terraform*"))
        tf = tf_lab.Terraform(module)
        tf.init(backend=False)
        env = {
            **tf.env,
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_REGION": "eu-west-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        variables = {"name": "nat-asg-hook", "lambda_zip_path": "bootstrap.zip", "groups": json.dumps(EXAMPLE_GROUPS)}
        proc = subprocess.run(
            [tf_lab.terraform_bin(), f"-chdir={module}", "console", *(f"-var={k}={v}" for k, v in variables.items())],
            input=PROJECTION + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"terraform console failed: {proc.stderr[-3000:]}")
        return json.loads(json.loads(proc.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nat_lab.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--body", type=Path, help="a dashboard body (JSON, as GetDashboard returns it); default: the module's")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    body = json.loads(args.body.read_text()) if args.body else module_body()
    found = widgets(body)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg(found, "The deployment's dashboard (modules/nat-asg-hook, nat-metrics.tf): its widget grid"))
    print(f"dashboard: {len(found)} widgets in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
