"""A fresh machine gets exactly what was tested: the Python tools from one hash lock made from
pyproject.toml's ranges, cargo tools and Terraform providers at pinned versions, and upgrades that
arrive as pull requests (Dependabot) rather than on someone's clone."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, version

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from nat_lab import REPO, hook

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK = (REPO / "requirements.txt").read_text()


def locked() -> dict[str, list[str]]:
    """name -> the versions the lock pins (one per environment marker)."""
    found: dict[str, list[str]] = {}
    for name, pinned in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", LOCK, re.M):
        found.setdefault(canonicalize_name(name), []).append(pinned)
    return found


def declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    lines = project["dependencies"] + [line for group in project["optional-dependencies"].values() for line in group]
    return [Requirement(line) for line in lines]


def test_every_locked_requirement_is_pinned_exactly_with_hashes():
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.split("\n", 2)[2].strip())
    assert len(entries) > 50
    for entry in entries:
        head = entry.splitlines()[0]
        assert re.match(r"^[A-Za-z0-9_.\-]+(\[[^\]]+\])?==\S+", head), head
        assert "--hash=sha256:" in entry, f"{head}: no hash, and make venv requires them"


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_the_lock_satisfies_every_range_pyproject_declares(requirement):
    pins = locked().get(canonicalize_name(requirement.name))
    assert pins, f"{requirement.name} is declared in pyproject.toml but not locked: run `make lock`"
    for pinned in pins:
        assert requirement.specifier.contains(pinned, prereleases=True), f"{requirement.name}=={pinned} is outside {requirement.specifier}"


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_this_virtualenv_runs_the_locked_versions(requirement):
    assert version(requirement.name) in locked()[canonicalize_name(requirement.name)], f"{requirement.name}: rerun make venv"


def imported_modules() -> set[str]:
    """The top-level modules that the project's own Python imports (tools/ and tests/)."""
    found: set[str] = set()
    for path in [*(REPO / "tools").rglob("*.py"), *(REPO / "tests").rglob("*.py"), *(REPO / "scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_every_package_the_project_imports_is_declared_not_borrowed_from_a_dependency():
    local = {"nat_lab", "tests", "conftest"} | {p.stem for p in (REPO / "tests").rglob("*.py")}
    outside = sorted(m for m in imported_modules() if m not in sys.stdlib_module_names and m not in local)
    assert outside, "the scan found no third-party import: it is not looking where the code is"
    names = {canonicalize_name(r.name) for r in declared()}
    providers = packages_distributions()
    undeclared = {
        module: sorted(providers.get(module, ["(not installed)"]))
        for module in outside
        if not names & {canonicalize_name(d) for d in providers.get(module, [])}
    }
    assert undeclared == {}, f"imported but not declared in pyproject.toml (declare, then `make lock`): {undeclared}"


def test_the_lock_header_names_the_command_that_regenerates_it():
    makefile = (REPO / "Makefile").read_text()
    header = LOCK.splitlines()[1]
    command = re.search(r"\$\(VENV\)/bin/uv (pip compile [^\\\n]+)", makefile)
    assert command, "make lock runs uv pip compile"
    assert header.strip("# ").startswith("uv " + command.group(1).strip()), (header, command.group(1))


def test_nextest_is_pinned_to_the_version_the_workflow_installs():
    makefile = re.search(r"^NEXTEST_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    workflow = yaml.safe_load((REPO / ".github/workflows/prepare-for-demo.yml").read_text())
    assert makefile and workflow["env"]["NEXTEST_VERSION"] == makefile.group(1)


@pytest.mark.parametrize("root", ["terraform", "terraform/bootstrap", "examples/minimal", "examples/complete"])
def test_every_terraform_root_pins_the_aws_provider_exactly_and_commits_no_platform_lock(root):
    text = (REPO / root / "versions.tf").read_text()
    pinned = re.search(r'source\s*=\s*"hashicorp/aws"\s*version\s*=\s*"([^"]+)"', text)
    assert pinned and re.fullmatch(r"\d+\.\d+\.\d+", pinned.group(1)), f"{root}: pin the provider exactly"
    assert not (REPO / root / ".terraform.lock.hcl").exists(), "a lock made from one platform's mirror breaks the others"


def test_dependabot_proposes_every_ecosystem_the_repository_pins():
    config = yaml.safe_load((REPO / ".github/dependabot.yml").read_text())
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"pip", "cargo", "github-actions", "terraform"}
    assert all(u["target-branch"] == "development" for u in updates.values()), "upgrades go where CI and review happen"
    assert set(updates["terraform"]["directories"]) == {"/terraform", "/terraform/bootstrap", "/examples/minimal", "/examples/complete"}
    assert updates["pip"]["groups"]["emulator"]["patterns"] == ["moto"], "a moto upgrade comes alone: the patches follow it"


def test_a_custom_cargo_target_dir_is_where_the_tools_and_make_look_for_the_binary(tmp_path, monkeypatch):
    binary = tmp_path / "debug" / "nat-asg-hook"
    binary.parent.mkdir()
    binary.write_text("")
    monkeypatch.delenv("HOOK_BIN", raising=False)
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path))
    assert hook.hook_bin() == binary
    env = {k: v for k, v in os.environ.items() if k != "HOOK_BIN"} | {"CARGO_TARGET_DIR": str(tmp_path)}
    make = subprocess.run(["make", "-s", "--eval=shown: ; @echo $(HOOK_BIN)", "shown"], cwd=REPO, env=env, capture_output=True, text=True)
    assert make.stdout.strip() == str(binary), make.stderr
