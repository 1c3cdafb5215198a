"""Terraform: the modules, roots and examples validated, scanned, rendered and applied to the emulator,
the bootstrap, and IAM enforced. Needs terraform (and its provider mirror or the registry).

Every test in this folder is marked `terraform` (the markers are registered in pyproject.toml, strict):
`pytest tests -m terraform` runs this folder's concern alone. Shared fixtures live in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before -m selects: the mark must be there when it does
def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(HERE.name)
