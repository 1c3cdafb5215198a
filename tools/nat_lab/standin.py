"""A stand-in for the NAT instances' user data against the emulator: every instance that waits on a
launch lifecycle action completes it with CONTINUE, as the real NAT does once it has proved itself.

Terraform's apply waits until each group's instance is InService, and in the emulator (as on AWS)
a group with a launch hook holds its instances in Pending:Wait until someone completes the action:
`with LaunchStandIn(moto): terraform.apply(...)`. No error is swallowed twice: an error is printed
the first time it is seen; when the same error lasts `patience` seconds the stand-in stops and calls
`on_failure(message)` (e.g. `Terraform.abort`, so that an apply never waits out its own ten minutes
for capacity that cannot come), and leaving the block raises it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


class StandInError(RuntimeError):
    pass


class LaunchStandIn:
    def __init__(
        self,
        moto,
        credentials: dict[str, str] | None = None,
        patience: float = 20.0,
        interval: float = 0.3,
        on_failure: Callable[[str], None] | None = None,
    ):
        self.moto = moto
        self.autoscaling = moto.client("autoscaling", **(credentials or {}))
        self.patience = patience
        self.interval = interval
        self.on_failure = on_failure
        self.proved: list[str] = []  # instances whose launch action it completed, in order
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="launch-stand-in", daemon=True)

    def _prove_waiting(self) -> None:
        for action in self.moto.lifecycle_actions()["active"]:
            if action["transition"] != LAUNCHING:
                continue
            try:
                self.autoscaling.complete_lifecycle_action(
                    AutoScalingGroupName=action["group"],
                    LifecycleHookName=action["hook"],
                    InstanceId=action["instance"],
                    LifecycleActionResult="CONTINUE",
                )
                self.proved.append(action["instance"])
            except ClientError as exc:  # completed meanwhile (its timeout), or the instance left: not an error
                if "No active Lifecycle Action found" not in str(exc):
                    raise

    def _run(self) -> None:
        seen, since = None, 0.0
        while not self._stop.wait(self.interval):
            try:
                self._prove_waiting()
                seen = None
            except (ClientError, BotoCoreError, OSError, ValueError, KeyError) as exc:
                message = f"{type(exc).__name__}: {exc}"
                now = time.monotonic()
                if message != seen:
                    print(f"launch stand-in: {message}", file=sys.stderr, flush=True)
                    seen, since = message, now
                elif now - since >= self.patience:
                    self.failure = f"the launch stand-in gave up: {message} (for {self.patience:.0f}s)"
                    if self.on_failure is not None:
                        self.on_failure(self.failure)
                    return

    def __enter__(self) -> LaunchStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 15)
        if self.failure and exc[0] is None:
            raise StandInError(self.failure)


def main() -> int:
    """`python -m nat_lab.standin --endpoint URL`: the stand-in beside a `terraform apply` run by hand
    against a patched moto server (docs/local-development.md), until Ctrl-C."""
    import argparse

    from .moto import Endpoint

    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:5000", help="the patched moto server (default %(default)s)")
    args = parser.parse_args()
    with LaunchStandIn(Endpoint(args.endpoint)) as standin:
        print(f"completing every launch action waiting at {args.endpoint} with CONTINUE; Ctrl-C stops", flush=True)
        try:
            while standin.failure is None:
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
