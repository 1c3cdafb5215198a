"""The benchmarks' measurements: a minimal Lambda Runtime API and the function process it serves,
then the critical path, the cold start and the soak, each returned as plain values for `report`."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .. import events, hook
from ..moto import Moto
from ..process import Process
from ..proxy import Proxy, Record, rounds
from ..soak import Settings, run_soak
from ..world import assert_converged, in_service, replace_instance, seed_world

ZONE = "us-east-1a"

BOTO3_INIT = """
import os, urllib.request
import boto3
ec2 = boto3.client("ec2")
autoscaling = boto3.client("autoscaling")
urllib.request.urlopen(f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation/next", timeout=60).read()
"""


# --- a minimal Lambda Runtime API ---------------------------------------------------------------


class RuntimeApi:
    """Serves /next from a queue of events and records when the first poll came and when each
    response came back: the Lambda control plane, reduced to what the measurements need."""

    def __init__(self):
        self.first_poll: float | None = None
        self.polled = threading.Event()
        self._events: queue.Queue = queue.Queue()
        self._answers: dict[str, tuple[float, str, bytes]] = {}
        self._dispatched: dict[str, float] = {}
        self._done: dict[str, threading.Event] = {}
        self._stopping = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404, b"{}")
                if api.first_poll is None:
                    api.first_poll = time.monotonic()
                    api.polled.set()
                while True:
                    try:
                        request_id, payload = api._events.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if api._stopping:
                            return self._reply(410, b"{}")
                deadline_ms = int((time.time() + 30) * 1000)
                api._dispatched[request_id] = time.monotonic()
                self._reply(
                    200,
                    payload,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:nat-asg-hook",
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                    },
                )

            def do_POST(self):
                now = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.strip("/").split("/")
                if len(parts) >= 5 and parts[-3] == "invocation":
                    request_id, kind = parts[-2], parts[-1]
                    api._answers[request_id] = (now, kind, body)
                    if request_id in api._done:
                        api._done[request_id].set()
                self._reply(202, b'{"status":"OK"}')

            def _reply(self, status, body, headers=None):
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the function was stopped while it waited for an event
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def invoke(self, event: dict, timeout: float = 60) -> tuple[float, str, dict]:
        """(seconds from dispatch to the function's answer, "response" or "error", the answer).
        `last_window` keeps (dispatch, answer) in time.monotonic(), the proxy's clock."""
        request_id = str(uuid.uuid4())
        self._done[request_id] = threading.Event()
        self._events.put((request_id, json.dumps(event).encode()))
        if not self._done[request_id].wait(timeout):
            raise TimeoutError("the function did not answer")
        at, kind, body = self._answers[request_id]
        self.last_window = (self._dispatched[request_id], at)
        return at - self._dispatched[request_id], kind, json.loads(body or b"{}")

    def stop(self):
        self._stopping = True
        self._server.shutdown()
        self._server.server_close()


class Function:
    """A process serving a RuntimeApi: the hook binary (Lambda path) or any command."""

    def __init__(self, cmd: list[str], env: dict, log: Path):
        self.api = RuntimeApi()
        env = dict(
            env,
            AWS_LAMBDA_RUNTIME_API=self.api.address,
            AWS_LAMBDA_FUNCTION_NAME="nat-asg-hook",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
            AWS_LAMBDA_LOG_FORMAT="JSON",
        )
        self.spawned = time.monotonic()
        self.proc = Process(cmd, env, log)
        if not self.api.polled.wait(60):
            self.stop()
            raise TimeoutError(f"{cmd[0]} never polled the Runtime API; see {log}")
        self.init_seconds = self.api.first_poll - self.spawned

    def peak_rss_kib(self) -> int:
        """VmHWM, the process's peak resident set. Not getrusage: a child's ru_maxrss starts from
        its parent's at fork and survives exec, so it would report this Python process's size."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> int:
        """Stops the process; returns its peak RSS in KiB."""
        rss = 0
        if self.proc.poll() is None:
            rss = self.peak_rss_kib()
        self.proc.stop()
        self.api.stop()
        return rss


# --- measurements --------------------------------------------------------------------------------


def waiting(records: list[Record]) -> float:
    """Seconds during which at least one request was outstanding (the union of their intervals)."""
    total, edge = 0.0, float("-inf")
    for r in sorted(records, key=lambda r: r.start):
        if r.end > edge:
            total += r.end - max(r.start, edge)
            edge = r.end
    return total


def summarize(records: list[Record], window: tuple[float, float], latency: float) -> dict:
    by_round = rounds(records)
    return {
        "own_ms": ((window[1] - window[0]) - waiting(records)) * 1000,
        # What the emulator (not the added latency) took on the critical path: per round, the
        # slowest request beyond the fixed latency.
        "emulator_ms": sum(max(r.seconds - latency for r in round_) for round_ in by_round) * 1000,
        "rounds": len(by_round),
        "requests": len(records),
        "mutating": sum(r.mutating for r in records),
        "shape": [sorted({r.action for r in round_}) for round_ in by_round],
        "round_sizes": [len(round_) for round_ in by_round],
    }


SIBLING_ZONE = "us-east-1b"
UNRELATED = "i-0123456789abcdef0"  # an instance of the region that is none of the NATs'


def critical_path(moto: Moto, proxy: Proxy, binary: Path, work: Path, tables: int, reps: int) -> dict:
    """Per repetition, in zone a with N tables (zone b is its sibling): a replacement's launch, the
    same event again (done), the new instance leaving (its terminate action: the zone fails over
    to b), its return to service (the launch fails the zone back), and an unrelated instance's
    state change (ignored after one read round)."""
    moto.reset()
    world = seed_world(moto, zones=(ZONE, SIBLING_ZONE), tables_per_zone=tables)
    config = world.write_config(work / f"config-{tables}.json")
    group = next(name for name, g in world.groups.items() if g.zone == ZONE)
    settled = hook.run(moto.env(), "reconcile", config=config)
    assert settled.code == 0, settled.stderr
    autoscaling = moto.client("autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=0)  # so that its NAT can leave unreplaced
    env = proxy.env(moto.env())
    out: dict = {"tables": tables, "first": None} | {k: [] for k in ("launch", "done", "failover", "failback", "unrelated", "replay")}

    fn = Function([str(binary)], dict(env, NAT_ASG_HOOK_CONFIG=config.read_text()), work / f"function-{tables}.log")

    def measure(kind: str, event: dict, outcome: str) -> dict:
        mark = proxy.mark()
        seconds, answer_kind, result = fn.api.invoke(event)
        assert answer_kind == "response" and result.get("outcome") == outcome, (kind, result)
        return dict(
            summarize(proxy.since(mark), fn.api.last_window, proxy.latency),
            seconds=seconds,
            handler_ms=result.get("duration_ms"),
            outcome=result.get("outcome"),
            kind=kind,
            answer=answer_kind,
        )

    try:
        for rep in range(reps + 1):
            _, new = replace_instance(moto, group)
            launch_event = events.launch(group, new, ZONE)
            launch = measure("launch", launch_event, "applied")
            assert_converged(moto, world, group)
            done = measure("done", launch_event, "unchanged")
            if rep == 0:
                out["first"] = launch  # the first event after init: clients not warmed by use yet
                continue
            out["launch"].append(launch)
            out["done"].append(done)
            # The group takes the new instance away with no replacement: the zone goes to its sibling.
            autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=new, ShouldDecrementDesiredCapacity=True)
            out["failover"].append(measure("failover", events.terminate(group, new), "applied"))
            # Its replacement comes and proves itself: its launch fails the zone back.
            autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
            [back] = in_service(moto, group)
            out["failback"].append(measure("failback", events.launch(group, back, ZONE), "applied"))
            assert_converged(moto, world, group, back)
            out["unrelated"].append(measure("unrelated", events.state_change(UNRELATED, "stopped"), "ignored"))
    finally:
        out["rss_kib"] = fn.stop()

    # The operator's path: one process per event.
    for _ in range(max(2, reps // 2)):
        _, new = replace_instance(moto, group)
        path = events.write(events.launch(group, new, ZONE), work)
        started = time.monotonic()
        run = hook.run(env, "replay", str(path), config=config)
        wall = time.monotonic() - started
        assert run.code == 0, run.stderr
        out["replay"].append(dict(seconds=wall, handler_ms=run.result["duration_ms"]))
    return out


def cold_start(moto: Moto, proxy: Proxy, binary: Path, work: Path, runs: int) -> dict:
    moto.reset()
    world = seed_world(moto, zones=(ZONE,), tables_per_zone=1)
    config = world.write_config(work / "config-cold.json").read_text()
    [group] = world.groups
    env = proxy.env(moto.env())
    rust, python = [], []
    for _ in range(runs):
        _, new = replace_instance(moto, group)
        event = events.launch(group, new, ZONE)
        fn = Function([str(binary)], dict(env, NAT_ASG_HOOK_CONFIG=config), work / "cold-rust.log")
        try:
            mark = proxy.mark()
            first, _, result = fn.api.invoke(event)
            first_own = summarize(proxy.since(mark), fn.api.last_window, proxy.latency)["own_ms"]
            assert result.get("outcome") == "applied", result
            init_requests = [r for r in proxy.since(0)[:mark] if r.start >= fn.spawned]
            mark = proxy.mark()
            second, _, again = fn.api.invoke(event)
            second_own = summarize(proxy.since(mark), fn.api.last_window, proxy.latency)["own_ms"]
            assert again.get("outcome") == "unchanged", again
        finally:
            rss = fn.stop()
        rust.append(
            {
                "init": fn.init_seconds,
                "first": first,
                "first_handler_ms": result["duration_ms"],
                "second": second,
                "second_handler_ms": again["duration_ms"],
                "rss_kib": rss,
                "first_own_ms": first_own,
                "second_own_ms": second_own,
                "init_requests": len(init_requests),
            }
        )
        py = Function([sys.executable, "-c", BOTO3_INIT], env, work / "cold-python.log")
        python.append({"init": py.init_seconds, "rss_kib": py.stop()})
    return {"rust": rust, "python": python}


def soak(moto: Moto, binary: Path, work: Path) -> dict:
    os.environ["HOOK_BIN"] = str(binary)
    moto.reset()
    settings = Settings()
    with Proxy(moto.endpoint, seed=settings.seed) as proxy:
        result = run_soak(moto, proxy, work / "soak", settings)
    return result.as_dict()
