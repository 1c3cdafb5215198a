"""The runbook's picture of the dashboard (docs/dashboard.svg, nat_lab.dashboard): drawn from a
dashboard body, it keeps each widget's place and title; the one in docs/ shows every widget the module
declares. (The Terraform apply test holds it to the dashboard it applied.)"""

from __future__ import annotations

import re

from nat_lab import dashboard
from nat_lab.terraform import TERRAFORM_DIR

NAT_METRICS_TF = TERRAFORM_DIR / "modules" / "nat-asg-hook" / "nat-metrics.tf"


def test_a_drawn_body_keeps_every_widgets_place_and_title():
    body = {
        "widgets": [
            {"type": "text", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {"markdown": "## stack: NAT egress\n| a | b |"}},
            {
                "type": "metric",
                "x": 12,
                "y": 0,
                "width": 12,
                "height": 6,
                "properties": {"title": 'Bytes "out" & in', "metrics": [[1], [2]]},
            },
            {"type": "alarm", "x": 0, "y": 6, "width": 8, "height": 6, "properties": {"title": "Alarms", "alarms": []}},
        ]
    }
    found = dashboard.widgets(body)
    assert [w.title for w in found] == ["NAT egress", 'Bytes "out" & in', "Alarms"]
    assert found[1].lines == 2
    drawn = dashboard.svg(found, "caption")
    assert dashboard.layout(dashboard.widgets_in_svg(drawn)) == dashboard.layout(found)
    assert drawn == dashboard.svg(found, "caption"), "the same body draws the same picture"


def test_the_runbooks_picture_shows_every_widget_the_module_declares():
    declared = set(re.findall(r'\btitle\s*=\s*"([^"$]+)"', NAT_METRICS_TF.read_text()))
    assert len(declared) >= 10
    drawn = {w.title for w in dashboard.widgets_in_svg(dashboard.OUT.read_text())}
    assert declared <= drawn, f"docs/dashboard.svg lacks {sorted(declared - drawn)}: python -m nat_lab.dashboard"
    assert "dashboard.svg" in (dashboard.REPO / "docs" / "runbook.md").read_text()
