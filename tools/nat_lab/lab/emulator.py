"""The lab's moto server process (see motoserver.py): started on a free loopback port, always stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3

from ..moto import CREDENTIALS, client_env, free_port, wait_for_port
from ..moto_shims import SITE
from .motoserver import REGION


class Emulator:
    def __init__(self, log_dir: Path, health_check_seconds: float = 0.0):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"moto-lab-{self.port}.log"
        self._log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # motoserver installs nat_lab's moto patches itself: never twice through sitecustomize.
        env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SITE))
        env["LAB_HEALTH_CHECK_SECONDS"] = str(health_check_seconds)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nat_lab.lab.motoserver", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **CREDENTIALS)

    def env(self) -> dict[str, str]:
        """For a child process (the hook, the AWS CLI) to use this emulator."""
        return client_env(self.endpoint)

    def state(self, since: int = -1, wait: float = 0.0) -> dict:
        """The data plane's view of the emulator (motoserver.snapshot), as soon as it is newer than
        generation `since`, or after `wait` seconds."""
        url = f"{self.endpoint}/lab-api/state?since={since}&wait={wait}"
        with urllib.request.urlopen(url, timeout=wait + 10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
