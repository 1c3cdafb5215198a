"""The operator docs name only things that exist: make targets, CLI subcommands and flags, Terraform
outputs, the resource names the runbook tells on-call to look for, saved events, the bootstrap's
options, and the files and sections they link to. A renamed alarm or flag fails here, not at 3 a.m."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [
    REPO / "docs" / "runbook.md",
    REPO / "docs" / "local-development.md",
    REPO / "CONTRIBUTING.md",
    REPO / "terraform" / "bootstrap" / "README.md",
    REPO / "docs" / "threat-model.md",
]
RUNBOOK = REPO / "docs" / "runbook.md"
HOOK_MODULE = (REPO / "terraform" / "modules" / "nat-asg-hook" / "main.tf").read_text()
NAT_MODULE = (REPO / "terraform" / "modules" / "nat-instance" / "main.tf").read_text()
CLI = (REPO / "crates" / "nat-asg-hook" / "src" / "cli.rs").read_text()


def text(path: Path) -> str:
    return path.read_text()


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))


def cli_commands() -> dict[str, set[str]]:
    """Subcommand -> its long flags, from the clap definitions in cli.rs (plus the global --config)."""
    enum = CLI[CLI.index("enum Command") :]
    commands = {}
    for name, body in re.findall(r"^    (\w+) \{\n(.*?)^    \},", enum, re.M | re.S):
        flags = {"--" + f.replace("_", "-") for f in re.findall(r"#\[arg\(long[^\]]*\)\]\s*(?:///[^\n]*\s*)*(\w+):", body)}
        commands[name.lower()] = flags | {"--config", "--help"}
    return commands


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_make_targets_exist(doc):
    used = set(re.findall(r"\bmake ([a-z][a-z-]*)", text(doc))) - {"sure"}
    assert used <= make_targets(), used - make_targets()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cli_subcommands_and_flags_exist(doc):
    commands = cli_commands()
    assert set(commands) == {"replay", "verify", "reconcile", "drain", "undrain"}
    for command, rest in re.findall(r"nat-asg-hook (replay|verify|reconcile|drain|undrain)\b([^\n`|]*)", text(doc)):
        flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest))
        assert flags <= commands[command], (command, flags - commands[command])


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_terraform_outputs_exist(doc):
    outputs = set(re.findall(r'^output "(\w+)"', (REPO / "terraform" / "outputs.tf").read_text(), re.M))
    bootstrap = set(re.findall(r'^output "(\w+)"', (REPO / "terraform" / "bootstrap" / "outputs.tf").read_text(), re.M))
    for directory, name in re.findall(r"terraform(?: -chdir=(\S+))? output (?:-raw |-json )?([a-z_]+)", text(doc)):
        assert name in (bootstrap if directory and directory.endswith("bootstrap") else outputs), name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_linked_files_and_sections_exist(doc):
    for target in re.findall(r"\]\(([^)#\s]*)(#[^)\s]*)?\)", text(doc)):
        path, anchor = target
        if path.startswith("http"):
            continue
        linked = (doc.parent / path).resolve() if path else doc
        assert linked.exists(), path
        if anchor and linked.suffix == ".md":
            slugs = {slug(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.M)}
            assert anchor[1:] in slugs, (path, anchor)


def slug(heading: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_saved_events_the_docs_name_exist():
    for doc in DOCS:
        for name in re.findall(r"events/([\w-]+\.json)", text(doc)):
            assert (REPO / "events" / name).is_file(), name


def test_the_runbooks_names_are_the_stacks():
    runbook = text(RUNBOOK)
    root = (REPO / "terraform" / "main.tf").read_text()
    assert (
        'name                = "${var.name}-asg-hook"' in root
        or 'name = "${var.name}-asg-hook"' in root
        or re.search(r'name\s*=\s*"\$\{var\.name\}-asg-hook"', root)
    )
    for suffix in ("errors", "dead-letters", "dead-letter"):
        assert f'"${{var.name}}-{suffix}"' in HOOK_MODULE, suffix
        assert f"<stack>-asg-hook-{suffix}" in runbook, suffix
    # The rules are named "<name>-<purpose>".
    purposes = re.search(r'for purpose in \[([^\]]*)\] : purpose => "\$\{var\.name\}-\$\{purpose\}"', HOOK_MODULE)
    assert purposes, "rule_names in the hook module"
    for suffix in ("launch", "reconcile"):
        assert f'"{suffix}"' in purposes.group(1), suffix
        assert f"<stack>-asg-hook-{suffix}" in runbook, suffix
    assert '"/aws/lambda/${var.name}"' in HOOK_MODULE and "/aws/lambda/<stack>-asg-hook" in runbook
    assert re.search(r'name\s*=\s*"nat-asg-hook-launch"', NAT_MODULE) and "nat-asg-hook-launch" in runbook
    variables = (REPO / "terraform" / "modules" / "nat-instance" / "variables.tf").read_text()
    assert re.search(r'variable "launch_hook_heartbeat_timeout".*?default\s*=\s*300\b', variables, re.S), "the runbook says 300 s"
    launch_hook = NAT_MODULE[NAT_MODULE.index('"nat-asg-hook-launch"') : NAT_MODULE.index('"nat-asg-hook-terminate"')]
    assert re.search(r'default_result\s*=\s*"ABANDON"', launch_hook), "the runbook says ABANDON"
    hook_variables = (REPO / "terraform" / "modules" / "nat-asg-hook" / "variables.tf").read_text()
    assert re.search(r'variable "reserved_concurrent_executions".*?default\s*=\s*null\b', hook_variables, re.S), (
        "the runbook says none by default"
    )


def test_the_runbook_lists_every_error_type_the_function_reports():
    error_rs = (REPO / "crates" / "nat-asg-hook" / "src" / "error.rs").read_text()
    kinds = set(re.findall(r'=> "(\w+)",', error_rs[error_rs.index("fn error_type") :]))
    assert kinds, "error_type() in error.rs"
    runbook = text(RUNBOOK)
    missing = {k for k in kinds if f"`{k}`" not in runbook}
    assert not missing, missing


def test_the_bootstrap_options_the_docs_describe_exist():
    script = (REPO / "scripts" / "bootstrap.sh").read_text()
    for option in ("--profile", "--env", "--skip-iam", "--apply"):
        assert f"    {option})" in script, option
        assert option in text(REPO / "docs" / "local-development.md"), option


def test_nothing_points_at_a_design_file_outside_the_repository():
    """docs/design.md is the design of record; a reference to a design kept elsewhere would rot."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = REPO / name
        if path.suffix in {".md", ".py", ".rs", ".tf", ".sh", ".yml", ".toml"} and path.is_file():
            body = path.read_text(errors="replace")
            if re.search(r"\bDESIGN\.md\b|\.\./shared/", body) and name != "tests/tooling/test_docs.py":
                offenders.append(name)
    assert offenders == [], f"these files cite a design outside the repository: {offenders}"
    assert (REPO / "docs" / "design.md").is_file()


def test_the_threat_model_names_the_files_that_enforce_it():
    """Every policy file, script and workflow the threat model cites exists, and every policy file the
    deploy role carries is cited: a new grant is a new line there."""
    model = text(REPO / "docs" / "threat-model.md")
    cited = set(re.findall(r"`([a-z-]+\.json)`", model))
    policies = {p.name for p in (REPO / "terraform" / "policies").glob("*.json")}
    assert cited <= policies, cited - policies
    deploy = set(re.findall(r'"(terraform-[a-z-]+)"', text(REPO / "terraform" / "bootstrap" / "iam.tf")))
    assert {f"{name}.json" for name in deploy} <= cited, {f"{name}.json" for name in deploy} - cited
    for path in re.findall(r"`((?:scripts|\.github/workflows)/[\w./-]+|[\w-]+\.(?:sh|yml))`", model):
        assert list(REPO.rglob(Path(path).name)), path


def test_every_alarm_the_hook_module_declares_has_a_runbook_entry():
    """Each alarm name (`${var.name}-<suffix>`, per zone `${var.name}-<kind>-${zone}`) has its own
    `### <stack>-asg-hook-<suffix>` entry in the runbook, and each alarm description's runbook
    pointer names a section that exists."""
    module = HOOK_MODULE + (REPO / "terraform" / "modules" / "nat-asg-hook" / "nat-metrics.tf").read_text()
    runbook = text(RUNBOOK)
    headings = re.findall(r"^### `<stack>-asg-hook-([a-z<>-]+)`", runbook, re.M)
    fixed = set(re.findall(r'name\s*=\s*"\$\{var\.name\}-([a-z-]+)"', module)) - {"dead-letter"}
    per_zone = set(re.findall(r'"([a-z-]+)-\$\{zone\}"', module))
    assert fixed and per_zone == {"conntrack", "drops", "nat-silent"}
    assert fixed | {f"{kind}-<zone>" for kind in per_zone} <= set(headings), (fixed | per_zone) - set(headings)
    titles = [h.lower().replace("-", " ") for h in re.findall(r"^#+ (.+)$", runbook, re.M)]
    for section in re.findall(r'Runbook: \\"([^"\\]+)\\"', module):
        assert any(section.lower().replace("-", " ") in title for title in titles), section
