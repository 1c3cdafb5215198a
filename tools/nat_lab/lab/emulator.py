"""The lab's moto server process (see motoserver.py): started on a free loopback port, always stopped."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

from ..moto import ServerProcess, client_env, free_port
from ..moto_shims import SITE


class Emulator(ServerProcess):
    def __init__(self, log_dir: Path, health_check_seconds: float = 0.0):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # motoserver installs nat_lab's moto patches itself: never twice through sitecustomize.
        env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SITE))
        env["LAB_HEALTH_CHECK_SECONDS"] = str(health_check_seconds)
        self._start([sys.executable, "-m", "nat_lab.lab.motoserver", str(port)], env, log_dir, port, f"moto-lab-{port}.log")

    def env(self) -> dict[str, str]:
        """For a child process (the hook, the AWS CLI) to use this emulator."""
        return client_env(self.endpoint)

    def state(self, since: int = -1, wait: float = 0.0) -> dict:
        """The data plane's view of the emulator (motoserver.snapshot), as soon as it is newer than
        generation `since`, or after `wait` seconds."""
        url = f"{self.endpoint}/lab-api/state?since={since}&wait={wait}"
        with urllib.request.urlopen(url, timeout=wait + 10) as response:
            return json.loads(response.read())
