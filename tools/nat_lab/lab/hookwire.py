"""The hook under test, wired as in AWS: the real binary served by `cargo lambda watch`, reaching
the emulator through the latency proxy (the round trip to a real AWS endpoint). The proxy forwards
everything, CompleteLifecycleAction included: the emulator's lifecycle shim answers it, and a
terminating instance goes only once its action is completed."""

from __future__ import annotations

import json
from pathlib import Path

from ..hook import LambdaWatch
from ..moto import Moto
from ..proxy import Proxy
from .eventbridge import Function


class Hook:
    def __init__(self, emulator: Moto, config: dict, log_dir: Path, latency: float, binary: Path | None = None):
        self.emulator = emulator
        self.proxy = Proxy(emulator.endpoint, latency=latency)
        self.watch = None
        try:
            self.watch = LambdaWatch(self.proxy.env(emulator.env()), json.dumps(config), log_dir, binary=binary)
        except Exception:
            self.proxy.stop()
            raise
        self.function = Function(self.watch)

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        self.proxy.stop()
