"""The lab, assembled: the emulator, the world, the fabric, the echo, the private hosts, the NAT
instances, and one follower thread that makes the data plane follow the emulator.

The follower long-polls the emulator's snapshot (it answers as soon as anything changed) and, in
this order: boots a namespace for every instance a NAT group launched, tears down the namespace of
every instance that stopped running, makes the fabric's routes, 1:1 NAT and source/dest checks what
the snapshot says, tells each instance's IMDS its public address, records what changed (for the
timelines), and hands the snapshot to the listeners (the EventBridge stand-in).

`Lab` is a context manager; whatever happens, `close()` stops everything it started and removes
every namespace it made (also at interpreter exit, and the next lab sweeps a crashed one's).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import userdata
from ..constants import REGION, ZONES
from ..moto import Moto
from ..state import Snapshot, SnapshotInstance
from . import netns
from . import world as lab_world
from .fabric import CHECK_ADDRESSES, LIVE, Fabric
from .instance import Instances
from .streams import Stream, StreamClients, StreamService
from .traffic import Echo, Prober


@dataclass
class Settings:
    """The model's parameters (all reported with the results)."""

    zones: tuple[str, ...] = ZONES
    probe_rate: float = 20.0  # new connections per second per zone
    probe_timeout: float = 1.0
    event_delay: float = 1.0  # EventBridge delivery delay, seconds
    api_latency: float = 0.05  # added to every AWS request the hook makes, seconds
    schedule_seconds: float = 20.0  # the reconcile rule's period in the lab (rate(5 minutes) in AWS)
    health_check_seconds: float = 10.0  # how long a group takes to notice an instance that stopped running
    spot_notice: float = 20.0  # EC2's two minutes of Spot interruption notice, shortened
    refresh_warmup: float = 5.0  # an instance refresh keeps the old instance this long after the new one is InService
    self_check_interval_seconds: int | None = None  # module variable; None: the module's default
    unhealthy_after: int | None = None  # module variable; None: the module's default
    launch_attempts: int = 5  # nat-self-check's LAUNCH_ATTEMPTS (90 s of retries in AWS: 18 x 5 s)
    launch_retry_seconds: float = 1.0  # nat-self-check's LAUNCH_RETRY_SECONDS
    boot_delay: float = 5.0  # seconds an instance "boots" before its user data runs (EC2: tens of seconds)
    max_seconds: float = 900.0  # the probes' hard bound
    streams: int = 20  # long-lived connections of each kind (client-led, server-led) per zone, for the whole run

    def module_settings(self, check_ip_urls: list[str]) -> dict[str, object]:
        found: dict[str, object] = {"check_ip_urls": check_ip_urls}
        if self.self_check_interval_seconds is not None:
            found["self_check_interval_seconds"] = self.self_check_interval_seconds
        if self.unhealthy_after is not None:
            found["unhealthy_after"] = self.unhealthy_after
        return found


@dataclass
class Change:
    at: float
    kind: str  # launch, lifecycle, gone, route, eip (the follower); act, action (a scenario); lab-error
    zone: str
    detail: str


@dataclass
class Timeline:
    changes: list[Change] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, at: float, kind: str, zone: str, detail: str) -> None:
        with self._lock:
            self.changes.append(Change(at, kind, zone, detail))

    def since(self, at: float) -> list[Change]:
        with self._lock:
            return [c for c in self.changes if c.at >= at]


class Lab:
    def __init__(
        self,
        run_dir: Path,
        settings: Settings | None = None,
        module: Path | None = None,
        user_data: dict[str, str] | None = None,
        transform=None,
    ):
        """`user_data` replaces zones' rendered scripts; `transform(zone, script) -> script` rewrites
        them (the broken variants)."""
        reason = netns.unavailable()
        if reason:
            raise netns.LabError(reason)
        self.settings = settings or Settings()
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        self.timeline = Timeline()
        self.listeners: list = []  # called with (previous, state), two Snapshots, after every change the fabric followed
        self.on_boot: list = []  # called with (instance id, zone) when an instance's namespace is up
        self.state = Snapshot()
        self._routes: dict[str, str] = {}  # zone -> the fabric's default route target
        self._eips: dict[str, str | None] = {}  # zone -> the instance holding its EIP
        self.registry = netns.Registry()
        self._stop = threading.Event()
        self._closed = False
        self.emulator: Moto | None = None
        self.echo: Echo | None = None
        self.checks: list[Echo] = []  # the NATs' check endpoints, apart from the probes' echo
        self.probers: dict[str, Prober] = {}
        self.stream_service: StreamService | None = None
        self.stream_clients: dict[str, StreamClients] = {}
        self.streams: dict[str, list[Stream]] = {}  # the last run's long-lived connections, by zone
        self.streams_ended = 0.0
        self.instances: Instances | None = None
        self._follower: threading.Thread | None = None
        atexit.register(self.close)
        self._previous_sigterm = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            netns.sweep()
            self._start(module, user_data, transform)
        except BaseException:
            self.close()
            raise

    def clock(self) -> float:
        return time.monotonic() - self.t0

    def _on_sigterm(self, *_):
        raise SystemExit(143)

    def _start(self, module, user_data, transform) -> None:
        s = self.settings
        self.emulator = Moto(
            self.run_dir / "logs", data_plane=True, health_check_seconds=s.health_check_seconds, spot_notice_seconds=s.spot_notice
        )
        self.world = lab_world.seed_network(self.emulator, s.zones)
        self.fabric = Fabric(self.registry, self.world.vpc_id, self.world.vpc_cidr)
        self.echo = Echo(self.fabric.inet, self.clock)
        self.checks = [Echo(self.fabric.inet, self.clock, address) for address in CHECK_ADDRESSES]
        self.stream_service = StreamService(self.fabric.inet)
        urls = [c.url for c in self.checks]
        plans = lab_world.plan_module(self.emulator, self.world, self.run_dir, s.module_settings(urls), module=module)
        scripts = {z: (user_data or {}).get(z, p.user_data) for z, p in plans.items()}
        logs = self.emulator.client("logs")
        for zone in self.world.zones.values():  # the module's log group per NAT group (the lab plans, never applies)
            logs.create_log_group(logGroupName=nat_log_group(zone.name))
        if transform is not None:
            scripts = {z: transform(z, text) for z, text in scripts.items()}
        self.instances = Instances(
            self.registry,
            self.run_dir,
            self.emulator.env(),
            REGION,
            boot_env={"LAUNCH_ATTEMPTS": str(s.launch_attempts), "LAUNCH_RETRY_SECONDS": str(s.launch_retry_seconds)},
            boot_delay=s.boot_delay,
        )
        for zone in self.world.zones.values():
            ns = self.registry.add(f"host-{zone.zone[-1]}")
            self.fabric.attach(f"host:{zone.zone}", ns, zone.host_ip, zone.private_cidr, zone.private_subnet)
        self.state_file = self.write_state_file(self.run_dir / "lab-state.tsv")
        self.state = Snapshot.parse(self.emulator.state())
        self._follower = threading.Thread(target=self._follow, name="follower", daemon=True)
        self._follower.start()
        lab_world.launch_groups(self.emulator, self.world, plans, scripts)

    def write_state_file(self, path: Path) -> Path:
        """What `scripts/verify_nat.sh --lab FILE` reads: the check-IP URL, and per zone its private
        host's namespace and its EIP (tab-separated)."""
        lines = [f"check_ip_url\t{self.echo.url}"]
        lines += [f"zone\t{z.zone}\t{self.registry.prefix}host-{z.zone[-1]}\t{z.eip}" for z in self.world.zones.values()]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    # --- probes -----------------------------------------------------------------------------------

    def start_probes(self) -> None:
        s = self.settings
        for zone in self.world.zones.values():
            ns = self.registry.prefix + f"host-{zone.zone[-1]}"
            self.probers[zone.zone] = Prober(ns, zone.zone, self.clock, s.probe_rate, s.probe_timeout, s.max_seconds)
            if s.streams:
                self.stream_clients[zone.zone] = StreamClients(ns, zone.zone, self.clock, s.streams)

    def stop_probes(self) -> dict:
        found = {}
        for prober in self.probers.values():
            prober.halt()  # every zone's last probe at the same time
        self.streams_ended = self.clock()
        self.streams = {zone: clients.stop() for zone, clients in self.stream_clients.items()}
        self.stream_clients = {}
        for zone, prober in self.probers.items():
            prober.stop()
            found[zone] = prober.snapshot()
        self.probers = {}
        return found

    def probes_now(self) -> dict[str, list]:
        """Every zone's probes so far while they run (copies; a probe still open has `end == 0`):
        what a live view reads, without stopping them."""
        return {zone: prober.snapshot() for zone, prober in dict(self.probers).items()}

    # --- following the emulator -------------------------------------------------------------------

    def _follow(self) -> None:
        generation = self.state.generation
        while not self._stop.is_set():
            try:
                state = Snapshot.parse(self.emulator.state(since=generation, wait=0.5))
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.1)
                continue
            if state.generation == generation:
                continue
            generation = state.generation
            try:
                self._apply(state)
            except Exception as exc:  # recorded; the next change tries again
                self.timeline.add(self.clock(), "lab-error", "", repr(exc))

    def _apply(self, state: Snapshot) -> None:
        previous = self.state
        for instance_id, instance in state.instances.items():
            group = state.group_of(instance_id) or self._former_group(instance_id)
            zone = self.world.groups.get(group or "")
            if zone is None:
                continue
            known = instance_id in self.instances.live or instance_id in self.instances.gone
            if instance.state in LIVE and not known:
                self._boot(instance_id, instance, zone, state)
            elif instance.state not in LIVE and instance_id in self.instances.live:
                self.fabric.detach(instance_id)
                self.instances.terminate(instance_id, wait=False)
                self.timeline.add(self.clock(), "gone", zone.zone, instance_id)
        view = self.fabric.follow(state)
        for instance_id, live in list(self.instances.live.items()):
            live.public_ip = state.public_ip(instance_id)
        self._record(previous, state, view)
        self.state = state
        for listener in list(self.listeners):
            listener(previous, state)

    def _former_group(self, instance_id: str) -> str | None:
        for instance in (self.instances.live.get(instance_id), self.instances.gone.get(instance_id)):
            if instance is not None:
                return instance.group
        return None

    def _boot(self, instance_id: str, instance: SnapshotInstance, zone, state: Snapshot) -> None:
        encoded = self.emulator.client("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        script = userdata.decode(encoded.get("UserData", {}).get("Value", ""))
        booted = self.instances.launch(instance_id, zone.zone, zone.name, instance.private_ip, script, state.public_ip(instance_id))
        self.fabric.attach(instance_id, booted.ns, instance.private_ip, zone.public_cidr, zone.public_subnet, instance=instance_id)
        for callback in list(self.on_boot):
            callback(instance_id, zone.zone)
        self.instances.start(booted)
        self.timeline.add(self.clock(), "launch", zone.zone, instance_id)

    def _record(self, previous: Snapshot, state: Snapshot, view) -> None:
        now = self.clock()
        for zone in self.world.zones.values():
            [table] = zone.route_table_ids
            target = view.routes.get(table, "none")
            if self._routes.get(zone.zone) != target:
                self._routes[zone.zone] = target
                self.timeline.add(now, "route", zone.zone, target)
            holder = state.eip_holder(zone.eip_allocation_id)
            if self._eips.get(zone.zone, "unset") != holder:
                self._eips[zone.zone] = holder
                self.timeline.add(now, "eip", zone.zone, holder or "none")
            for instance_id, member in state.members(zone.name).items():
                if member.lifecycle != previous.lifecycle(zone.name, instance_id):
                    self.timeline.add(now, "lifecycle", zone.zone, f"{instance_id} {member.lifecycle}")

    # --- reading ----------------------------------------------------------------------------------

    def wait(self, predicate, timeout: float) -> bool:
        """Wait until `predicate(state)` holds for the fabric's latest state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.state):
                return True
            time.sleep(0.05)
        return bool(predicate(self.state))

    def in_service(self, zone: str) -> list[str]:
        return self.state.in_service(self.world.zones[zone].name)

    # --- the end ----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for prober in self.probers.values():
            prober.stop()
        if self._follower is not None:
            self._follower.join(timeout=5)
        if self.instances is not None:
            self.instances.close()
        with self.timeline._lock:
            changes = list(self.timeline.changes)
        (self.run_dir / "timeline.txt").write_text("".join(f"{c.at:9.3f} {c.kind:9} {c.zone:11} {c.detail}\n" for c in changes))
        for clients in self.stream_clients.values():
            clients.stop()
        for server in [self.echo, *self.checks, self.stream_service]:
            if server is not None:
                server.stop()
        self.registry.close()
        if self.emulator is not None:
            self.emulator.stop()
        atexit.unregister(self.close)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def nat_log_group(group: str) -> str:
    """The nat-instance module's log group of a NAT group (its local.log_group_name)."""
    return f"/nat-asg-hook/nat/{group}"


def default_module() -> Path:
    override = os.environ.get("NAT_LAB_MODULE")
    return Path(override) if override else lab_world.MODULE
