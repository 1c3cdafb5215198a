"""The trial's probes: per zone, its egress probe instance (the root stack's `egress_probe`) opens a
new HTTP(S) request to a check-IP URL at the lab's rate and records, for each, when it started and
ended, whether it succeeded and the address the service saw. Everything goes through SSM Run
Command (`AWS-RunShellScript`), the probe's only way in:

- start: one command per probe that runs the prober in the foreground (python3, the standard
  library only) and lasts as long as it does. The prober writes every probe to a file on the
  instance as it ends, so the probes survive their own zone's outage, when the SSM agent cannot
  reach SSM either: the command goes on, and says so once egress is back;
- stop: a second command leaves a stop file next to the log; the prober finishes its open probes
  and ends, and so does the first command (cancelled when it does not, after its timeout);
- collect: the log, gzip-compressed and base64-encoded, in chunks under Run Command's 24,000
  characters of output.

While a trial's probing command runs, a probe instance lists it (ListCommands, status InProgress,
comment `COMMENT`): that is how a second trial finds a first one still running.
"""

from __future__ import annotations

import base64
import gzip
import shlex
import time
from dataclasses import dataclass, field

from ..lab.traffic import Probe

COMMENT = "nat-asg-hook aws-trial"
DIRECTORY = "/var/tmp/nat-asg-hook-trial"
CHUNK = 20_000  # characters of base64 per collect (Run Command keeps the first 24,000)
DOCUMENT = "AWS-RunShellScript"
ENDED = ("Success", "Failed", "Cancelled", "TimedOut", "DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable", "Terminated")

# The prober, as the probe instance runs it: python3 PROBER LOG URL RATE TIMEOUT MAX_SECONDS.
# A line per probe: seq, start and end (epoch seconds), 1 or 0, the address seen (or -), the error
# (or -); `END` when it stopped. A probe that took longer than TIMEOUT in all failed, as in the lab.
PROBER = r"""
import ipaddress, os, signal, sys, threading, time, urllib.request

log, url, rate, timeout, most = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
lock = threading.Lock()
out = open(log, "a", buffering=1)


def probe(seq, start):
    ok, source, error = 0, "-", "-"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = answer.read(64).decode("ascii", "replace").strip()
        ipaddress.IPv4Address(body)
        ok, source = 1, body
    except Exception as exc:
        error = type(exc).__name__
    end = time.time()
    if ok and end - start > timeout:
        ok, error = 0, "slow"
    with lock:
        out.write(f"{seq} {start:.4f} {end:.4f} {ok} {source} {error}\n")


began, seq, open_ = time.monotonic(), 0, []
while not stop.is_set() and not os.path.exists(log + ".stop") and time.monotonic() - began < most:
    thread = threading.Thread(target=probe, args=(seq, time.time()), daemon=True)
    thread.start()
    open_ = [t for t in open_ if t.is_alive()] + [thread]
    seq += 1
    stop.wait(max(0.0, began + seq / rate - time.monotonic()))
for thread in open_:
    thread.join(timeout + 1)
with lock:
    out.write("END\n")
"""


def log_path(run_id: str, zone: str) -> str:
    return f"{DIRECTORY}/{run_id}-{zone}.log"


def start_lines(run_id: str, zone: str, url: str, rate: float, timeout: float, most: float) -> list[str]:
    """The shell lines of the probing command (one probe instance)."""
    log = log_path(run_id, zone)
    prober = f"{DIRECTORY}/prober-{run_id}-{zone}.py"
    return [
        "set -eu",
        f"mkdir -p {DIRECTORY}",
        f"rm -f {log} {log}.stop",
        f"cat > {prober} <<'NAT_ASG_HOOK_PROBER'",
        *PROBER.strip("\n").splitlines(),
        "NAT_ASG_HOOK_PROBER",
        f"exec python3 {prober} {log} {shlex.quote(url)} {rate} {timeout} {most}",
    ]


def stop_lines(run_id: str, zone: str) -> list[str]:
    return [f"mkdir -p {DIRECTORY}", f"touch {log_path(run_id, zone)}.stop"]


def collect_lines(run_id: str, zone: str, offset: int) -> list[str]:
    """A chunk of the log's frozen copy (made at the first chunk, so a prober still writing changes
    nothing between chunks), gzip (fixed mtime: the same bytes at every call) then base64."""
    log = log_path(run_id, zone)
    script = (
        "import base64, gzip, sys; "
        "data = base64.b64encode(gzip.compress(open(sys.argv[1], 'rb').read(), mtime=0)).decode(); "
        "o = int(sys.argv[2]); print(len(data)); print(data[o:o + int(sys.argv[3])])"
    )
    return [
        f"test -e {log}.final || cp {log} {log}.final",
        f"python3 -c {shlex.quote(script)} {log}.final {offset} {CHUNK}",
    ]


def remove_lines(run_id: str, zone: str) -> list[str]:
    """The run's files on the probe, once collected: the probe is left as it was found."""
    log = log_path(run_id, zone)
    return [f"rm -f {log} {log}.stop {log}.final {DIRECTORY}/prober-{run_id}-{zone}.py"]


def parse(zone: str, text: str) -> tuple[list[Probe], bool]:
    """The probes of a log, in start order, and whether the prober ended (`END`)."""
    probes, ended = [], False
    for line in text.splitlines():
        if line == "END":
            ended = True
            continue
        fields = line.split()
        if len(fields) != 6:
            continue  # a line cut short when the instance stopped: not a probe
        seq, start, end, ok, source, error = fields
        probes.append(
            Probe(zone, int(seq), float(start), float(end), ok == "1", "" if source == "-" else source, "" if error == "-" else error)
        )
    return sorted(probes, key=lambda p: p.start), ended


class TrialError(RuntimeError):
    """What the trial cannot do, said so that an operator knows what to fix."""


@dataclass
class Probes:
    """The probing commands of one trial run, on every zone's probe instance."""

    ssm: object
    instances: dict[str, str]  # zone -> probe instance ID
    run_id: str
    url: str
    rate: float
    timeout: float
    most: float  # the prober's own bound, seconds
    commands: dict[str, str] = field(default_factory=dict)  # zone -> the probing command's ID

    def _send(self, zone: str, lines: list[str], comment: str, seconds: int) -> str:
        found = self.ssm.send_command(
            InstanceIds=[self.instances[zone]],
            DocumentName=DOCUMENT,
            Comment=comment[:100],
            Parameters={"commands": lines, "executionTimeout": [str(seconds)]},
            TimeoutSeconds=max(30, min(seconds, 2_592_000)),
        )
        return found["Command"]["CommandId"]

    def invocation(self, zone: str, command: str) -> dict:
        return self.ssm.get_command_invocation(CommandId=command, InstanceId=self.instances[zone])

    def _wait(self, zone: str, command: str, timeout: float, until=ENDED) -> dict:
        deadline = time.monotonic() + timeout
        found: dict = {}
        while time.monotonic() < deadline:
            try:
                found = self.invocation(zone, command)
            except self.ssm.exceptions.InvocationDoesNotExist:
                found = {}  # not yet registered: SSM takes a moment
            if found.get("Status") in until:
                return found
            time.sleep(0.5)
        return found

    def start(self, label: str) -> None:
        """Every zone's prober; returns once each command runs."""
        for zone in self.instances:
            lines = start_lines(self.run_id, zone, self.url, self.rate, self.timeout, self.most)
            self.commands[zone] = self._send(zone, lines, f"{COMMENT} {self.run_id} {label}", int(self.most) + 120)
        for zone, command in self.commands.items():
            found = self._wait(zone, command, 60, until=("InProgress", *ENDED))
            if found.get("Status") != "InProgress":
                detail = (found.get("StandardErrorContent") or found.get("StatusDetails") or "no answer in 60 s").strip()
                raise TrialError(f"the probe of {zone} ({self.instances[zone]}) did not start: {found.get('Status')}: {detail}")

    def stop(self) -> list[str]:
        """Every prober ends: a stop file (delivered for as long as the prober may run: an agent
        cut off by its zone's outage gets it once egress is back), then, for a command still
        running after its probes' timeout, CancelCommand. Never raises: it runs on every way out.
        Returns the zones whose prober may still run, with why."""
        left = []
        for zone in list(self.commands):
            try:
                self._send(zone, stop_lines(self.run_id, zone), f"{COMMENT} {self.run_id} stop", int(self.most) + 120)
            except Exception as exc:  # noqa: BLE001 (the cancel below still runs)
                print(f"aws-trial: could not send the stop to the probe of {zone}: {exc}", flush=True)
        for zone, command in list(self.commands.items()):
            try:
                found = self._wait(zone, command, self.timeout + 30)
                if found.get("Status") not in ENDED:
                    self.ssm.cancel_command(CommandId=command, InstanceIds=[self.instances[zone]])
                    found = self._wait(zone, command, 30)
                if found.get("Status") not in ENDED:
                    left.append(f"{zone}: the probe's command {command} is still {found.get('Status') or 'unknown'}")
            except Exception as exc:  # noqa: BLE001 (said; the other zones' still stop)
                left.append(f"{zone}: could not stop the probe's command {command}: {exc}")
        self.commands = {}
        return left

    def collect(self) -> dict[str, list[Probe]]:
        """Every zone's log, read back in chunks of one frozen copy (the same bytes for every chunk),
        then its files removed from the probe."""
        found = {}
        for zone in self.instances:
            text, offset, total = "", 0, None
            while total is None or offset < total:
                command = self._send(zone, collect_lines(self.run_id, zone, offset), f"{COMMENT} {self.run_id} collect", 120)
                answer = self._wait(zone, command, 120)
                if answer.get("Status") != "Success":
                    detail = (answer.get("StandardErrorContent") or answer.get("StatusDetails") or "no answer").strip()
                    raise TrialError(f"could not read the probes of {zone}: {answer.get('Status')}: {detail}")
                size, _, chunk = answer["StandardOutputContent"].partition("\n")
                total = int(size)
                text += chunk.strip()
                offset += CHUNK
            try:
                raw = gzip.decompress(base64.b64decode(text)).decode() if total else ""
            except (ValueError, OSError, EOFError) as exc:
                raise TrialError(f"the probes of {zone} came back damaged ({len(text)} characters): {exc}") from exc
            found[zone], _ = parse(zone, raw)
            self._send(zone, remove_lines(self.run_id, zone), f"{COMMENT} {self.run_id} clean", 120)
        return found


def running(ssm, instances: dict[str, str]) -> list[str]:
    """The trial probing commands still running on the probes (read only): `zone: command (comment)`."""
    out = []
    for zone, instance in instances.items():
        pages = ssm.get_paginator("list_commands").paginate(InstanceId=instance, Filters=[{"key": "Status", "value": "InProgress"}])
        for page in pages:
            for command in page.get("Commands", []):
                if (command.get("Comment") or "").startswith(COMMENT):
                    out.append(f"{zone}: {command['CommandId']} ({command.get('Comment')})")
    return out
