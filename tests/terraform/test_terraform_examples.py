"""examples/: what users copy first, calling the modules from another stack. Each is formatted and
valid (`init -backend=false` from the plugin mirror, `validate`); `minimal` passes nothing but what
the modules require (without any one of its arguments, validate fails), and `complete` shows every
input of every module but the ones named here with the reason. checkov and trivy scan the examples
with the stack (tests/terraform/test_terraform_static.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from nat_lab import terraform as tf_lab

REPO = tf_lab.REPO
EXAMPLES = REPO / "examples"
NAMES = ("minimal", "complete")
MODULES = {
    "hook": "terraform/modules/nat-asg-hook",
    "nat": "terraform/modules/nat-instance",
    "eip": "terraform/modules/nat-instance/modules/static-eip",
}
# Module inputs `complete` leaves out, and why.
NOT_IN_COMPLETE: dict[str, dict[str, str]] = {"hook": {}, "nat": {}, "eip": {}}
_SKIP = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", ".terraform.lock.hcl", "*.zip")


def module_calls(text: str) -> dict[str, dict[str, str]]:
    """module "x" { ... } blocks (terraform fmt layout) -> {argument: its text, possibly several lines}."""
    calls = {}
    for name, body in re.findall(r'^module "([^"]+)" \{\n(.*?)^\}', text, re.M | re.S):
        args, current = {}, None
        for line in body.splitlines(keepends=True):
            match = re.match(r"^  ([a-z_]+)\s*=", line)
            if match:
                current = match.group(1)
                args[current] = line
            elif current and line.startswith("   ") or (current and line.startswith("  }")):
                args[current] += line
            else:
                current = None
        calls[name] = args
    return calls


def variables(module: str) -> set[str]:
    text = "".join(p.read_text() for p in (REPO / module).glob("*.tf"))
    return set(re.findall(r'^variable "([^"]+)"', text, re.M))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """The examples beside a copy of terraform/, so that their `../../terraform/modules/...` sources
    resolve as in the repository; nothing lands in the work tree."""
    root = tmp_path_factory.mktemp("examples")
    tf_lab.scratch_copy(root)
    shutil.copytree(EXAMPLES, root / "examples", ignore=_SKIP)
    return root / "examples"


@pytest.fixture(scope="module")
def initialised(scratch) -> dict[str, tf_lab.Terraform]:
    runners = {}
    for name in NAMES:
        runners[name] = tf_lab.Terraform(scratch / name)
        runners[name].init(backend=False)
    return runners


def test_the_examples_are_minimal_and_complete():
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == sorted(NAMES)
    for name in NAMES:
        files = {p.name for p in (EXAMPLES / name).iterdir()}
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= files, name
        assert set(module_calls((EXAMPLES / name / "main.tf").read_text())) == set(MODULES), name


def test_terraform_fmt_check():
    result = tf_lab.Terraform(REPO).run("fmt", "-check", "-recursive", "-diff", "-no-color", "examples", check=False)
    assert result.code == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("name", NAMES)
def test_init_without_backend_and_validate(initialised, name):
    assert "The configuration is valid" in initialised[name].validate().stdout


def test_the_examples_call_the_modules_by_path_and_carry_no_emulator_plumbing():
    for name in NAMES:
        text = (EXAMPLES / name / "main.tf").read_text()
        for call, args in module_calls(text).items():
            assert args["source"].split("=", 1)[1].strip() == f'"../../{MODULES[call]}"', (name, call)
        assert "endpoints" not in text and "skip_credentials_validation" not in text, name


def test_minimal_passes_only_what_the_modules_require(initialised):
    """Each argument but `create_after` (optional to Terraform, but what keeps the first launch from
    racing the hook's wiring) is one the configuration cannot do without: validate fails without it."""
    main = initialised["minimal"].workdir / "main.tf"
    original = main.read_text()
    try:
        for call, args in module_calls(original).items():
            for arg, text in args.items():
                if arg in ("source", "create_after"):
                    continue
                main.write_text(original.replace(text, "", 1))
                result = initialised["minimal"].run("validate", "-no-color", check=False)
                assert result.code != 0, f"module.{call} validates without {arg}: minimal passes only required inputs"
    finally:
        main.write_text(original)
    assert "create_after = module.hook.launch_dependencies" in original


def test_complete_shows_every_module_input():
    calls = module_calls((EXAMPLES / "complete" / "main.tf").read_text())
    for call, module in MODULES.items():
        shown = set(calls[call]) - {"source", "for_each"}
        missing = variables(module) - shown - set(NOT_IN_COMPLETE[call])
        assert not missing, f"examples/complete: module.{call} does not show {sorted(missing)}"
        assert shown <= variables(module), shown - variables(module)
