"""Lab NAT instances: each instance moto launches for a NAT group becomes a network namespace that
runs the group's user data (see boot.py), with IMDSv2 served inside it, and goes away with every
process in it when moto says the instance stopped running."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import netns

IMDS_ADDRESS = "169.254.169.254"
STANDINS = Path(__file__).resolve().parent / "standins"
TOOLS = Path(__file__).resolve().parents[2]


@dataclass
class Instance:
    id: str
    zone: str
    group: str
    ns: str
    private_ip: str
    directory: Path
    region: str
    public_ip: str | None = None
    boot: subprocess.Popen | None = None
    imds: ThreadingHTTPServer | None = None
    started: float = field(default_factory=time.monotonic)
    tokens: set[str] = field(default_factory=set)

    def console(self) -> str:
        path = self.directory / "console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def file(self, path: str) -> Path:
        """A file the instance wrote (its writable directories outlive it)."""
        return self.directory / "state" / path.lstrip("/")


class _Imds(BaseHTTPRequestHandler):
    """IMDSv2: PUT /latest/api/token first, then every GET carries the token; without one, 401."""

    server: ThreadingHTTPServer
    instance: Instance
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: str = "") -> None:
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._send(400)
        token = secrets.token_urlsafe(24)
        self.instance.tokens.add(token)
        self._send(200, token)

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") not in self.instance.tokens:
            return self._send(401)
        i = self.instance
        values = {
            "/latest/meta-data/instance-id": i.id,
            "/latest/meta-data/placement/region": i.region,
            "/latest/meta-data/placement/availability-zone": i.zone,
            "/latest/meta-data/local-ipv4": i.private_ip,
            "/latest/meta-data/public-ipv4": i.public_ip,
            "/latest/dynamic/instance-identity/document": json.dumps(
                {"instanceId": i.id, "region": i.region, "availabilityZone": i.zone, "privateIp": i.private_ip}
            ),
        }
        value = values.get(self.path.rstrip("/"))
        if value is None:
            return self._send(404)
        self._send(200, value)


def aws_standin(env: dict[str, str], region: str) -> str:
    """The `aws` stand-in: the real AWS CLI, run in the lab process's network and mount namespaces
    (the instance's own namespaces have no route to the emulator on the machine's loopback)."""
    aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    if aws is None:
        raise netns.LabError("the AWS CLI is missing: `make venv` installs it (awscli)")
    keep = {k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if k in env}
    assignments = " ".join(f"{k}={v}" for k, v in sorted(keep.items()))
    return (
        "#!/bin/bash\n"
        "# aws, stood in for a lab NAT instance: the real AWS CLI against the lab's emulator, run outside\n"
        "# the instance (its namespaces have no route to the emulator). Calls are logged to\n"
        "# /var/log/nat-lab/aws.log.\n"
        "mkdir -p /var/log/nat-lab\n"
        'echo "$(date +%s.%N) aws $*" >> /var/log/nat-lab/aws.log\n'
        f"exec /usr/bin/nsenter --net=/proc/{os.getpid()}/ns/net --mount=/proc/{os.getpid()}/ns/mnt -- "
        f"/usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp AWS_DEFAULT_REGION={region} AWS_EC2_METADATA_DISABLED=true "
        f'AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null {assignments} {aws} "$@"\n'
    )


class Instances:
    """The lab's NAT instances by id."""

    def __init__(
        self,
        registry: netns.Registry,
        run_dir: Path,
        api_env: dict[str, str],
        region: str,
        boot_env: dict[str, str] | None = None,
        boot_delay: float = 0.0,
    ):
        self.registry = registry
        self.run_dir = run_dir / "instances"
        self.api_env = api_env
        self.region = region
        self.boot_env = boot_env or {}
        self.boot_delay = boot_delay
        self.live: dict[str, Instance] = {}
        self.gone: dict[str, Instance] = {}
        self._teardowns: list[threading.Thread] = []
        self._lock = threading.Lock()

    def launch(self, instance_id: str, zone: str, group: str, private_ip: str, user_data: str, public_ip: str | None) -> Instance:
        """The namespace (the fabric connects it), IMDS inside it; `start` boots it."""
        directory = self.run_dir / instance_id
        (directory / "standins").mkdir(parents=True, exist_ok=True)
        for standin in STANDINS.iterdir():
            shutil.copy2(standin, directory / "standins" / standin.name)
        (directory / "standins" / "aws").write_text(aws_standin(self.api_env, self.region))
        (directory / "user-data").write_text(user_data)
        (directory / "environment").write_text("".join(f"{k}={v}\n" for k, v in sorted(self.boot_env.items())))
        ns = self.registry.add(instance_id)
        instance = Instance(instance_id, zone, group, ns, private_ip, directory, self.region, public_ip)
        netns.ip(ns, "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo")
        handler = type("Imds", (_Imds,), {"instance": instance})
        instance.imds = netns.call_in(ns, lambda: ThreadingHTTPServer((IMDS_ADDRESS, 80), handler))  # type: ignore[assignment]
        instance.imds.daemon_threads = True
        threading.Thread(target=instance.imds.serve_forever, name=f"imds-{instance_id}", daemon=True).start()
        with self._lock:
            self.live[instance_id] = instance
        return instance

    def start(self, instance: Instance) -> None:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(TOOLS)}
        instance.boot = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                instance.ns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                sys.executable,
                "-m",
                "nat_lab.lab.boot",
                str(instance.directory),
                str(self.boot_delay),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=open(instance.directory / "boot.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def terminate(self, instance_id: str, wait: bool = True) -> None:
        """The instance is gone: its processes are stopped and its namespace removed, in the
        background unless `wait` (the fabric has already cut it off)."""
        with self._lock:
            instance = self.live.pop(instance_id, None)
            if instance is None:
                return
            self.gone[instance_id] = instance
        teardown = threading.Thread(target=self._teardown, args=(instance,), name=f"teardown-{instance_id}", daemon=True)
        teardown.start()
        self._teardowns.append(teardown)
        if wait:
            teardown.join()

    def _teardown(self, instance: Instance) -> None:
        if instance.imds is not None:
            instance.imds.shutdown()
            instance.imds.server_close()
        self.registry.remove(instance.ns)  # every process in it first
        if instance.boot is not None:
            instance.boot.wait(timeout=5)

    def close(self) -> None:
        for instance_id in list(self.live):
            self.terminate(instance_id, wait=False)
        for teardown in self._teardowns:
            teardown.join(timeout=10)


def run_in(instance: Instance, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`cmd` inside a lab NAT instance: its network and mount namespaces and its root, with the PATH
    its user data had (entered through one of its processes, e.g. the self-check's watch or a timer)."""
    from .boot import PATH

    for pid in netns.pids(instance.ns):
        try:
            if os.readlink(f"/proc/{pid}/root") == "/":
                continue
        except OSError:
            continue
        nsenter = ["nsenter", "-t", str(pid), "-m", "-n", "-r", "-w", "--", "/usr/bin/env", "-i", f"PATH={PATH}"]
        proc = subprocess.run([*nsenter, *cmd], capture_output=True, text=True, timeout=timeout)
        if "No such process" not in proc.stderr:
            return proc
    raise netns.LabError(f"no process of instance {instance.id} to enter")
