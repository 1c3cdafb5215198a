"""The AWS emulator: moto server on a free loopback port, started and always stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .moto_shims import SITE
from .moto_shims import lifecycle as lifecycle_shim

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
LIFECYCLES = ("lenient", "hooks")
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class ServerProcess:
    """An emulator server on a free loopback port, in its own session, logging to `log_dir`: started
    by `_start`, always stopped (`stop`, or leaving the `with` block). Shared by `Moto` and the lab's
    emulator."""

    def _start(self, argv: list[str], env: dict[str, str], log_dir: Path, port: int, log_name: str) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / log_name
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_for_port(port, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def client(self, service: str, **credentials):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **(credentials or CREDENTIALS))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Moto(ServerProcess):
    """A moto server process, with nat_lab's patches loaded (`nat_lab.moto_shims`: fidelity fixes,
    and the Auto Scaling lifecycle actions moto lacks). `env()` gives what a child process needs to
    reach it.

    `lifecycle`: "lenient" (moto's own lifecycle: instances InService at once; a lifecycle action can
    be completed once per instance and hook) or "hooks" (Auto Scaling's: launch and terminate hooks
    hold instances in Pending:Wait / Terminating:Wait until CompleteLifecycleAction or the heartbeat
    timeout). `lifecycle_actions()` returns what was completed and what is waiting."""

    def __init__(self, log_dir: Path | None = None, extra_env: dict[str, str] | None = None, lifecycle: str = "lenient"):
        if lifecycle not in LIFECYCLES:
            raise ValueError(f"lifecycle must be one of {LIFECYCLES}, not {lifecycle!r}")
        self.lifecycle = lifecycle
        port = free_port()
        env = {**os.environ, **(extra_env or {})}
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SITE)]
        env["PYTHONPATH"] = os.pathsep.join([str(SITE), *paths])
        env[lifecycle_shim.MODE_ENV] = lifecycle
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        self._start(argv, env, log_dir or Path(os.environ.get("NAT_LAB_LOGS", "/tmp")), port, f"moto-{port}.log")

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

    def lifecycle_actions(self, **credentials) -> dict:
        """The lifecycle stand-in's ledger (`nat_lab.moto_shims.lifecycle`): {"mode", "calls",
        "active"}. `calls`: every CompleteLifecycleAction, RecordLifecycleActionHeartbeat and
        heartbeat timeout, in order, each {"call", "group", "hook", "instance", "token", "result",
        "accepted", "error", "monotonic"}; `active`: the actions waiting, each {"group", "hook",
        "instance", "transition", "token", "seconds_left"}. Emptied by `reset()`."""
        creds = credentials or CREDENTIALS
        body = urllib.parse.urlencode({"Action": lifecycle_shim.LISTING, "Version": "2011-01-01"})
        request = AWSRequest(
            method="POST", url=f"{self.endpoint}/", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        SigV4Auth(Credentials(creds["aws_access_key_id"], creds["aws_secret_access_key"]), "autoscaling", REGION).add_auth(request)
        signed = urllib.request.Request(request.url, data=body.encode(), headers=dict(request.headers.items()), method="POST")
        with urllib.request.urlopen(signed, timeout=10) as answer:
            return json.loads(answer.read())

    def env(self, **credentials) -> dict[str, str]:
        """Environment for a child process (the hook, terraform, cargo lambda) to use this emulator."""
        return client_env(self.endpoint, credentials or CREDENTIALS)
