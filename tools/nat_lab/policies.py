"""terraform/policies/*.json as the tests read them: which files each bootstrap role carries
(terraform/bootstrap/iam.tf, `role_policies`), and a file rendered as `templatefile` renders it."""

from __future__ import annotations

import json
import re

from . import REPO

POLICIES = REPO / "terraform" / "policies"
DEPLOY = ("terraform-compute", "terraform-guardrails", "terraform-hook", "terraform-network", "terraform-read", "terraform-state")
PLAN = ("terraform-read", "terraform-state-read")
# The permissions boundary the bootstrap creates for every role of the stack (attached to no role of its own).
BOUNDARY = "stack-role-boundary"


def render(name: str, values: dict[str, str] | None = None) -> dict:
    """terraform/policies/<name>.json with each `${key}` replaced by `values[key]`; with no values,
    by a placeholder (for reading the actions only)."""
    text = (POLICIES / f"{name}.json").read_text()
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)] if values is not None else "x", text)
    return json.loads(text)


def as_list(value) -> list:
    """A policy's Action or Resource, which may be one string or a list."""
    return value if isinstance(value, list) else [value]
