"""The trial's parts that need no account and no lab: the prober as a probe instance runs it (a
real process against a local check-IP server), the collection's chunks, the log's parsing, which
scenarios a real account runs, the plan's cost, and the stack outputs it refuses."""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import subprocess
import sys
import threading
import time

import pytest

from nat_lab.lab.scenarios import SCENARIOS
from nat_lab.trial import plan as planning
from nat_lab.trial.environment import from_outputs
from nat_lab.trial.probes import CHUNK, PROBER, TrialError, collect_lines, parse


class CheckIp(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float = 0.0):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                time.sleep(server.delay)
                body = f"{self.client_address[0]}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.delay = delay
        super().__init__(("127.0.0.1", 0), Handler)
        self.handle_error = lambda request, address: None  # a prober that gave up on a slow answer
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


def probe_for(tmp_path, url: str, seconds: float, rate: float = 20.0, timeout: float = 0.3) -> tuple[list, bool]:
    """The prober for `seconds`, then its stop file, as the trial stops it; its log, parsed."""
    prober = tmp_path / "prober.py"
    prober.write_text(PROBER)
    log = tmp_path / "probes.log"
    process = subprocess.Popen([sys.executable, str(prober), str(log), url, str(rate), str(timeout), "60"])
    try:
        time.sleep(seconds)
        (tmp_path / "probes.log.stop").touch()
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
    return parse("us-east-1a", log.read_text())


def test_the_prober_records_each_request_with_the_address_the_service_saw(tmp_path):
    server = CheckIp()
    try:
        probes, ended = probe_for(tmp_path, server.url, 1.0)
    finally:
        server.shutdown()
    assert ended
    assert 15 <= len(probes) <= 25  # 20 a second
    assert all(p.ok and p.source == "127.0.0.1" and p.end >= p.start for p in probes)
    assert [p.seq for p in probes] == list(range(len(probes)))


def test_a_slow_or_missing_service_is_a_failed_probe_not_a_gap(tmp_path):
    slow = CheckIp(delay=0.6)
    try:
        probes, ended = probe_for(tmp_path, slow.url, 0.5, timeout=0.3)
    finally:
        slow.shutdown()
    assert ended and probes and not any(p.ok for p in probes)
    gone = CheckIp()
    url = gone.url
    gone.shutdown()
    gone.server_close()
    probes, _ = probe_for(tmp_path / ".." / tmp_path.name, url, 0.5)
    assert probes and not any(p.ok for p in probes) and all(p.error for p in probes)


def test_the_prober_stops_by_itself_at_its_bound(tmp_path):
    server = CheckIp()
    prober = tmp_path / "prober.py"
    prober.write_text(PROBER)
    try:
        done = subprocess.run([sys.executable, str(prober), str(tmp_path / "log"), server.url, "10", "0.3", "0.5"], timeout=10)
    finally:
        server.shutdown()
    assert done.returncode == 0
    probes, ended = parse("z", (tmp_path / "log").read_text())
    assert ended and 3 <= len(probes) <= 7


def test_the_start_command_writes_the_prober_and_runs_it(tmp_path, monkeypatch):
    """The shell lines SSM runs (AWS-RunShellScript), run by sh here, in a directory of the test's."""
    import nat_lab.trial.probes as probes_module

    monkeypatch.setattr(probes_module, "DIRECTORY", str(tmp_path))
    server = CheckIp()
    lines = probes_module.start_lines("run-1", "us-east-1a", server.url, 20.0, 0.3, 0.5)
    try:
        done = subprocess.run(["sh", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=20)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    probes, ended = parse("us-east-1a", (tmp_path / "run-1-us-east-1a.log").read_text())
    assert ended and probes and all(p.ok for p in probes)


def test_the_collection_reads_a_log_back_in_chunks_under_run_commands_limit(tmp_path, monkeypatch):
    import nat_lab.trial.probes as probes_module

    monkeypatch.setattr(probes_module, "DIRECTORY", str(tmp_path))
    log = tmp_path / "r-z.log"
    text = "".join(f"{i} {1000 + i / 20:.4f} {1000.01 + i / 20:.4f} 1 203.0.113.{i % 250} -\n" for i in range(20_000)) + "END\n"
    log.write_text(text)
    data, offset, total = "", 0, None
    while total is None or offset < total:
        answer = subprocess.run(["sh", "-c", "\n".join(collect_lines("r", "z", offset))], capture_output=True, text=True, check=True).stdout
        if offset == 0:
            log.write_text("a line the prober wrote after the first chunk\n")  # the frozen copy is what is read
        assert len(answer) <= 24_000  # what Run Command keeps of the output
        size, _, chunk = answer.partition("\n")
        total = int(size)
        data += chunk.strip()
        offset += CHUNK
    assert offset > CHUNK  # it took more than one
    assert gzip.decompress(base64.b64decode(data)).decode() == text


def test_a_log_cut_short_keeps_its_whole_lines():
    probes, ended = parse("z", "0 1.0 1.1 1 203.0.113.5 -\n1 1.05 1.2 0 - URLError\n2 1.1 1.")
    assert not ended
    assert [(p.seq, p.ok, p.source, p.error) for p in probes] == [(0, True, "203.0.113.5", ""), (1, False, "", "URLError")]


def test_a_real_account_runs_the_scenarios_made_of_aws_calls_and_says_why_not_the_others():
    chosen, skipped = planning.portable(frozenset())
    assert [s.name for s in chosen] == ["planned-refresh", "terminated-by-group", "terminated-by-operator", "killed"]
    assert set(skipped) | {s.name for s in chosen} == set(SCENARIOS)
    assert skipped["spot-interruption"].startswith("needs a Spot interruption: give a role")
    assert "more than one zone" in skipped["two-zones-down"]
    with_fis, _ = planning.portable(frozenset({"spot-interruption"}))
    assert "spot-interruption" in [s.name for s in with_fis]


def outputs(**changes) -> dict:
    values = {
        "hook_config": {
            "groups": {
                "nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-1", "route_table_ids": ["rtb-1"]},
                "nat-b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-2", "route_table_ids": ["rtb-2"]},
            }
        },
        "nat_public_ips": {"us-east-1a": "198.51.100.1", "us-east-1b": "198.51.100.2"},
        "egress_probe_instance_ids": {"us-east-1a": "i-1", "us-east-1b": "i-2"},
    }
    values.update(changes)
    return {k: {"value": v} for k, v in values.items()}


def test_the_plan_of_the_test_environment_says_how_long_and_what_it_costs():
    env = from_outputs(outputs(), "us-east-1")
    env.account = "123456789012"
    env.instance_types = {"us-east-1a": "t4g.nano", "us-east-1b": "t4g.nano"}
    chosen, skipped = planning.portable(frozenset())
    found = planning.make(env, chosen, skipped, 20.0, 15.0, 15.0, "https://checkip.amazonaws.com")
    text = "\n".join(found.lines)
    assert len(found.runs) == 8 and [z for _, z in found.runs[:2]] == ["us-east-1a", "us-east-1b"]
    assert 45 * 60 <= found.seconds <= 90 * 60
    assert 0.01 < found.usd < 1.0
    assert "at worst 244 minutes" in text and "at worst 0.07 USD" in text  # every run waiting its 900 s bound
    for needed in ("account 123456789012, region us-east-1", "planned-refresh in us-east-1a (nat-a)", "probe i-2", "USD"):
        assert needed in text, text
    print(text)


def test_outputs_without_a_stack_or_its_probes_are_refused():
    with pytest.raises(TrialError, match="no environment deployed"):
        from_outputs({}, "us-east-1")
    with pytest.raises(TrialError, match="no egress probes"):
        from_outputs(outputs(egress_probe_instance_ids={}), "us-east-1")
    with pytest.raises(TrialError, match="us-east-1b"):
        from_outputs(outputs(egress_probe_instance_ids={"us-east-1a": "i-1"}), "us-east-1")
    config = json.dumps(outputs()["hook_config"]["value"])  # Terraform may print it as a string
    assert from_outputs(outputs(hook_config=config), "us-east-1").zones == ["us-east-1a", "us-east-1b"]
