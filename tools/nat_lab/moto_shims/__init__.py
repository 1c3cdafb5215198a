"""What the moto server needs to stand in for AWS here, patched into the server process itself.

moto has no public extension point for changing how its backends behave, so these patches reach
into its internals, and they are written for one moto version: `WRITTEN_FOR`, the version the lock
(requirements.txt) installs. Every private name they use is reached from this package only, and
the patched server (`server`, `python -m nat_lab.moto_shims.server --port P`) proves them at
start: it applies each patch by name (`ShimError` when a name it patches is gone), then drives
each patched behaviour once through its own HTTP API (`selfcheck`) and serves nothing before all
of them hold. With another moto, a changed internal stops the server within seconds with a message
naming the moto version and the patch, instead of a tool waiting on a behaviour that never comes.

- `fidelity`: fields moto drops or misfiles (Lambda's DeadLetterConfig and LoggingConfig, launch
  template tags, ...), and Lambda's SigV4 check under IAM enforcement.
- `lifecycle`: Auto Scaling lifecycle hooks and actions, which moto does not implement
  (Pending:Wait, Terminating:Wait, CompleteLifecycleAction, heartbeats, timeouts). See its docstring.
- The data-plane lab adds its own behaviour on top (`nat_lab.lab.motoserver`, `--data-plane`).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from contextlib import contextmanager

WRITTEN_FOR = "5.2.5"  # the moto version the lock installs and these patches are proven against


class ShimError(RuntimeError):
    """A patch that does not hold with the installed moto: its name, and what was seen."""

    def __init__(self, patch: str, seen: str):
        self.patch = patch
        super().__init__(
            f"moto {moto_version()}: the emulator patch {patch!r} (written for moto {WRITTEN_FOR}) does not hold: {seen}. "
            f"Install the locked versions (`make venv`), or port the patch in tools/nat_lab/moto_shims to this moto "
            f"and lock it (`make lock UPGRADE=moto`)."
        )


def moto_version() -> str:
    return importlib.metadata.version("moto")


@contextmanager
def patching(name: str):
    """Applies patch `name`: a private name of moto's that it needs and cannot find is a ShimError."""
    try:
        yield
    except (ImportError, AttributeError, KeyError, TypeError) as exc:
        raise ShimError(name, f"{type(exc).__name__}: {exc}") from exc


SKIP_ENV = "NAT_LAB_MOTO_SKIP_PATCH"  # tests only: a patch left out, as a moto whose internals moved would leave it


def patches(extra: dict[str, Callable[[], None]] | None = None) -> dict[str, Callable[[], None]]:
    from . import fidelity, lifecycle

    return {**fidelity.PATCHES, "lifecycle": lifecycle.install, **(extra or {})}


def install(extra: dict[str, Callable[[], None]] | None = None) -> None:
    """Every patch, by name (then `extra`'s, e.g. the lab's); ShimError on the first that fails."""
    skipped = os.environ.get(SKIP_ENV)
    for name, apply in patches(extra).items():
        if name != skipped:
            with patching(name):
                apply()
