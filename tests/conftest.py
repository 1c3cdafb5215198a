"""Shared fixtures: the emulator, a seeded NAT world, the binary. Assertions read the emulator's
state, never the hook's logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nat_lab.moto import Moto
from nat_lab.world import seed_world


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
