"""The documents the tools write keep their prose: `make bench` and `make lab` rewrite only the
generated blocks of docs/benchmarks.md and docs/egress.md (nat_lab.markdown), and every table comes
from one helper. Measurements here are made up: the shape is what is checked, not a speed."""

from __future__ import annotations

import re
import types

import pytest

from nat_lab import REPO, markdown
from nat_lab.bench import report as bench_report
from nat_lab.lab import report as lab_report

BENCHMARKS = REPO / "docs" / "benchmarks.md"
EGRESS = REPO / "docs" / "egress.md"


def prose(document: str) -> str:
    """The document with each generated block's body left out."""
    return re.sub(r"^(<!-- BEGIN generated: [\w-]+ -->\n).*?^(<!-- END generated -->)$", r"\1\2", document, flags=re.M | re.S)


def test_a_table_aligns_numbers_right_and_refuses_a_ragged_row():
    assert markdown.table(["what", "ms"], [("init", 7.7)], "lr") == ["| what | ms |", "|---|---:|", "| init | 7.7 |"]
    with pytest.raises(ValueError):
        markdown.table(["what", "ms"], [("init",)])


def test_filling_rewrites_the_blocks_and_nothing_else():
    document = "# T\n\nprose before\n\n<!-- BEGIN generated: a -->\nold\n<!-- END generated -->\n\nprose after\n"
    filled = markdown.fill(document, {"a": "new\nlines"})
    assert filled == "# T\n\nprose before\n\n<!-- BEGIN generated: a -->\nnew\nlines\n<!-- END generated -->\n\nprose after\n"
    assert markdown.fill(filled, markdown.blocks(filled)) == filled
    with pytest.raises(ValueError, match="not the ones written"):
        markdown.fill(document, {"b": "x"})
    with pytest.raises(ValueError, match="missing or malformed"):
        markdown.blocks(document.replace("<!-- END generated -->", ""))


def test_a_missing_document_is_made_from_a_skeleton(tmp_path):
    path = markdown.write(tmp_path / "new.md", "Title", {"a": "one", "b": "two"})
    assert markdown.blocks(path.read_text()) == {"a": "one\n", "b": "two\n"}
    assert path.read_text().startswith("# Title\n")


@pytest.mark.parametrize("doc", [BENCHMARKS, EGRESS], ids=lambda p: p.name)
def test_the_committed_documents_have_well_formed_blocks(doc):
    text = doc.read_text()
    assert markdown.fill(text, markdown.blocks(text)) == text


def measured(rounds: int, tables: int) -> dict:
    shape = [["DescribeAddresses", "DescribeInstances"], ["ReplaceRoute"]]
    return {
        "rounds": rounds,
        "mutating": tables,
        "handler_ms": 340,
        "own_ms": 3.7,
        "emulator_ms": 37,
        "requests": 3 + tables,
        "round_sizes": [3, tables],
        "shape": shape,
    }


def test_the_benchmark_report_fills_its_document_and_keeps_the_prose():
    kinds = ("launch", "done", "failover", "failback", "unrelated")
    paths = [
        {
            "tables": n,
            **{k: [measured(3 if k == "launch" else 1, n)] for k in kinds},
            "first": {"handler_ms": 336, "own_ms": 5.2, "rounds": 3},
            "replay": [{"seconds": 0.37, "handler_ms": 349}],
            "rss_kib": 12400,
        }
        for n in (1, 10)
    ]
    rust = {"init": 0.0077, "first": 0.34, "second": 0.12, "first_own_ms": 6.2, "second_own_ms": 1.8, "rss_kib": 12400, "init_requests": 0}
    cold = {"rust": [rust] * 3, "python": [{"init": 0.255, "rss_kib": 56800}] * 3}
    sizes = {"host binary (x86_64, release)": 12466992, "Lambda zip (arm64)": 3710205}
    args = types.SimpleNamespace(latency=0.1, reps=10, python_cmd=".venv/bin/python -m nat_lab.bench --latency 0.1")
    text = BENCHMARKS.read_text()
    filled = markdown.fill(text, bench_report.blocks(args, paths, cold, sizes, None))
    assert prose(filled) == prose(text)
    assert "| 10 | launch (Launch Successful) | 3 | 13 (3 + 10) | 10 | 340 | 300 | 37 | 3.7 |" in filled
    assert "Not run (`--no-soak`)." in filled


def test_the_lab_report_fills_its_document_and_keeps_the_prose():
    row = {
        "scenario": "planned-refresh",
        "hook": True,
        "failover": True,
        "zone": "us-east-1a",
        "hit": True,
        "probes": 340,
        "failed": 1,
        "outage_ms": 48,
        "outage_open": False,
        "failed_over_probes": 0,
        "foreign_sources": 0,
        "replaced": 1,
        "sources": ["198.51.100.11"],
        "ends_on_own_eip": True,
        "connections": {"client_led": [20, 20], "server_led": [19, 20]},
        "parameters": {"probe_rate_per_s": 20.0},
    }
    pictures = {("planned-refresh", "failover on"): "egress/planned-refresh-on.png"}
    text = EGRESS.read_text()
    # The metrics block is the metrics window's own (lab_report.write keeps it): kept as it is.
    kept = {"metrics": markdown.blocks(text)["metrics"]}
    filled = markdown.fill(text, {**kept, **lab_report.blocks([row], pictures, 397, "make lab")})
    assert prose(filled) == prose(text)
    assert "| planned-refresh | on | us-east-1a | yes | 340 | 1 | 48 | 0 | 0 | 1 | 20/20, 19/20 | 198.51.100.11 | yes |" in filled
    assert "- Planned refresh, longest outage <= 250 ms: **48 ms** (met)." in filled
    assert "client-led **20/20**, server-led **19/20** (met)." in filled, "95 % of each kind: 19 of 20 is enough"
