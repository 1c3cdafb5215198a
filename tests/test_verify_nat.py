"""scripts/verify_nat.sh on AWS, without AWS: `aws` and `terraform` are stand-ins on PATH that answer
what SSM and Terraform would, and record how they were called. (Its lab mode runs in
tests/test_lab.py, against real namespaces.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from nat_lab import REPO

VERIFY = REPO / "scripts" / "verify_nat.sh"
EIPS = {"us-east-1a": "198.51.100.11", "us-east-1b": "198.51.100.12"}
PROBES = {"us-east-1a": "i-0aaaaaaaaaaaaaaa1", "us-east-1b": "i-0bbbbbbbbbbbbbbb2"}


@pytest.fixture
def fake_path(tmp_path) -> Path:
    """`aws`: send-command answers a command ID per instance; get-command-invocation answers
    Success and the address in $SEEN_<instance> (nothing: Failed). `terraform output -json`: the
    root stack's outputs. Every call is appended to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "aws").write_text(
        f"""#!/bin/bash
echo "aws $*" >> {log}
instance="" call=""
for arg in "$@"; do
  case $arg in send-command | get-command-invocation) call=$arg ;; esac
done
while (($#)); do
  case $1 in --instance-ids | --instance-id) instance=$2; shift ;; esac
  shift
done
if [[ $call == send-command ]]; then
  echo "cmd-$instance"
  exit 0
fi
var="SEEN_${{instance//-/_}}"
if [[ -n ${{!var:-}} ]]; then printf 'Success\t%s\n' "${{!var}}"; else printf 'Failed\t\n'; fi
"""
    )
    outputs = {"nat_public_ips": {"value": EIPS}, "egress_probe_instance_ids": {"value": PROBES}}
    (bin_dir / "terraform").write_text(f"#!/bin/bash\necho \"terraform $*\" >> {log}\ncat <<'JSON'\n{json.dumps(outputs)}\nJSON\n")
    for tool in ("aws", "terraform"):
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def verify(fake_path: Path, *args: str, seen: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{fake_path}:{os.environ['PATH']}", "AWS_REGION": "us-east-1"}
    for zone, address in seen.items():
        env[f"SEEN_{PROBES[zone].replace('-', '_')}"] = address
    return subprocess.run([str(VERIFY), "--timeout", "10", *args], env=env, capture_output=True, text=True, timeout=60)


def lines(run: subprocess.CompletedProcess) -> dict[str, str]:
    return {line.split()[0]: line for line in run.stdout.splitlines() if line.strip()}


def test_every_zone_on_its_own_eip_from_terraform_outputs(fake_path):
    run = verify(fake_path, "--tf-dir", "terraform", seen=EIPS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert all(" ok " in line for line in lines(run).values()) and set(lines(run)) == set(EIPS)
    calls = (fake_path.parent / "calls.log").read_text()
    assert "terraform -chdir=terraform output -json" in calls
    for instance in PROBES.values():
        assert f"ssm send-command --region us-east-1 --instance-ids {instance} --document-name AWS-RunShellScript" in calls
        assert """--parameters {"commands":["curl -fsS --max-time 10 'https://checkip.amazonaws.com'"]}""" in calls


def test_a_zone_on_its_siblings_eip_is_failed_over_and_a_silent_one_has_no_egress(fake_path):
    run = verify(fake_path, seen={"us-east-1a": EIPS["us-east-1b"]})
    assert run.returncode == 1
    found = lines(run)
    assert "FAILED OVER" in found["us-east-1a"] and "us-east-1b" in found["us-east-1a"]
    assert "NO EGRESS" in found["us-east-1b"]


def test_an_address_that_is_no_zones_eip_is_foreign(fake_path):
    run = verify(fake_path, seen={"us-east-1a": "54.214.1.2", "us-east-1b": EIPS["us-east-1b"]})
    assert run.returncode == 1
    assert "FOREIGN" in lines(run)["us-east-1a"] and " ok " in lines(run)["us-east-1b"]


def test_zones_given_by_hand_need_no_terraform(fake_path):
    args = [a for z in EIPS for a in ("--zone", f"{z}={EIPS[z]}={PROBES[z]}")]
    run = verify(fake_path, *args, seen=EIPS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "terraform" not in (fake_path.parent / "calls.log").read_text()


def test_usage_errors_exit_2(fake_path):
    assert verify(fake_path, "--zone", "us-east-1a=198.51.100.11", seen={}).returncode == 2
    assert verify(fake_path, "--bogus", seen={}).returncode == 2
    assert verify(fake_path, "--lab", "/nonexistent/lab-state.tsv", seen={}).returncode == 2


@pytest.mark.parametrize(
    "url",
    [
        "https://checkip.amazonaws.com/$(touch /tmp/pwned)",
        "https://checkip.amazonaws.com;reboot",
        "https://checkip.amazonaws.com/`id`",
        "https://checkip.amazonaws.com/' ; id ; '",
        'https://checkip.amazonaws.com/"]}',
        "file:///etc/shadow",
        "https://checkip.amazonaws.com/ x",
    ],
    ids=["command-substitution", "semicolon", "backtick", "single-quote", "json-quote", "not-http", "space"],
)
def test_a_check_ip_url_that_is_not_a_plain_url_is_refused_before_any_call(fake_path, url):
    """It would run in a root shell on every probe."""
    run = verify(fake_path, "--check-ip-url", url, seen=EIPS)
    assert run.returncode == 2 and "not a plain http(s) URL" in run.stderr
    assert not (fake_path.parent / "calls.log").exists(), "no terraform, no SSM call"


def test_a_lab_file_with_a_bad_check_ip_url_is_refused(fake_path, tmp_path):
    lab = tmp_path / "lab-state.tsv"
    lab.write_text("check_ip_url\thttp://10.0.0.1:8080/$(id)\nzone\tus-east-1a\tns-a\t198.51.100.11\n")
    run = verify(fake_path, "--lab", str(lab), seen={})
    assert run.returncode == 2 and "not a plain http(s) URL" in run.stderr


def test_a_url_with_a_port_and_path_is_accepted_and_quoted(fake_path):
    run = verify(fake_path, "--check-ip-url", "http://203.0.113.9:8080/ip", seen=EIPS)
    assert "curl -fsS --max-time 10 'http://203.0.113.9:8080/ip'" in (fake_path.parent / "calls.log").read_text()
    assert run.returncode == 0, run.stdout + run.stderr
