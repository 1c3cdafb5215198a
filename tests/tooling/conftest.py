"""The repository's tooling and docs: the workflows, the shell scripts (with stand-ins for AWS, gh,
curl), the lock, and the docs naming only things that exist.

Every test in this folder is marked `tooling` (the markers are registered in pyproject.toml, strict):
`pytest tests -m tooling` runs this folder's concern alone. Shared fixtures live in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before -m selects: the mark must be there when it does
def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(HERE.name)
