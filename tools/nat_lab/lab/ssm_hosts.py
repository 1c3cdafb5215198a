"""SSM Run Command on the lab's hosts: the emulator's stand-in for the SSM agent (moto's SendCommand
runs nothing).

The lab registers EC2 instance IDs (instances it made in moto, its egress probes) with the network
namespace that stands for each (`POST /lab-api/ssm-hosts`, a JSON map `{"i-...": "netns", ...}` that
replaces the previous one; `register`). Then, answered here before moto sees them (JSON protocol,
`X-Amz-Target: AmazonSSM.<Action>`, `ACTIONS`), in AWS's shapes and errors:

- DescribeInstanceInformation: the registered hosts as managed instances, Online (an instance that is
  not registered has no agent and is not listed, as in AWS);
- SendCommand (`AWS-RunShellScript` only, else InvalidDocument; every instance registered, else
  InvalidInstanceId): per instance `ip netns exec NS sh -c "<commands joined by newlines>"` is
  spawned in its own process group, stdout and stderr to files, and the Command is answered at once
  (Pending). `executionTimeout` (default 3600 s) kills it: TimedOut;
- GetCommandInvocation: Status, ResponseCode (-1 while it runs), the output truncated as AWS does
  (24,000 characters of stdout, 8,000 of stderr); an unknown command or instance is
  InvocationDoesNotExist;
- ListCommands, ListCommandInvocations (CommandId, InstanceId, Filters Status / DocumentName /
  InvokedAfter / InvokedBefore, MaxResults, NextToken, Details): newest first, with aggregate status;
- CancelCommand: SIGTERM to the process group, SIGKILL 2 s later; the invocation is Cancelled at once.

A moto-api reset (`POST /moto-api/reset`) kills and forgets every command and unregisters every
host (`reset`). Every other SSM action goes to moto unchanged. Nothing here takes the lab's lock while a command
runs: a request spawns, records and answers; a reaper thread (every 50 ms) collects exits and
enforces the timeouts and the SIGKILL deadlines. At exit (atexit, and SIGTERM) every process group
still alive is killed: no command outlives the emulator.

Not modelled: Targets (tags), S3/CloudWatch output, rate controls (MaxConcurrency, MaxErrors),
notifications, IAM authorization of these calls (they bypass moto's IAM enforcement), ping status
changes (a registered host stays Online until it is unregistered), regions (one store), and the
agent's delivery (TimeoutSeconds is accepted and echoed; a registered host is always reachable).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nat_lab.constants import ACCOUNT, REGION

ACTIONS = frozenset(
    {"DescribeInstanceInformation", "SendCommand", "GetCommandInvocation", "ListCommands", "ListCommandInvocations", "CancelCommand"}
)
DOCUMENT = "AWS-RunShellScript"
PLUGIN = "aws:runShellScript"
AGENT_VERSION = "3.3.0.0"
STDOUT_LIMIT = 24_000  # GetCommandInvocation's StandardOutputContent: the first 24,000 characters
STDERR_LIMIT = 8_000  # and StandardErrorContent's 8,000
PLUGIN_OUTPUT_LIMIT = 2_500  # ListCommandInvocations' CommandPlugins[].Output
KILL_GRACE = 2.0  # SIGTERM, then SIGKILL this long after
DEFAULT_EXECUTION_TIMEOUT = 3600
TERMINAL = ("Success", "Failed", "Cancelled", "TimedOut")


class SsmError(Exception):
    """An AWS error in the JSON protocol: `{"__type": code, "message": ...}`, HTTP 400."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Invocation:
    command_id: str
    instance_id: str
    namespace: str
    directory: str
    timeout: float
    requested: datetime
    status: str = "Pending"
    details: str = "Pending"
    response_code: int = -1
    started: datetime | None = None
    ended: datetime | None = None
    proc: subprocess.Popen | None = None
    started_monotonic: float = 0.0
    kill_at: float | None = None  # SIGKILL the group then, if any of it is left

    def output(self, name: str, limit: int) -> str:
        try:
            with open(os.path.join(self.directory, name), encoding="utf-8", errors="replace") as f:
                return f.read(limit)
        except OSError:
            return ""


@dataclass
class Command:
    command_id: str
    comment: str
    parameters: dict
    instance_ids: list[str]
    requested: datetime
    timeout_seconds: int
    invocations: dict[str, Invocation] = field(default_factory=dict)

    def status(self) -> str:
        states = [i.status for i in self.invocations.values()]
        if any(s not in TERMINAL for s in states):
            return "InProgress" if any(s == "InProgress" for s in states) else "Pending"
        for worst in ("Failed", "TimedOut", "Cancelled"):
            if worst in states:
                return worst
        return "Success"


_lock = threading.RLock()
HOSTS: dict[str, str] = {}  # instance id -> network namespace
COMMANDS: dict[str, Command] = {}  # in the order they were sent
_host_details: Callable[[str], dict] = lambda instance_id: {}  # noqa: E731  (set by install)
_reaper: threading.Thread | None = None
_installed = False


def install(host_details: Callable[[str], dict] | None = None) -> None:
    """At the server's start (the main thread): `host_details(instance_id)` gives what EC2 knows of
    an instance ({"ip", "hostname"}, may be empty); the exit handlers kill what still runs."""
    global _host_details, _installed
    if host_details is not None:
        _host_details = host_details
    if _installed:
        return
    _installed = True
    atexit.register(kill_all)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        kill_all()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def register(hosts: dict[str, str]) -> None:
    """The lab's hosts: instance id -> namespace, replacing the previous map ({} clears it)."""
    if not isinstance(hosts, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in hosts.items()):
        raise ValueError('a JSON object {"i-...": "netns-name", ...}')
    with _lock:
        HOSTS.clear()
        HOSTS.update(hosts)


def kill_all() -> None:
    """Every command's process group still alive: SIGKILL. At exit, and for tests."""
    with _lock:
        for command in COMMANDS.values():
            for inv in command.invocations.values():
                if inv.proc is not None:
                    _signal_group(inv.proc.pid, signal.SIGKILL)
                    with contextlib.suppress(Exception):
                        inv.proc.wait(timeout=1)
                    if inv.status not in TERMINAL:
                        _finish(inv, "Cancelled", "Cancelled", -1)
                shutil.rmtree(inv.directory, ignore_errors=True)


def reset() -> None:
    """A moto-api reset: every command killed and forgotten, every host unregistered (the instances
    they stood for are gone with moto's state)."""
    kill_all()
    with _lock:
        COMMANDS.clear()
        HOSTS.clear()


# --- the JSON protocol ------------------------------------------------------------------------------


def answer(action: str, body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) for one intercepted action."""
    try:
        request = json.loads(body or b"{}")
        if not isinstance(request, dict):
            raise SsmError("ValidationException", "the request body is not a JSON object")
        result = HANDLERS[action](request)
        status, payload = "200 OK", result
    except SsmError as error:
        status, payload = "400 Bad Request", {"__type": error.code, "message": error.message}
    except (ValueError, TypeError, KeyError) as error:
        status, payload = "400 Bad Request", {"__type": "ValidationException", "message": f"{type(error).__name__}: {error}"}
    data = json.dumps(payload, default=_json_default).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(data))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    return status, headers, data


def _json_default(value):
    if isinstance(value, datetime):
        return value.timestamp()  # the JSON protocol's timestamps: epoch seconds
    raise TypeError(f"not JSON: {value!r}")


def _now() -> datetime:
    return datetime.now(UTC)


def _string_date(value: datetime | None) -> str:
    """GetCommandInvocation's StringDateTime: ISO 8601 with milliseconds, Z; empty when not yet."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --- the actions ----------------------------------------------------------------------------------


def describe_instance_information(request: dict) -> dict:
    wanted: dict[str, set[str]] = {}
    for f in request.get("InstanceInformationFilterList") or []:
        wanted.setdefault(f["key"], set()).update(f.get("valueSet") or [])
    for f in request.get("Filters") or []:
        wanted.setdefault(f["Key"], set()).update(f.get("Values") or [])
    ids = wanted.get("InstanceIds")
    with _lock:
        hosts = dict(HOSTS)
    found = []
    for instance_id, namespace in sorted(hosts.items()):
        if ids is not None and instance_id not in ids:
            continue
        details = _host_details(instance_id) or {}
        item = {
            "InstanceId": instance_id,
            "PingStatus": "Online",
            "LastPingDateTime": _now(),
            "AgentVersion": AGENT_VERSION,
            "IsLatestVersion": True,
            "PlatformType": "Linux",
            "PlatformName": "Amazon Linux",
            "PlatformVersion": "2023",
            "ResourceType": "EC2Instance",
            "IPAddress": details.get("ip") or "",
            "ComputerName": details.get("hostname") or namespace,
            "AssociationStatus": "Success",
            "SourceId": instance_id,
            "SourceType": "AWS::EC2::Instance",
        }
        checks = {"PingStatus": item["PingStatus"], "PlatformTypes": item["PlatformType"], "ResourceType": item["ResourceType"]}
        if any(key in wanted and value not in wanted[key] for key, value in checks.items()):
            continue
        found.append(item)
    return {"InstanceInformationList": found}


def send_command(request: dict) -> dict:
    document = request.get("DocumentName") or ""
    if document != DOCUMENT:
        raise SsmError("InvalidDocument", f"Document with name {document!r} does not exist (the lab runs {DOCUMENT} only).")
    if request.get("Targets"):
        raise SsmError("InvalidParameters", "Targets are not supported by the lab's Run Command: give InstanceIds.")
    instance_ids = list(request.get("InstanceIds") or [])
    if not instance_ids:
        raise SsmError("InvalidParameters", "InstanceIds must name at least one instance.")
    if len(set(instance_ids)) != len(instance_ids):
        raise SsmError("DuplicateInstanceId", "Duplicate instance IDs are not allowed.")
    parameters = request.get("Parameters") or {}
    lines = parameters.get("commands")
    if not lines or not isinstance(lines, list):
        raise SsmError("InvalidParameters", "Parameter 'commands' is required by AWS-RunShellScript.")
    execution = parameters.get("executionTimeout") or [str(DEFAULT_EXECUTION_TIMEOUT)]
    try:
        execution_timeout = int(execution[0] if isinstance(execution, list) else execution)
    except ValueError:
        raise SsmError("InvalidParameters", f"Parameter 'executionTimeout' is not a number: {execution!r}") from None
    if not 1 <= execution_timeout <= 172800:
        raise SsmError("InvalidParameters", "Parameter 'executionTimeout' must be between 1 and 172800.")
    workdir = (parameters.get("workingDirectory") or [""])[0] or None
    script = "\n".join(str(line) for line in lines)
    with _lock:
        missing = [i for i in instance_ids if i not in HOSTS]
        if missing:
            raise SsmError("InvalidInstanceId", f"Instances {missing} not in a valid state for account {ACCOUNT}")
        command = Command(
            command_id=str(uuid.uuid4()),
            comment=request.get("Comment") or "",
            parameters=parameters,
            instance_ids=instance_ids,
            requested=_now(),
            timeout_seconds=int(request.get("TimeoutSeconds") or 3600),
        )
        for instance_id in instance_ids:
            inv = Invocation(
                command_id=command.command_id,
                instance_id=instance_id,
                namespace=HOSTS[instance_id],
                directory=tempfile.mkdtemp(prefix=f"lab-ssm-{command.command_id[:8]}-{instance_id}-"),
                timeout=float(execution_timeout),
                requested=command.requested,
            )
            command.invocations[instance_id] = inv
        COMMANDS[command.command_id] = command
        pending = _command(command)  # as AWS answers: Pending, nothing delivered yet
        for inv in command.invocations.values():
            _spawn(inv, script, workdir)
        _start_reaper()
    return {"Command": pending}


def _spawn(inv: Invocation, script: str, workdir: str | None) -> None:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    env["AWS_SSM_INSTANCE_ID"] = inv.instance_id
    env["AWS_SSM_REGION_NAME"] = REGION
    with open(os.path.join(inv.directory, "stdout"), "wb") as out, open(os.path.join(inv.directory, "stderr"), "wb") as err:
        inv.started = _now()
        inv.started_monotonic = time.monotonic()
        try:
            inv.proc = subprocess.Popen(
                ["ip", "netns", "exec", inv.namespace, "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=workdir or inv.directory,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            err.write(f"failed to run the command: {exc}\n".encode())
            _finish(inv, "Failed", "Failed", 1)
            return
    inv.status = inv.details = "InProgress"


def _finish(inv: Invocation, status: str, details: str, code: int) -> None:
    inv.status, inv.details, inv.response_code = status, details, code
    inv.ended = _now()


def _signal_group(pid: int, sig: int) -> bool:
    """Signals the process group `pid` leads; False when none of it is left."""
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _stop(inv: Invocation, status: str, details: str) -> None:
    """SIGTERM to the command's group now, SIGKILL in KILL_GRACE (the reaper); the status at once."""
    if inv.proc is not None:
        _signal_group(inv.proc.pid, signal.SIGTERM)
        inv.kill_at = time.monotonic() + KILL_GRACE
    _finish(inv, status, details, -1)


def _start_reaper() -> None:
    global _reaper
    if _reaper is None or not _reaper.is_alive():
        _reaper = threading.Thread(target=_reap_forever, name="lab-ssm-reaper", daemon=True)
        _reaper.start()


def _reap_forever() -> None:
    while True:
        time.sleep(0.05)
        try:
            reap()
        except Exception as exc:  # the reaper must outlive one odd process
            print(f"lab: ssm reaper: {exc!r}", flush=True)


def reap() -> None:
    """Exits collected, execution timeouts enforced, SIGKILL deadlines kept."""
    now = time.monotonic()
    with _lock:
        for command in COMMANDS.values():
            for inv in command.invocations.values():
                if inv.proc is None:
                    continue
                code = inv.proc.poll()
                if inv.status == "InProgress":
                    if code is not None:  # what it left in the background runs on (as the agent's), until exit
                        _finish(inv, "Success" if code == 0 else "Failed", "Success" if code == 0 else "Failed", code)
                    elif now - inv.started_monotonic >= inv.timeout:
                        _stop(inv, "TimedOut", "ExecutionTimedOut")
                elif inv.kill_at is not None and now >= inv.kill_at:
                    _signal_group(inv.proc.pid, signal.SIGKILL)
                    inv.kill_at = None


def get_command_invocation(request: dict) -> dict:
    command_id, instance_id = request.get("CommandId") or "", request.get("InstanceId") or ""
    plugin = request.get("PluginName")
    with _lock:
        command = COMMANDS.get(command_id)
        inv = command.invocations.get(instance_id) if command else None
        if inv is None:
            raise SsmError("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)")
        if plugin and plugin != PLUGIN:
            raise SsmError("InvalidPluginName", f"Plugin {plugin} is not part of the document")
        end = inv.ended
        elapsed = ((end or _now()) - inv.started).total_seconds() if inv.started else 0.0
        return {
            "CommandId": command.command_id,
            "InstanceId": inv.instance_id,
            "Comment": command.comment,
            "DocumentName": DOCUMENT,
            "DocumentVersion": "$DEFAULT",
            "PluginName": PLUGIN,
            "ResponseCode": inv.response_code,
            "ExecutionStartDateTime": _string_date(inv.started),
            "ExecutionElapsedTime": f"PT{elapsed:.3f}S",
            "ExecutionEndDateTime": _string_date(end),
            "Status": inv.status,
            "StatusDetails": inv.details,
            "StandardOutputContent": inv.output("stdout", STDOUT_LIMIT),
            "StandardOutputUrl": "",
            "StandardErrorContent": inv.output("stderr", STDERR_LIMIT),
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        }


def _selected(request: dict) -> list[Command]:
    """The commands ListCommands / ListCommandInvocations name, newest first (InvalidCommandId for an
    unknown CommandId, as AWS)."""
    command_id, instance_id = request.get("CommandId"), request.get("InstanceId")
    if command_id and command_id not in COMMANDS:
        raise SsmError("InvalidCommandId", f"Invalid CommandId {command_id}")
    found = [c for c in reversed(COMMANDS.values()) if (not command_id or c.command_id == command_id)]
    return [c for c in found if not instance_id or instance_id in c.invocations]


def _filters(request: dict) -> list[Callable[[str, str, datetime], bool]]:
    """Each filter as a test of (status, document, requested)."""
    tests = []
    for f in request.get("Filters") or []:
        key, value = f.get("key"), f.get("value") or ""
        if key == "Status":
            tests.append(lambda s, d, r, v=value: s == v)
        elif key == "DocumentName":
            tests.append(lambda s, d, r, v=value: d == v)
        elif key in ("InvokedAfter", "InvokedBefore"):
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            tests.append((lambda s, d, r, w=when: r >= w) if key == "InvokedAfter" else (lambda s, d, r, w=when: r <= w))
        elif key == "ExecutionStage":
            tests.append(lambda s, d, r, v=value: (v == "Executing") == (s in ("Pending", "InProgress")))
        else:
            raise SsmError("InvalidFilterKey", f"Invalid filter key {key!r}")
    return tests


def _page(items: list, request: dict, key: str) -> dict:
    limit = int(request.get("MaxResults") or 50)
    if not 1 <= limit <= 50:
        raise SsmError("ValidationException", "MaxResults must be between 1 and 50")
    try:
        start = int(request.get("NextToken") or 0)
    except ValueError:
        raise SsmError("InvalidNextToken", "The specified token is not valid.") from None
    page = {key: items[start : start + limit]}
    if start + limit < len(items):
        page["NextToken"] = str(start + limit)
    return page


def _command(command: Command) -> dict:
    invocations = list(command.invocations.values())
    status = command.status()
    return {
        "CommandId": command.command_id,
        "DocumentName": DOCUMENT,
        "DocumentVersion": "$DEFAULT",
        "Comment": command.comment,
        "ExpiresAfter": datetime.fromtimestamp(command.requested.timestamp() + command.timeout_seconds, UTC),
        "Parameters": command.parameters,
        "InstanceIds": list(command.instance_ids),
        "Targets": [],
        "RequestedDateTime": command.requested,
        "Status": status,
        "StatusDetails": status,
        "OutputS3Region": REGION,
        "OutputS3BucketName": "",
        "OutputS3KeyPrefix": "",
        "MaxConcurrency": "50",
        "MaxErrors": "0",
        "TargetCount": len(invocations),
        "CompletedCount": sum(1 for i in invocations if i.status in TERMINAL),
        "ErrorCount": sum(1 for i in invocations if i.status in ("Failed", "TimedOut")),
        "DeliveryTimedOutCount": 0,
        "ServiceRole": "",
        "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""},
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        "TimeoutSeconds": command.timeout_seconds,
        "TriggeredAlarms": [],
    }


def list_commands(request: dict) -> dict:
    with _lock:
        tests = _filters(request)
        found = [_command(c) for c in _selected(request)]
    found = [c for c in found if all(t(c["Status"], c["DocumentName"], c["RequestedDateTime"]) for t in tests)]
    return _page(found, request, "Commands")


def list_command_invocations(request: dict) -> dict:
    instance_id, details = request.get("InstanceId"), bool(request.get("Details"))
    found = []
    with _lock:
        tests = _filters(request)
        for command in _selected(request):
            for inv in command.invocations.values():
                if instance_id and inv.instance_id != instance_id:
                    continue
                if not all(t(inv.status, DOCUMENT, inv.requested) for t in tests):
                    continue
                item = {
                    "CommandId": command.command_id,
                    "InstanceId": inv.instance_id,
                    "InstanceName": "",
                    "Comment": command.comment,
                    "DocumentName": DOCUMENT,
                    "DocumentVersion": "$DEFAULT",
                    "RequestedDateTime": inv.requested,
                    "Status": inv.status,
                    "StatusDetails": inv.details,
                    "TraceOutput": "",
                    "StandardOutputUrl": "",
                    "StandardErrorUrl": "",
                    "CommandPlugins": [],
                    "ServiceRole": "",
                    "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""},
                    "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
                }
                if details:
                    plugin = {
                        "Name": PLUGIN,
                        "Status": inv.status,
                        "StatusDetails": inv.details,
                        "ResponseCode": inv.response_code,
                        "Output": (inv.output("stdout", PLUGIN_OUTPUT_LIMIT) + inv.output("stderr", PLUGIN_OUTPUT_LIMIT))[
                            :PLUGIN_OUTPUT_LIMIT
                        ],
                        "StandardOutputUrl": "",
                        "StandardErrorUrl": "",
                        "OutputS3Region": REGION,
                        "OutputS3BucketName": "",
                        "OutputS3KeyPrefix": "",
                    }
                    if inv.started:
                        plugin["ResponseStartDateTime"] = inv.started
                    if inv.ended:
                        plugin["ResponseFinishDateTime"] = inv.ended
                    item["CommandPlugins"] = [plugin]
                found.append(item)
    return _page(found, request, "CommandInvocations")


def cancel_command(request: dict) -> dict:
    command_id = request.get("CommandId") or ""
    with _lock:
        command = COMMANDS.get(command_id)
        if command is None:
            raise SsmError("InvalidCommandId", f"Invalid CommandId {command_id}")
        instance_ids = request.get("InstanceIds") or list(command.invocations)
        unknown = [i for i in instance_ids if i not in command.invocations]
        if unknown:
            raise SsmError("InvalidInstanceId", f"Instances {unknown} are not part of command {command_id}")
        for instance_id in instance_ids:
            inv = command.invocations[instance_id]
            if inv.status not in TERMINAL:
                _stop(inv, "Cancelled", "Cancelled")
    return {}


HANDLERS: dict[str, Callable[[dict], dict]] = {
    "DescribeInstanceInformation": describe_instance_information,
    "SendCommand": send_command,
    "GetCommandInvocation": get_command_invocation,
    "ListCommands": list_commands,
    "ListCommandInvocations": list_command_invocations,
    "CancelCommand": cancel_command,
}
