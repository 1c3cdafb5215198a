"""The AWS emulator: the patched moto server (`nat_lab.moto_shims.server`) on a free loopback port,
started, proven and always stopped: the one way the tests, the demo, the benchmarks and the lab get it."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3

from .constants import REGION
from .moto_shims import WRITTEN_FOR, moto_version
from .process import Process, free_port

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def client_env(endpoint: str, credentials: dict[str, str] = CREDENTIALS) -> dict[str, str]:
    """Environment for a child process (the hook, terraform, cargo lambda, the AWS CLI) to reach the
    emulator at `endpoint` and nothing else: no profile, no instance metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=credentials["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=credentials["aws_secret_access_key"],
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


class MotoPatchError(RuntimeError):
    """The patched server stopped at start: a patch does not hold with the installed moto."""


class Endpoint:
    """A running patched moto server at `endpoint` (one `Moto` started, or one started by hand:
    `python -m nat_lab.moto_shims.server --port 5000`): its clients, its ledger, its environment."""

    def __init__(self, endpoint: str, data_plane: bool = False):
        self.endpoint = endpoint.rstrip("/")
        self.data_plane = data_plane

    def client(self, service: str, **credentials):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **(credentials or CREDENTIALS))

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10).read()

    def enforce_iam(self) -> None:
        """From now on every request is authenticated and authorized against IAM (moto-api
        `reset-auth`: INITIAL_NO_AUTH_ACTION_COUNT = 0 at run time)."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=10).read()

    def create_users(self, policies: dict[str, dict], **credentials) -> dict[str, dict]:
        """An IAM user per name with that inline policy document, created with `credentials` (an
        administrator's once IAM is enforced); returns each one's keys, as `client(...)` and
        `env(...)` take them."""
        iam = self.client("iam", **credentials)
        keys = {}
        for user, document in policies.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="policy", PolicyDocument=json.dumps(document))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        return keys

    def lifecycle_actions(self) -> dict:
        """The lifecycle stand-in's ledger (`nat_lab.moto_shims.lifecycle`): {"calls", "active"}.
        `calls`: every CompleteLifecycleAction, RecordLifecycleActionHeartbeat and heartbeat
        timeout, in order, each {"call", "group", "hook", "instance", "token", "result", "accepted",
        "error", "monotonic"}; `active`: the actions waiting, each {"group", "hook", "instance",
        "transition", "token", "seconds_left"}. Emptied by `reset()`."""
        with urllib.request.urlopen(f"{self.endpoint}/nat-lab/lifecycle-actions?region={REGION}", timeout=10) as answer:
            return json.loads(answer.read())

    def state(self, since: int = -1, wait: float = 0.0) -> dict:
        """The data plane's view of the emulator (`nat_lab.lab.motoserver.snapshot`), as soon as it is
        newer than generation `since`, or after `wait` seconds. Only with `data_plane`."""
        if not self.data_plane:
            raise RuntimeError("state() is the data-plane lab's feed: start Moto(data_plane=True)")
        url = f"{self.endpoint}/lab-api/state?since={since}&wait={wait}"
        with urllib.request.urlopen(url, timeout=wait + 10) as response:
            return json.loads(response.read())

    def spot_short(self, group: str, short: bool = True) -> None:
        """Spot capacity runs short for `group` (or is back): its Spot launches fail as Auto Scaling's
        do (`nat_lab.lab.motoserver`). Only with `data_plane`."""
        if not self.data_plane:
            raise RuntimeError("spot_short() is the data-plane lab's: start Moto(data_plane=True)")
        url = f"{self.endpoint}/lab-api/spot-short?group={urllib.parse.quote(group)}&short={int(short)}"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10):
            pass

    def ssm_hosts(self, hosts: dict[str, str]) -> None:
        """The lab's SSM-managed hosts: instance id -> network namespace, replacing the previous map
        ({} clears it). SSM Run Command on those instances runs in their namespaces
        (`nat_lab.lab.ssm_hosts`). Only with `data_plane`."""
        if not self.data_plane:
            raise RuntimeError("ssm_hosts() is the data-plane lab's: start Moto(data_plane=True)")
        request = urllib.request.Request(
            f"{self.endpoint}/lab-api/ssm-hosts",
            data=json.dumps(hosts).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def env(self, **credentials) -> dict[str, str]:
        """Environment for a child process (the hook, terraform, cargo lambda) to use this emulator."""
        return client_env(self.endpoint, credentials or CREDENTIALS)


class Moto(Endpoint):
    """The patched moto server (fidelity fixes, Auto Scaling's lifecycle hooks; `nat_lab.moto_shims`)
    on a free loopback port, logging to `log_dir`. It is returned once the server has checked every
    patch (`/nat-lab/ready`); a patch that does not hold raises MotoPatchError naming the moto
    version and the patch. `env()` gives what a child process needs to reach it.

    `data_plane`: the lab's emulator (`nat_lab.lab.motoserver`): temporary public IPs, the groups'
    health check after `health_check_seconds`, and `state()`, the feed the fabric follows."""

    READY_SECONDS = 60.0  # moto's import and the self-check take 2-5 s; a loaded CI machine more

    def __init__(
        self,
        log_dir: Path | None = None,
        data_plane: bool = False,
        health_check_seconds: float = 0.0,
        spot_notice_seconds: float | None = None,
    ):
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}", data_plane)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["LAB_HEALTH_CHECK_SECONDS"] = str(health_check_seconds)
        if spot_notice_seconds is not None:  # EC2's two minutes of Spot notice, shortened for the lab
            env["LAB_SPOT_NOTICE_SECONDS"] = str(spot_notice_seconds)
        argv = [sys.executable, "-m", "nat_lab.moto_shims.server", "--port", str(self.port)] + (["--data-plane"] if data_plane else [])
        log_dir = log_dir or Path(os.environ.get("NAT_LAB_LOGS", "/tmp"))
        self.process = Process(argv, env, log_dir / f"moto-{'lab-' if data_plane else ''}{self.port}.log")
        self.log_path = self.process.log_path
        try:
            self._wait_ready()
        except Exception:
            self.process.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.process.log_tail()
                if self.process.returncode == 3:
                    raise MotoPatchError(next((line for line in reversed(tail.splitlines()) if "does not hold" in line), tail))
                raise RuntimeError(f"the moto server exited with {self.process.returncode} at start; {self.log_path}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/nat-lab/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"the moto server (moto {moto_version()}, patches written for {WRITTEN_FOR}) did not finish checking its patches "
            f"in {self.READY_SECONDS:.0f}s; {self.log_path}:\n{self.process.log_tail()}"
        )

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
