"""The short data-plane lab: real packets through the nat-instance module's real user data, in
network namespaces (tools/nat_lab/lab). Assertions are on what the probes measured (the source
address the echo saw for every new connection) and on the emulator's state, never on logs or
timers. `make lab` runs every scenario and writes docs/egress.md; this is the part `make test` runs.
It also proves the NAT's host firewall on real packets: its own address admits nothing from the
private hosts, while what it forwards flows.

Root only (network namespaces, nftables, mount namespaces): elsewhere every test here skips,
saying why."""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nat_lab import REPO
from nat_lab import hook as hook_lab
from nat_lab.events import LAUNCH_SUCCESSFUL
from nat_lab.lab import metrics, netns
from nat_lab.lab.core import Lab, Settings, default_module, nat_log_group
from nat_lab.lab.eventbridge import EventBridge
from nat_lab.lab.fabric import ECHO_ADDRESS
from nat_lab.lab.hookwire import Hook
from nat_lab.lab.instance import run_in
from nat_lab.lab.report import measure
from nat_lab.lab.scenarios import SCENARIOS, converge_by_hand, execute, hook_config, own_nat, settle

pytestmark = pytest.mark.skipif(netns.unavailable() is not None, reason=f"data-plane lab: {netns.unavailable()}")

VERIFY = REPO / "scripts" / "verify_nat.sh"


def hook_binary() -> Path:
    try:
        return hook_lab.hook_bin()
    except FileNotFoundError as exc:
        pytest.skip(f"the hook binary is needed: {exc}")


@contextmanager
def run_dir():
    """The lab's own directory, not pytest's tmp_path: the NAT instances' files (their /etc, their
    scripts) live there while they run, and another pytest on the machine may prune old tmp_paths."""
    (REPO / "target").mkdir(exist_ok=True)  # cargo's output may live elsewhere (CARGO_TARGET_DIR)
    path = Path(tempfile.mkdtemp(prefix="test-lab-", dir=REPO / "target"))
    yield path  # kept when the test fails: the instances' consoles and the lab's timeline are there
    shutil.rmtree(path, ignore_errors=True)


# Shorter than make lab's, for time: a 3 s boot still outlasts the 1 s event delay (a replacement is
# never InService before the event about the NAT it replaces arrives), as EC2's boot does.
SHORT = Settings(boot_delay=3.0, refresh_warmup=2.0, schedule_seconds=10.0)


@pytest.fixture(scope="module")
def lab():
    with run_dir() as path, Lab(path, SHORT, module=default_module()) as running:
        yield running
    assert not [n for n in netns.lab_namespaces() if n.startswith(netns.PREFIX)], "the lab left namespaces behind"


@pytest.fixture(scope="module")
def hooked(lab):
    """The hook (failover on) behind the latency proxy, and the EventBridge stand-in delivering to it."""
    hook = Hook(lab.emulator, hook_config(lab, True), lab.run_dir / "logs", lab.settings.api_latency, hook_binary())
    bridge = EventBridge(lab, hook.function, lab.settings.event_delay, lab.settings.schedule_seconds)
    bridge.start_schedule()
    try:
        assert settle(lab, bridge), f"the zones never came up on their own NATs: {lab.timeline.changes[-20:]}"
        yield bridge
    finally:
        bridge.stop()
        hook.stop()


def run(lab, bridge, name):
    assert settle(lab, bridge), "the world is not whole before the run"
    done, probes = execute(lab, bridge, SCENARIOS[name], failover=True, hook=True)
    return done, {r["zone"]: r for r in measure(lab, done, probes, str(hook_binary()))}


# --- the NAT's own address: a host firewall, forwarding untouched ----------------------------------------


class Service:
    """A TCP service listening inside a namespace: it answers each connection with the address it
    came from, and records it."""

    def __init__(self, ns: str, address: str, port: int):
        self.sources: list[str] = []
        self._stop = threading.Event()
        self.sock: socket.socket = netns.call_in(ns, lambda: socket.create_server((address, port)))  # type: ignore[assignment]
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, name=f"service-{ns}-{port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self.sources.append(peer[0])
                conn.sendall(f"{peer[0]}\n".encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def tcp_answer(ns: str, address: str, port: int, timeout: float = 2.0) -> str:
    """What a client in `ns` gets from address:port: the service's answer, `timeout` (dropped) or
    `refused`."""

    def connect() -> str:
        try:
            with socket.create_connection((address, port), timeout=timeout) as conn:
                return conn.recv(64).decode().strip()
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"

    return netns.call_in(ns, connect)  # type: ignore[return-value]


def icmp_echo_answered(ns: str, address: str, timeout: float = 1.5) -> bool:
    """Whether an ICMP echo request from `ns` to `address` gets its reply (a raw socket: no ping here)."""

    def checksum(data: bytes) -> int:
        total = sum(struct.unpack(f"!{len(data) // 2}H", data))
        total = (total >> 16) + (total & 0xFFFF)
        return ~(total + (total >> 16)) & 0xFFFF

    def ping() -> bool:
        ident, payload = os.getpid() & 0xFFFF, b"nat-lab!"
        request = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + payload
        request = request[:2] + struct.pack("!H", checksum(request)) + request[4:]
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
            sock.sendto(request, (address, 0))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, peer = sock.recvfrom(1024)
                except TimeoutError:
                    return False
                header = (data[0] & 0x0F) * 4
                kind, _, _, got = struct.unpack("!BBHH", data[header : header + 6])
                if peer[0] == address and kind == 0 and got == ident:
                    return True
        return False

    return netns.call_in(ns, ping)  # type: ignore[return-value]


def in_instance(nat, *cmd: str) -> subprocess.CompletedProcess:
    """`cmd` inside a lab NAT instance (nat_lab.lab.instance.run_in)."""
    return run_in(nat, *cmd)


def test_the_nats_own_address_admits_nothing_while_what_it_forwards_flows(lab, hooked):
    """The user data's input chain: a private host cannot open a connection to the NAT itself (a
    service listening on TCP 22 there, as sshd would), nor get an ICMP echo from it, while the very
    same traffic forwarded through the NAT reaches the internet and leaves with the zone's EIP; the
    self-check still proves egress through its forwarding probe."""
    assert settle(lab, hooked)
    zone = next(iter(lab.world.zones.values()))
    nat = lab.instances.live[own_nat(lab.state, lab, zone.zone)]
    host = f"{lab.registry.prefix}host-{zone.zone[-1]}"
    chain = netns.run("ip", "netns", "exec", nat.ns, "nft", "list", "chain", "inet", "filter", "input").stdout
    assert "hook input priority filter; policy drop;" in chain
    on_nat, on_internet = Service(nat.ns, "0.0.0.0", 22), Service(lab.fabric.inet, ECHO_ADDRESS, 22)
    try:
        # The service is open on the NAT's address: the NAT itself reaches it (loopback).
        assert tcp_answer(nat.ns, nat.private_ip, 22) == nat.private_ip
        # From a private host, the NAT's own address admits nothing: the SYN is dropped.
        assert tcp_answer(host, nat.private_ip, 22) == "timeout"
        assert on_nat.sources == [nat.private_ip], "only the NAT's own connection reached its service"
        assert not icmp_echo_answered(host, nat.private_ip)
        # The same port, and ICMP echo, forwarded through the NAT: answered, leaving with the zone's EIP.
        assert tcp_answer(host, ECHO_ADDRESS, 22) == zone.eip
        assert on_internet.sources == [zone.eip]
        assert icmp_echo_answered(host, ECHO_ADDRESS)
    finally:
        on_nat.close()
        on_internet.close()
    # The self-check proves egress through its forwarding probe (a namespace on the NAT), with the
    # chain loaded; its timer has counted no failure.
    check = in_instance(nat, "/usr/local/sbin/nat-self-check", "check")
    assert check.returncode == 0 and f"forwarded egress as {zone.eip}" in check.stdout, check.stdout + check.stderr
    counter = nat.file("/run/nat-asg-hook/consecutive-failures")
    assert lab.wait(lambda s: counter.exists(), 30), "the self-check's timer never ran"
    assert counter.read_text().strip() == "0"
    assert own_nat(lab.state, lab, zone.zone) == nat.id, "nothing replaced the NAT meanwhile"


def test_planned_refresh_leaves_only_through_the_zone_eip_and_keeps_established_connections(lab, hooked):
    """Established connections of both kinds survive: the new NAT loads the serving NAT's flows
    (nat-conntrack-sync) before it takes the zone's EIP, so a connection whose server speaks first
    after the move finds its flow there, with the same address and port, instead of nothing (0 of
    20 before the hand-over). The stream service saw each come from the zone's EIP, on one socket."""
    done, rows = run(lab, hooked, "planned-refresh")
    zone = lab.world.zones[done.zones[0]]
    row = rows[zone.zone]
    assert row["probes"] > 0 and row["failed"] < row["probes"] / 2, row
    assert row["foreign_sources"] == 0
    assert row["sources"] == [zone.eip], "a planned refresh never leaves with another address"
    assert row["ends_on_own_eip"]
    new = own_nat(lab.state, lab, zone.zone)
    assert new and new != done.old[zone.zone], "the zone is on the refresh's new instance"
    assert lab.state.state_of(done.old[zone.zone]) == "terminated"
    kept = row["connections"]
    assert set(kept) == {"client_led", "server_led"} and all(total == lab.settings.streams for _, total in kept.values()), kept
    assert all(survived >= 0.95 * total for survived, total in kept.values()), kept
    log = lab.run_dir / "instances" / new / "state" / "var" / "log" / "nat-conntrack-sync.log"
    assert log.exists() and "established flows from" in log.read_text(), "the new NAT loaded the old one's flows"
    for other in rows.values():
        if other["zone"] != zone.zone:  # untouched (a probe may time out on a loaded machine, no more)
            assert other["sources"] == [lab.world.zones[other["zone"]].eip]
            assert other["failed"] <= other["probes"] * 0.05, other
            assert other["connections"] == {k: [lab.settings.streams] * 2 for k in ("client_led", "server_led")}, other


def test_nat_terminated_by_an_operator_fails_over_to_a_sibling_and_comes_back(lab, hooked):
    done, rows = run(lab, hooked, "terminated-by-operator")
    zone = lab.world.zones[done.zones[0]]
    row = rows[zone.zone]
    eips = {z.eip for z in lab.world.zones.values()}
    assert row["foreign_sources"] == 0
    assert set(row["sources"]) <= eips and zone.eip in row["sources"]
    assert row["ends_on_own_eip"]
    # While the old NAT was leaving, the zone's default route went to a sibling zone's NAT.
    routed = [c.detail for c in lab.timeline.since(done.acted) if c.kind == "route" and c.zone == zone.zone]
    nat_zone = {i.id: i.zone for i in [*lab.instances.live.values(), *lab.instances.gone.values()]}
    assert any(nat_zone.get(target) not in (None, zone.zone) for target in routed), routed
    assert row["failed_over_probes"] > 0


def test_a_nat_its_group_replaces_launches_its_replacement_first_and_never_leaves_its_zone_dark(lab, hooked):
    """A health replacement under the module's maintenance policy (min healthy 100 %): the new NAT
    is InService before the old one enters its terminate hook."""
    done, rows = run(lab, hooked, "terminated-by-group")
    zone = lab.world.zones[done.zones[0]]
    row = rows[zone.zone]
    old, new = done.old[zone.zone], own_nat(lab.state, lab, zone.zone)
    assert new and new != old and lab.state.state_of(old) == "terminated"
    assert row["replaced"] == 1
    # Failover on, the schedule may move the zone off its Unhealthy NAT to a sibling meanwhile (an
    # allow-listed EIP); it is never dark for longer than an API round or two (make lab measures it).
    eips = {z.eip for z in lab.world.zones.values()}
    assert set(row["sources"]) <= eips and row["foreign_sources"] == 0 and row["ends_on_own_eip"]
    assert row["failed"] <= row["probes"] * 0.05, row
    changes = [c for c in lab.timeline.since(done.acted) if c.kind == "lifecycle" and c.zone == zone.zone]
    in_service = min(c.at for c in changes if c.detail == f"{new} InService")
    terminating = min(c.at for c in changes if c.detail == f"{old} Terminating:Wait")
    # Not after: the lab's follower may see both in one snapshot of the emulator (the group terminates
    # the old NAT in the same step in which it finds the new one InService); a terminate before the
    # replacement is InService still fails.
    assert in_service <= terminating, changes


def test_a_spot_nat_reclaimed_without_spot_capacity_comes_back_on_demand_and_its_zone_never_goes_dark(lab, hooked):
    """Spot short in the zone: the warned NAT's replacement cannot launch on Spot; the failure
    switches the group to on-demand, the next attempt launches, and the new NAT takes the zone back.
    Meanwhile a sibling carries the zone (an allow-listed EIP), never a dark second."""
    done, rows = run(lab, hooked, "spot-unavailable")
    zone = lab.world.zones[done.zones[0]]
    row = rows[zone.zone]
    old, new = done.old[zone.zone], own_nat(lab.state, lab, zone.zone)
    assert new and new != old, "the zone is whole on a NAT its group launched on-demand"
    assert done.seen["before"]["on_demand_base_capacity"] == 0 and done.seen["before"]["spot_unavailable"] is None
    assert done.seen["after"]["on_demand_base_capacity"] == 1 and done.seen["after"]["spot_unavailable"], done.seen
    assert done.seen["launch_failures"] >= 1
    answered = [d.outcome for d in hooked.since(done.acted) if d.kind == "EC2 Instance Launch Unsuccessful"]
    assert answered and answered[0] == "applied" and set(answered[1:]) <= {"unchanged"}, answered
    eips = {z.eip for z in lab.world.zones.values()}
    assert set(row["sources"]) <= eips and row["foreign_sources"] == 0 and row["ends_on_own_eip"], row
    assert row["failed"] <= row["probes"] * 0.05, row


def test_a_drained_zone_leaves_through_a_sibling_while_its_nat_runs_and_undrain_gives_it_back(lab, hooked):
    """`nat-asg-hook drain`, the schedule, `nat-asg-hook undrain` against the lab (failover on): what
    the act read from the emulator at each step, what the fabric followed, and what the probes saw."""
    done, rows = run(lab, hooked, "drain")
    zone = lab.world.zones[done.zones[0]]
    row = rows[zone.zone]
    old = done.old[zone.zone]
    drained, held, undrained = done.seen["drain"], done.seen["held"], done.seen["undrain"]

    # Drained: the group carries the operator's mark, every table goes through one sibling's NAT, the
    # EIP stays on the zone's own NAT, which still runs InService (nothing replaces it).
    assert drained["exit"] == 0, drained["error"]
    assert drained["mark"] and drained["mark"].endswith(" operator: nat-lab maintenance"), drained["mark"]
    [sibling] = set(drained["routes_via"].values())
    assert sibling in lab.world.groups and sibling != zone.name
    assert drained["eip_on"] == old and drained["nat"]["state"] == "running" and drained["nat"]["lifecycle"] == "InService"
    # The schedule fired meanwhile and kept it there.
    assert held["routes_via"] == drained["routes_via"] and held["mark"] == drained["mark"] and held["eip_on"] == old

    # Undrained: the mark is gone, every table is back on the zone's own NAT, the same one.
    assert undrained["exit"] == 0, undrained["error"]
    assert undrained["mark"] is None and set(undrained["routes_via"].values()) == {zone.name} and undrained["eip_on"] == old
    tags = lab.emulator.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[zone.name])["AutoScalingGroups"][0]
    assert not [t for t in tags.get("Tags", []) if t["Key"] == "nat-asg-hook:drained"]
    assert own_nat(lab.state, lab, zone.zone) == old and row["replaced"] == 0

    # The fabric followed: the zone's default route went to the sibling's NAT, then back to its own.
    routed = [c.detail for c in lab.timeline.since(done.acted) if c.kind == "route" and c.zone == zone.zone]
    sibling_nats = {i.id for i in lab.instances.live.values() if i.group == sibling}
    assert routed and routed[-1] == old and any(target in sibling_nats for target in routed), routed

    # The probes: egress through the sibling's EIP while drained, never a foreign source, and the
    # zone ends on its own EIP (a probe may time out on a loaded machine, no more).
    sibling_eip = lab.world.groups[sibling].eip
    assert row["foreign_sources"] == 0
    assert set(row["sources"]) == {zone.eip, sibling_eip} and row["failed_over_probes"] > 0, row
    assert row["ends_on_own_eip"]
    assert row["failed"] <= row["probes"] * 0.05, row


def test_check_endpoints_unreachable_from_every_nat_replace_nothing_and_raise_the_fleet_alarm(lab, hooked):
    """Outside trouble: every NAT's check endpoints hang for a minute, the internet works."""
    done, rows = run(lab, hooked, "check-endpoints-unreachable")
    for zone in lab.world.zones.values():
        row = rows[zone.zone]
        assert row["failed"] == 0 and row["replaced"] == 0, row
        assert own_nat(lab.state, lab, zone.zone) == done.old[zone.zone]
        assert row["outside_trouble"] == 1, "each NAT published CheckEndpointsUnreachable = 1"
        nat = lab.instances.live[done.old[zone.zone]]
        aws_log = nat.file("/var/log/nat-lab/aws.log").read_text()
        assert "set-instance-health" not in aws_log and "put-metric-data" in aws_log
        assert "OUTSIDE TROUBLE" in nat.file("/var/log/nat-lab/services.log").read_text()
    assert rows[done.zones[0]]["outside_trouble_zones"] >= 2 and rows[done.zones[0]]["outside_alarm"]


def test_a_new_nat_that_fails_its_self_check_abandons_and_nothing_moves_to_it(lab, hooked):
    done, rows = run(lab, hooked, "self-check-fails")
    zone = lab.world.zones[done.zones[0]]
    row = rows[zone.zone]
    [abandoned] = done.abandoned
    assert "abandoning" in lab.instances.gone[abandoned].console()
    # Its story outlived it: in its group's log group (the emulator's CloudWatch Logs).
    story = lab.emulator.client("logs").get_log_events(logGroupName=nat_log_group(zone.name), logStreamName=f"{abandoned}/self-check")
    assert any("abandoning" in e["message"] for e in story["events"])
    assert row["moved_to_abandoned"] == [], "neither the EIP nor a route ever went to the abandoned instance"
    assert row["sources"] == [zone.eip] and row["foreign_sources"] == 0
    assert row["ends_on_own_eip"] and own_nat(lab.state, lab, zone.zone) not in (None, done.old[zone.zone], abandoned)


def test_verify_nat_lab_mode_tells_own_eip_from_failed_over(lab, hooked):
    assert settle(lab, hooked)
    state_file = lab.write_state_file(lab.run_dir / "verify-state.tsv")
    ok = subprocess.run([str(VERIFY), "--lab", str(state_file)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count(" ok ") == len(lab.world.zones)

    zone = next(iter(lab.world.zones.values()))
    old = own_nat(lab.state, lab, zone.zone)
    # The replacement's launch event is lost: the zone stays on its sibling until the schedule.
    hooked.lose(lambda e: e["detail-type"] == LAUNCH_SUCCESSFUL and e["detail"]["AutoScalingGroupName"] == zone.name)
    lab.emulator.client("ec2").terminate_instances(InstanceIds=[old])
    siblings = {z.eip for z in lab.world.zones.values() if z.zone != zone.zone}
    assert lab.wait(lambda s: lab.fabric.view.routes.get(zone.route_table_ids[0]) not in (old, "blackhole", "none"), 30)
    failed_over = subprocess.run([str(VERIFY), "--lab", str(state_file)], capture_output=True, text=True, timeout=60)
    assert failed_over.returncode == 1, failed_over.stdout + failed_over.stderr
    line = next(x for x in failed_over.stdout.splitlines() if x.startswith(zone.zone))
    assert "FAILED OVER" in line and any(eip in line for eip in siblings), line
    assert settle(lab, hooked, timeout=90)


def test_each_nat_publishes_what_it_carries_and_runs_tuned(lab, hooked):
    """nat-metrics, from the real user data and its timer (60 s), reaches the emulator's CloudWatch:
    with the probes running, every zone's group reports bytes, packets and new connections out, and
    the answers in, all in one namespace with the group as dimension; and each NAT's namespace runs
    with the user data's TCP timeouts and port range (the conntrack sizes are the machine's in a
    network namespace: the kernel lets only the host set them)."""
    assert settle(lab, hooked)
    cloudwatch = lab.emulator.client("cloudwatch")
    # What the NATs counted of the earlier tests' traffic goes out first (a publish now, as their
    # timer does): from here on, only this test's probes count.
    metrics.publish(lab, {z: lab.instances.live[own_nat(lab.state, lab, z)] for z in lab.world.zones})
    time.sleep(1)
    since = datetime.now(UTC)

    def published(group: str, metric: str, statistic: str = "Sum") -> list[float]:
        points = cloudwatch.get_metric_statistics(
            Namespace="NatAsgHook",
            MetricName=metric,
            Dimensions=[{"Name": "AutoScalingGroupName", "Value": group}],
            StartTime=since,
            EndTime=datetime.now(UTC) + timedelta(minutes=2),
            Period=60,
            Statistics=[statistic],
        )["Datapoints"]
        return [p[statistic] for p in points]

    zones = list(lab.world.zones.values())
    lab.start_probes()
    try:
        deadline = time.monotonic() + 150  # two and a half runs of the 60 s timer
        while time.monotonic() < deadline and not all(sum(published(z.name, "ConnectionEstablishedCount")) > 0 for z in zones):
            time.sleep(5)
    finally:
        probes = lab.stop_probes()
    for zone in zones:
        names = {
            m["MetricName"]
            for m in cloudwatch.list_metrics(Namespace="NatAsgHook", Dimensions=[{"Name": "AutoScalingGroupName", "Value": zone.name}])[
                "Metrics"
            ]
        }
        assert {
            "BytesOutToDestination",
            "BytesInFromDestination",
            "PacketsOutToDestination",
            "PacketsInFromDestination",
            "ActiveConnectionCount",
            "ConnectionEstablishedCount",
            "PacketsDropCount",
            "ErrorPortAllocation",
            "ConntrackUsePercent",
        } <= names, zone.zone
        opened, out_bytes = sum(published(zone.name, "ConnectionEstablishedCount")), sum(published(zone.name, "BytesOutToDestination"))
        assert 0 < opened <= len(probes[zone.zone]) + 50, (zone.zone, opened, len(probes[zone.zone]))
        assert 40 <= out_bytes / opened <= 10_000, "a probe's connection carries a few small packets each way"
        assert sum(published(zone.name, "PacketsInFromDestination")) > 0 and sum(published(zone.name, "BytesInFromDestination")) > 0
        assert all(0 <= p <= 100 for p in published(zone.name, "ConntrackUsePercent", "Maximum"))
        assert max(published(zone.name, "ActiveConnectionCount", "Maximum")) >= 1, "the probes' flows are tracked"

        nat = lab.instances.live[own_nat(lab.state, lab, zone.zone)]
        assert nat.file("/etc/sysctl.d/91-nat-tuning.conf").exists() and nat.file("/etc/modules-load.d/nat-conntrack.conf").exists()
        for key, value in (("netfilter/nf_conntrack_tcp_timeout_established", "7440"), ("ipv4/ip_local_port_range", "1024 65535")):
            applied = subprocess.run(
                ["ip", "netns", "exec", nat.ns, "cat", f"/proc/sys/net/{key}"], capture_output=True, text=True, timeout=10
            )
            assert applied.stdout.split() == value.split(), (zone.zone, key, applied.stdout)


def test_what_each_nat_publishes_agrees_with_what_the_lab_counts_at_its_internet_side(lab, hooked):
    """Per zone, over one steady window (every zone on its own NAT and EIP, flushed by nat-metrics
    publish at both ends, nat_lab.lab.metrics): the bytes the NAT published as sent out, and the new
    connections, agree within 5 % with what the lab counted from the zone's EIP at its internet side."""
    assert settle(lab, hooked)
    nats = {z: lab.instances.live[own_nat(lab.state, lab, z)] for z in lab.world.zones}
    rows = metrics.measure(lab, nats, 30)
    assert {(r["zone"], r["metric"]) for r in rows} >= {(z, m) for z in nats for m in metrics.ASSERTED}
    for row in rows:
        if row["asserted"]:
            assert row["observed"] > 0 and row["datapoints"] >= 1, row
            assert abs(row["reported"] - row["observed"]) <= 0.05 * row["observed"], row


# --- a broken user data makes the lab fail ------------------------------------------------------------


def without_masquerade(script: str) -> str:
    """The real user data with its masquerade rule taken out of the nftables configuration."""
    broken, count = re.subn(r"^\s*oifname .* masquerade\n", "", script, flags=re.M)
    assert count == 1, "the masquerade rule is no longer where this test takes it out"
    return broken


def forwarding_off_after_the_check(script: str) -> str:
    """The real user data, and after it has proved itself, forwarding turned off: a breakage its
    launch check cannot see, only the traffic can. Its watch would take the NAT out within seconds
    (the forwarding-breaks scenario shows it); here it is not started, so that the lab's own verdict
    on the traffic is what the test sees."""
    watch = "systemctl enable --now nat-self-check.service"
    assert script.count(watch) == 1, "the watch is no longer started where this test leaves it out"
    return script.replace(watch, ":").rstrip("\n") + "\nsysctl -q -w net.ipv4.ip_forward=0\n"


def test_a_user_data_that_does_not_masquerade_or_forward_fails_the_lab():
    first, second, third = Settings().zones
    variants = {first: without_masquerade, second: forwarding_off_after_the_check}
    with run_dir() as path, Lab(path, Settings(), module=default_module(), transform=lambda zone, s: variants.get(zone, str)(s)) as lab:
        # No hook: what an operator would do by hand, onto whatever each group holds InService.
        assert lab.wait(lambda s: lab.in_service(second) and lab.in_service(third), 60)
        abandoned = lambda: [i for i in lab.instances.gone.values() if i.zone == first]  # noqa: E731
        assert lab.wait(lambda s: abandoned(), 60), "the zone without masquerade never abandoned a launch"
        converge_by_hand(lab)
        assert lab.wait(lambda s: own_nat(s, lab, second) and own_nat(s, lab, third), 10)
        lab.start_probes()
        time.sleep(3)
        probes = lab.stop_probes()
        verified = subprocess.run([str(VERIFY), "--lab", str(lab.state_file)], capture_output=True, text=True, timeout=60)

        # Without masquerade, the launch self-check fails: the instance abandons its launch (the
        # group replaces it, with the same user data), nothing ever routes to it, no egress.
        assert not lab.in_service(first)
        assert "abandoning" in abandoned()[0].console()
        assert lab.state.default_route(lab.world.zones[first].route_table_ids[0]) is None
        assert probes[first] and not any(p.ok for p in probes[first])
        # Forwarding off after the launch check: the NAT is in service, the routes are on it, and
        # not one probe gets through.
        assert probes[second] and not any(p.ok for p in probes[second])
        # The real user data: the probes leave with the zone's EIP (one may time out on a loaded machine).
        good = [p for p in probes[third] if p.ok]
        assert len(good) >= len(probes[third]) * 0.9 and all(p.source == lab.world.zones[third].eip for p in good)
    assert verified.returncode == 1, verified.stdout + verified.stderr
    verdicts = {line.split()[0]: line for line in verified.stdout.splitlines()}
    assert "NO EGRESS" in verdicts[first] and "NO EGRESS" in verdicts[second] and " ok " in verdicts[third]


def test_a_crashed_labs_namespaces_are_swept_and_a_live_ones_are_not():
    gone = subprocess.Popen(["true"])
    gone.wait()  # a lab process that died without cleaning up: its pid is free
    crashed = netns.add(f"nl{gone.pid}-crashed")
    live = netns.add(f"{netns.PREFIX}still-running")
    try:
        removed = netns.sweep()
        assert crashed in removed and not netns.exists(crashed)
        assert netns.exists(live)
    finally:
        netns.delete(crashed)
        netns.delete(live)
