"""The demo's last part, "Live egress": the data-plane lab's world (this package: three zones,
each NAT instance a network namespace running the module's real user data, the hook with failover
on behind the EventBridge stand-in) and two stories told there while every zone's private host
probes the echo service at 20 new connections a second: a planned instance refresh in the first
zone, and the NAT of the second zone killed (its zone goes to a sibling's NAT, then its replacement
takes it back).

About once a second it prints what happened in the world since the last line (launches, routes, EIP
moves) and one line per zone: probes sent and failed so far in the story, and the source address(es)
the echo saw in that second, labelled `own EIP`, `sibling's EIP (<zone>)` or `FOREIGN`.

Root only (network namespaces): elsewhere the demo says it skips this part and why.
"""

from __future__ import annotations

import threading
import time

from .. import hook as hook_lab
from . import netns
from .core import Lab, Settings, default_module
from .eventbridge import EventBridge
from .hookwire import Hook
from .report import measure
from .scenarios import SCENARIOS, execute, hook_config, settle

# Short, for the demo's time: a 3 s boot still outlasts the 1 s event delay (a replacement is never
# InService before the event about the NAT it replaces arrives), and the group notices a dead
# instance after 5 s instead of EC2's tens of seconds.
SETTINGS = Settings(boot_delay=3.0, refresh_warmup=2.0, schedule_seconds=10.0, health_check_seconds=5.0)
TICK = 1.0
# What the world does that the audience should see between the probe lines.
SHOWN = {"action": "", "launch": "launched", "gone": "gone", "route": "default route →", "eip": "EIP on"}


def skipped() -> str | None:
    """Why the live part cannot run here, or None."""
    return netns.unavailable()


class Ticker:
    """Prints, about once a second while a story runs, the world's changes and each zone's probes."""

    def __init__(self, lab: Lab, say):
        self.lab = lab
        self.say = say
        self.eips = {z.eip: name for name, z in lab.world.zones.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-egress", daemon=True)

    def label(self, zone: str, source: str) -> str:
        owner = self.eips.get(source)
        if owner == zone:
            return f"{source} own EIP"
        if owner is not None:
            return f"{source} sibling's EIP ({owner})"
        return f"{source} FOREIGN"

    def nat(self, instance: str) -> str:
        known = self.lab.instances.live.get(instance) or self.lab.instances.gone.get(instance)
        return f"{instance} ({known.zone}'s NAT)" if known else instance

    def __enter__(self) -> Ticker:
        self.started = self.lab.clock()
        self.last = self.started
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            self.tick()

    def tick(self) -> None:
        now = self.lab.clock()
        stamp = f"t={now - self.started:4.0f}s"
        for change in self.lab.timeline.since(self.last):
            if change.kind in SHOWN:
                verb = SHOWN[change.kind]
                what = self.nat(change.detail) if change.kind in ("route", "eip") else change.detail
                self.say(f"   {stamp}  ▸ {change.zone or 'lab'}: {' '.join(x for x in (verb, what) if x)}")
        for zone, probes in sorted(self.lab.probes_now().items()):
            failed = sum(1 for p in probes if p.end and not p.ok)
            recent = sorted({p.source for p in probes if p.ok and p.end > self.last})
            seen = ", ".join(self.label(zone, s) for s in recent) or "no answer"
            self.say(f"   {stamp}  {zone}  sent {len(probes):4}  failed {failed:3}  source {seen}")
            stamp = " " * len(stamp)
        self.last = now


def tell(demo, run_dir) -> None:
    """The part, with `demo`'s say/heading/check; everything it starts stops inside its context
    managers, also when a check fails or something raises."""
    binary = hook_lab.hook_bin()
    started = time.monotonic()
    with Lab(run_dir, SETTINGS, module=default_module()) as lab:
        zones = list(lab.world.zones)
        first, second = zones[0], zones[1]
        demo.say(f"   {len(zones)} zones in network namespaces; each NAT runs the module's real user data; echo at {lab.echo.url}")
        demo.say("   " + "; ".join(f"{name} EIP {z.eip}" for name, z in lab.world.zones.items()))
        hook = Hook(lab.emulator, hook_config(lab, True), run_dir / "logs", SETTINGS.api_latency, binary)
        bridge = EventBridge(lab, hook.function, SETTINGS.event_delay, SETTINGS.schedule_seconds)
        bridge.start_schedule()
        rows: list[dict] = []
        try:
            up = settle(lab, bridge)
            demo.check(up, f"every zone on its own NAT, EIP and route ({lab.clock():.0f}s after the lab started)")
            if not up:
                return
            stories = [
                (f"a planned instance refresh in {first}", "planned-refresh", first),
                (f"the NAT in {second} is killed; its zone goes to a sibling, then its replacement takes it back", "killed", second),
            ]
            for title, name, zone in stories:
                demo.say()
                demo.say(f"   Live story: {title}")
                if not settle(lab, bridge):
                    demo.check(False, f"the world is whole before {name}")
                    continue
                with Ticker(lab, demo.say):
                    done, probes = execute(lab, bridge, SCENARIOS[name], failover=True, hook=True, zones=[zone])
                found = {r["zone"]: r for r in measure(lab, done, probes, str(binary))}
                rows += found.values()
                hit = found[zone]
                if name == "planned-refresh":
                    demo.check(hit["sources"] == [lab.world.zones[zone].eip], f"{zone} left only through its own EIP during the refresh")
                else:
                    over = hit["failed_over_probes"]
                    demo.check(over > 0, f"{zone} kept leaving through a sibling's EIP ({over} probes) until its replacement took it back")
                astray = [r["zone"] for r in found.values() if not r["ends_on_own_eip"]]
                demo.check(not astray, "every zone ended the story on its own EIP" + (f"; not {', '.join(astray)}" if astray else ""))
        finally:
            bridge.stop()
            hook.stop()
    foreign = sum(r["foreign_sources"] for r in rows)
    demo.check(bool(rows) and foreign == 0, f"foreign sources: {foreign} (no probe ever left with an address that is not a zone's EIP)")
    for zone in zones:
        mine = [r for r in rows if r["zone"] == zone]
        if mine:
            worst = max(mine, key=lambda r: r["outage_ms"])
            probes = sum(r["probes"] for r in mine)
            failed = sum(r["failed"] for r in mine)
            demo.say(f"   {zone}: {probes} probes, {failed} failed; longest outage {worst['outage_ms']} ms ({worst['scenario']})")
    demo.say(f"   live egress took {time.monotonic() - started:.0f}s; everything it started is stopped")
