"""End to end on the emulator: moto on a free loopback port, a seeded world, the real binary (replay,
verify, reconcile, `cargo lambda watch`), the proxy and the soak; assertions on the emulator's state.

Every test in this folder is marked `e2e` (the markers are registered in pyproject.toml, strict):
`pytest tests -m e2e` runs this folder's concern alone. Shared fixtures live in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before -m selects: the mark must be there when it does
def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(HERE.name)
