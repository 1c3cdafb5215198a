"""The hook under test, wired as in AWS: the real binary served by `cargo lambda watch`, reaching
the emulator through the latency proxy (the round trip to a real AWS endpoint).

The proxy answers `CompleteLifecycleAction` itself (moto has no such call) instead of forwarding
it; the lab's emulator does implement it, and a terminating instance only goes once its action is
completed. So every completion the proxy answered with success is relayed to the emulator, which
is then what AWS would have done with it. (A completion the emulator already saw is refused there
as a repeat; nothing else changes.)
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ..hook import LambdaWatch
from ..proxy import Proxy
from .emulator import Emulator
from .eventbridge import Function


class Hook:
    def __init__(self, emulator: Emulator, config: dict, log_dir: Path, latency: float, binary: Path | None = None):
        self.emulator = emulator
        self.proxy = Proxy(emulator.endpoint, latency=latency)
        self.watch = None
        self._stop = threading.Event()
        self.relayed: list[dict] = []
        try:
            self.watch = LambdaWatch(self.proxy.env(emulator.env()), json.dumps(config), log_dir, binary=binary)
        except Exception:
            self.proxy.stop()
            raise
        self.function = Function(self.watch)
        self._relay = threading.Thread(target=self._relay_completions, name="relay", daemon=True)
        self._relay.start()

    def _relay_completions(self) -> None:
        autoscaling = self.emulator.client("autoscaling")
        handled: set[int] = set()
        while not self._stop.wait(0.05):
            for index, record in enumerate(self.proxy.since(0)):
                if index in handled or record.end == 0.0:
                    continue  # not answered yet: next time
                handled.add(index)
                if record.action != "CompleteLifecycleAction" or record.status != 200:
                    continue
                p = record.params
                args = {
                    "AutoScalingGroupName": p.get("AutoScalingGroupName", ""),
                    "LifecycleHookName": p.get("LifecycleHookName", ""),
                    "LifecycleActionResult": p.get("LifecycleActionResult", "CONTINUE"),
                }
                if p.get("InstanceId"):
                    args["InstanceId"] = p["InstanceId"]
                if p.get("LifecycleActionToken"):
                    args["LifecycleActionToken"] = p["LifecycleActionToken"]
                try:
                    autoscaling.complete_lifecycle_action(**args)
                    self.relayed.append(args)
                except autoscaling.exceptions.ClientError:
                    pass  # already completed there (a proxy that forwards), or a repeat

    def stop(self) -> None:
        self._stop.set()
        self._relay.join(timeout=2)
        if self.watch is not None:
            self.watch.stop()
        self.proxy.stop()
