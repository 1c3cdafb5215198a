"""`make aws-trial` without an account: the driver (nat_lab.trial) runs unchanged against the
emulator, with the lab as its data plane. Its probe instances are the lab's private hosts (their
SSM Run Command runs in the hosts' namespaces), its acts the emulator's APIs, and the hook (failover
on) answers the EventBridge stand-in's events as in the lab. Assertions are on the report it wrote
from its own probes, on the emulator's state and on the probes' commands, never on its logs.

Root only (network namespaces): elsewhere every test here skips, saying why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_lab import hook_binary, run_dir  # the lab's binary and run directory, as the short lab has them

from nat_lab import REPO
from nat_lab.lab import netns
from nat_lab.lab.account import outputs, probe_hosts
from nat_lab.lab.core import Lab, Settings, default_module
from nat_lab.lab.eventbridge import EventBridge
from nat_lab.lab.fabric import ECHO_ADDRESS
from nat_lab.lab.hookwire import Hook
from nat_lab.lab.scenarios import LAB_FIS_ROLE, REFRESH_PREFERENCES, buy_spot, hook_config, own_nat, settle
from nat_lab.trial.probes import Probes, running

SHORT = Settings(boot_delay=3.0, refresh_warmup=2.0, schedule_seconds=10.0, streams=0)
URL = f"http://{ECHO_ADDRESS}/"
TIMING = ["--lead-in", "2", "--tail", "2", "--bound", "90", "--settle", "60", "--refresh-warmup", "2", "--check-ip-url", URL]


class Account:
    def __init__(self, lab: Lab, bridge: EventBridge, path: Path, probes: dict[str, str]):
        self.lab, self.bridge, self.probes = lab, bridge, probes
        self.outputs = path
        self.zones = list(lab.world.zones)

    def trial(self, *args: str, timeout: float = 600, out: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args, out=out), env=self.env(), cwd=REPO, capture_output=True, text=True, timeout=timeout)

    def command(self, *args: str, out: Path | None = None) -> list[str]:
        out = out or self.lab.run_dir / "aws-trial"
        return [sys.executable, "-m", "nat_lab.trial", "--outputs", str(self.outputs), "--out", str(out), *TIMING, *args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("CONFIRM", "AWS_PROFILE")}
        return {**env, **self.lab.emulator.env()}

    def ssm(self):
        return self.lab.emulator.client("ssm")

    def whole(self) -> dict[str, str | None]:
        return {z: own_nat(self.lab.state, self.lab, z) for z in self.zones}

    def settle(self) -> None:
        assert settle(self.lab, self.bridge, 90), f"the lab is not whole: {self.whole()}"


@pytest.fixture(scope="module")
def account():
    with run_dir() as path, Lab(path, SHORT, module=default_module()) as lab:
        hook = Hook(lab.emulator, hook_config(lab, True), lab.run_dir / "logs", lab.settings.api_latency, hook_binary())
        bridge = EventBridge(lab, hook.function, lab.settings.event_delay, lab.settings.schedule_seconds)
        bridge.start_schedule()
        try:
            probes = probe_hosts(lab)
            found = Account(lab, bridge, outputs(lab, hook_config(lab, True), probes, path / "outputs.json"), probes)
            found.settle()
            yield found
        finally:
            bridge.stop()
            hook.stop()
            lab.emulator.ssm_hosts({})
    assert not [n for n in netns.lab_namespaces() if n.startswith(netns.PREFIX)], "the lab left namespaces behind"


def probers_alive() -> list[str]:
    """Prober processes still running on this machine (the lab's probe hosts share it)."""
    done = subprocess.run(["pgrep", "-af", "nat-asg-hook-trial/prober-"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


def test_without_confirmation_it_prints_the_plan_and_touches_nothing(account):
    before = account.whole()
    done = account.trial()
    assert done.returncode == 0, done.stderr
    for needed in ("planned-refresh in", "killed in", "how long: about", "what it costs: about", "nothing done"):
        assert needed in done.stdout, done.stdout
    assert "spot-interruption: needs a Spot interruption" in done.stdout  # no FIS role given
    assert account.whole() == before  # the same NAT in every zone, whole
    commands = account.ssm().list_commands()["Commands"]
    assert not [c for c in commands if (c.get("Comment") or "").startswith("nat-asg-hook aws-trial")], commands
    # With a role for FIS, a Spot interruption is planned only where the NAT is Spot: the lab's buy on-demand.
    with_fis = account.trial("--fis-role-arn", LAB_FIS_ROLE)
    assert with_fis.returncode == 0, with_fis.stderr
    for zone in account.zones:
        assert f"spot-interruption in {zone}: its NAT is on-demand" in with_fis.stdout, with_fis.stdout


def test_a_trial_measures_the_lab_scenarios_from_its_probes(account):
    account.settle()
    zone = account.zones[0]
    before = account.whole()
    out = account.lab.run_dir / "trial-runs"
    done = account.trial("--yes", "--scenarios", "planned-refresh,killed", "--zones", zone, out=out)
    assert done.returncode == 0, done.stdout + done.stderr
    every = json.loads((out / "egress.json").read_text())
    rows = [r for r in every if r["hit"]]
    for r in rows:  # what the trial measured, for the log of the test run
        print(f"{r['scenario']} {r['zone']}: {r['probes']} probes, outage {r['outage_ms']} ms, {r['failed_over_probes']} failed over")
    assert [(r["scenario"], r["zone"]) for r in rows] == [("planned-refresh", zone), ("killed", zone)]
    others = [r for r in every if not r["hit"]]
    assert sorted({r["zone"] for r in others}) == sorted(account.zones[1:])  # every zone probed in every run
    for r in others:  # one zone's trouble stays that zone's
        assert r["failed"] == 0 and r["replaced"] == 0 and r["sources"] == [account.lab.world.zones[r["zone"]].eip], r
    eip = account.lab.world.zones[zone].eip
    for row in rows:
        assert row["hit"] and row["replaced"] == 1, row
        assert row["probes"] >= 20 * 4, row  # at least lead-in and tail at the lab's rate
        assert row["foreign_sources"] == 0 and row["ends_on_own_eip"], row
        assert eip in row["sources"], row
    refresh, killed = rows
    assert refresh["outage_ms"] <= 250, refresh  # the lab's goal for a planned refresh
    assert killed["outage_ms"] > 0, killed  # a NAT killed outside its group is an outage, measured
    assert killed["failed_over_probes"] > 0, killed  # failover on: a sibling's EIP carried the zone
    document = (out / "egress.md").read_text()
    assert "| planned-refresh | on |" in document and "| killed | on |" in document, document
    assert (out / f"egress/planned-refresh-{zone}.png").stat().st_size > 0
    after = account.whole()
    assert after[zone] not in (None, before[zone]), after  # on a new NAT of its own group, whole
    assert all(after[z] == before[z] for z in account.zones if z != zone), (before, after)
    assert not running(account.ssm(), account.probes) and not probers_alive()


def test_a_spot_interruption_goes_through_fault_injection_service_and_leaves_no_template(account):
    """With a role for FIS, the trial interrupts the Spot NAT as FIS does (the emulator carries the
    experiment out: EC2's warning, then the reclaim); the hook hands the zone over on the warning."""
    account.settle()
    zone = account.zones[1]
    group = account.lab.world.zones[zone]
    # The zone's group buys Spot (as the module's spot-with-fallback), and a refresh makes its NAT a Spot one.
    autoscaling = account.lab.emulator.client("autoscaling")
    buy_spot(autoscaling, group)
    autoscaling.start_instance_refresh(
        AutoScalingGroupName=group.name, Strategy="Rolling", Preferences={**REFRESH_PREFERENCES, "InstanceWarmup": 1}
    )
    before = account.whole()[zone]
    deadline = time.monotonic() + 90
    while account.whole()[zone] in (None, before) and time.monotonic() < deadline:
        time.sleep(0.5)
    nat = account.whole()[zone]
    [reservation] = account.lab.emulator.client("ec2").describe_instances(InstanceIds=[nat])["Reservations"]
    assert reservation["Instances"][0].get("InstanceLifecycle") == "spot", reservation
    out = account.lab.run_dir / "trial-spot"
    done = account.trial("--yes", "--scenarios", "spot-interruption", "--zones", zone, "--fis-role-arn", LAB_FIS_ROLE, out=out)
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = [r for r in json.loads((out / "egress.json").read_text()) if r["hit"]]
    print(f"spot-interruption {zone}: {row['probes']} probes, outage {row['outage_ms']} ms, {row['failed_over_probes']} failed over")
    assert row["replaced"] == 1 and row["foreign_sources"] == 0 and row["ends_on_own_eip"], row
    assert row["outage_ms"] <= 250, row  # warned: the zone is handed over before the reclaim
    fis = account.lab.emulator.client("fis")
    experiment = fis.get_experiment(id=row["seen"]["experiments"][zone]["experiment"])["experiment"]
    assert experiment["actions"]["interrupt"]["actionId"] == "aws:ec2:send-spot-instance-interruptions"
    assert not fis.list_experiment_templates()["experimentTemplates"]  # deleted when the trial ended


def test_an_interrupted_trial_stops_its_probes_and_leaves_every_zone_whole(account):
    account.settle()
    zone = account.zones[-1]
    old = account.whole()[zone]
    out = account.lab.run_dir / "trial-interrupted"
    trial = subprocess.Popen(
        account.command("--yes", "--scenarios", "killed", "--zones", zone, out=out),
        env=account.env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not running(account.ssm(), account.probes) and time.monotonic() < deadline and trial.poll() is None:
            time.sleep(0.5)
        assert running(account.ssm(), account.probes), "the trial's probes never ran"
        # The hard moment: the NAT just killed, still InService with the EIP and the routes until
        # its group's health check notices; the trial must wait for the replacement, not stop there.
        while account.lab.state.state_of(old) == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert account.lab.state.state_of(old) != "running", "the act never came"
        trial.send_signal(signal.SIGINT)
        output, _ = trial.communicate(timeout=300)
    finally:
        if trial.poll() is None:
            trial.kill()
    assert trial.returncode == 3, output
    assert "interrupted (SIGINT)" in output, output
    assert not running(account.ssm(), account.probes), "the probes still run after the trial"
    assert not probers_alive()
    assert all(account.whole().values()), account.whole()  # the trial waited for it
    assert "interrupted" in (out / "egress.md").read_text()


def test_a_second_trial_refuses_while_the_first_ones_probes_run(account):
    account.settle()
    first = Probes(account.ssm(), account.probes, "first-run", URL, 5.0, 1.0, 300.0)
    first.start("still running")
    try:
        done = account.trial("--yes")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "another trial's probes still run" in done.stderr, done.stderr
        assert "first-run" in done.stderr
    finally:
        first.stop()
    assert not running(account.ssm(), account.probes)


def test_bad_environments_are_refused_before_anything_is_touched(account, tmp_path):
    account.settle()
    real = json.loads(account.outputs.read_text())

    def refused(outputs: dict | None, *args: str) -> str:
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(outputs) if outputs is not None else "{}")
        done = subprocess.run(
            [sys.executable, "-m", "nat_lab.trial", "--outputs", str(path), "--out", str(tmp_path / "out"), *TIMING, "--yes", *args],
            env=account.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert not (tmp_path / "out").exists()
        return done.stderr

    assert "no environment deployed" in refused(None)
    no_probes = {**real, "egress_probe_instance_ids": {"value": {}}}
    assert "no egress probes" in refused(no_probes)
    assert "another account or region" in refused(real, "--region", "eu-west-1")
    unmanaged = json.loads(json.dumps(real))
    zone = account.zones[0]
    unmanaged["egress_probe_instance_ids"]["value"][zone] = account.lab.state.in_service(account.lab.world.zones[zone].name)[0]
    assert "not registered with SSM" in refused(unmanaged)
    # A zone not whole: its default route taken away (the hook's schedule puts it back later).
    ec2 = account.lab.emulator.client("ec2")
    [table] = account.lab.world.zones[zone].route_table_ids
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    try:
        assert f"{zone} is not healthy before the start" in refused(real)
    finally:
        account.bridge.reconcile_now()
        account.settle()
    assert not running(account.ssm(), account.probes)
