"""Shared fixtures: the emulator, a seeded NAT world, the binary. Assertions read the emulator's
state, never the hook's logs.

The tests live in one folder per concern, and every test is marked with its folder's name (the
markers are registered in pyproject.toml, strict), so `pytest tests -m NAME` runs one concern:
- unit: the tooling's own Python, alone: no emulator, no binary, no Terraform, no root (seconds);
- e2e: the real binary against moto (replay, verify, reconcile, cargo lambda watch, proxy, soak);
- terraform: the modules and roots: static checks, the user data, applies to moto, IAM, bootstrap;
- lab: root: the data-plane lab in network namespaces, and the demo;
- tooling: the repository's own tools: workflows, scripts, docs, the lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from nat_lab.moto import Moto
from nat_lab.world import seed_world

TESTS = Path(__file__).parent
CONCERNS = ("unit", "e2e", "terraform", "lab", "tooling")


@pytest.hookimpl(tryfirst=True)  # before -m selects: the mark must be there when it does
def pytest_collection_modifyitems(items) -> None:
    for item in items:
        concern = item.path.relative_to(TESTS).parts[0]
        if concern in CONCERNS:
            item.add_marker(concern)


@pytest.fixture(scope="session")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def moto(logs):
    """One moto server for the session, on a free loopback port; stopped at the end."""
    server = Moto(log_dir=logs)
    yield server
    server.stop()


@pytest.fixture
def fresh_moto(moto):
    """The session's emulator, emptied before the test."""
    moto.reset()
    return moto


@pytest.fixture
def world(fresh_moto):
    """Three zones, each NAT group just replaced: EIP and routes still on the previous NAT's ENI."""
    return seed_world(fresh_moto)


@pytest.fixture
def config_file(world, tmp_path) -> Path:
    return world.write_config(tmp_path / "hook-config.json")
