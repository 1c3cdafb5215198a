"""The branch flow of CONTRIBUTING.md, enforced rather than described.

- The "Branch flow" job's rule (scripts/check-pr-source.sh, run by .github/workflows/branch-flow.yml) on
  pull_request event payloads: only development and hotfix/* of this repository open pull requests into
  main; anything may open one into another branch.
- scripts/protect-branches.sh against a fake `gh` that records what it is sent: a dry run sends nothing,
  --apply sends exactly what the dry run printed; the owner lives in .github/CODEOWNERS alone.
- The script's payloads and CONTRIBUTING.md's "Branch protection" tables say the same thing, and the
  required checks are jobs that run on pull requests into main.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "scripts" / "check-pr-source.sh"
PROTECT = REPO / "scripts" / "protect-branches.sh"
CODEOWNERS = REPO / ".github" / "CODEOWNERS"
CONTRIBUTING = REPO / "CONTRIBUTING.md"
WORKFLOWS = REPO / ".github" / "workflows"
BRANCH_FLOW = WORKFLOWS / "branch-flow.yml"
THIS_REPO = "acme/nat-asg-hook"


def load_workflow(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True.
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


# --- the rule: which branch may open a pull request into main -------------------------------------


def pr_event(tmp_path: Path, base: str, head: str, head_repo: str | None = THIS_REPO, number: int = 42) -> Path:
    """The parts of GitHub's pull_request payload the rule reads, shaped as GitHub sends them."""
    event = {
        "action": "opened",
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"ref": base, "repo": {"full_name": THIS_REPO}},
            "head": {"ref": head, "repo": None if head_repo is None else {"full_name": head_repo}},
        },
        "repository": {"full_name": THIS_REPO},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def check_source(event: Path | None, *, via_env: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_EVENT_PATH"}
    args = ["bash", str(CHECK)]
    if via_env:
        env["GITHUB_EVENT_PATH"] = str(event)
    elif event is not None:
        args.append(str(event))
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "base, head",
    [
        ("main", "development"),
        ("main", "hotfix/NAT-7"),
        ("development", "feature/NAT-142"),
        ("development", "some-fix"),
        ("development", "main"),
        ("feature/NAT-142", "feature/NAT-143"),
    ],
)
def test_allowed_sources_pass(tmp_path, base, head):
    proc = check_source(pr_event(tmp_path, base, head))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::error" not in proc.stdout


@pytest.mark.parametrize("head", ["feature/NAT-142", "fix-typo", "hotfix/", "hotfix", "developments", "dependabot/cargo/x-1.2"])
def test_any_other_branch_into_main_fails_and_says_what_to_do(tmp_path, head):
    proc = check_source(pr_event(tmp_path, "main", head, number=17))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    annotation = [line for line in proc.stdout.splitlines() if line.startswith("::error title=Branch flow::")]
    assert len(annotation) == 1, proc.stdout
    assert head in annotation[0]
    assert "gh pr edit 17 --base development" in annotation[0]
    assert "hotfix/<ticket>" in annotation[0]


@pytest.mark.parametrize("head", ["development", "hotfix/NAT-7"])
def test_a_fork_or_a_deleted_fork_cannot_promote_even_from_a_branch_named_right(tmp_path, head):
    for head_repo in ("someone/nat-asg-hook", None):
        proc = check_source(pr_event(tmp_path, "main", head, head_repo=head_repo))
        assert proc.returncode == 1, (head_repo, proc.stdout + proc.stderr)
        assert "open yours into development" in proc.stdout


def test_reads_the_payload_from_github_event_path(tmp_path):
    assert check_source(pr_event(tmp_path, "main", "development"), via_env=True).returncode == 0
    assert check_source(pr_event(tmp_path, "main", "feature/NAT-1"), via_env=True).returncode == 1


def test_an_unreadable_or_foreign_payload_is_an_error_not_a_pass(tmp_path):
    assert check_source(None).returncode == 2
    assert check_source(tmp_path / "missing.json").returncode == 2
    (tmp_path / "push.json").write_text(json.dumps({"ref": "refs/heads/main"}))
    assert check_source(tmp_path / "push.json").returncode == 2
    (tmp_path / "junk.json").write_text("not json")
    assert check_source(tmp_path / "junk.json").returncode == 2


# --- the workflow that runs the rule --------------------------------------------------------------


def test_the_workflow_runs_the_rule_on_every_pull_request_into_main_as_a_job_named_branch_flow():
    workflow = load_workflow(BRANCH_FLOW)
    trigger = workflow["on"]
    assert set(trigger) == {"pull_request"}
    assert trigger["pull_request"]["branches"] == ["main"]
    # opened/synchronize/reopened are GitHub's default; edited catches a base changed to main.
    assert set(trigger["pull_request"]["types"]) == {"opened", "synchronize", "reopened", "edited"}
    assert workflow["permissions"] == {}
    [job] = workflow["jobs"].values()
    assert job["name"] == "Branch flow"
    assert job["permissions"] == {"contents": "read"}
    assert "if" not in job, "a skipped required check counts as passed"
    checkout = job["steps"][0]
    assert checkout["with"]["persist-credentials"] is False
    assert "scripts/check-pr-source.sh" in checkout["with"]["sparse-checkout"].split()


@pytest.mark.parametrize(
    "base, head, code",
    [("main", "development", 0), ("main", "hotfix/NAT-7", 0), ("main", "feature/NAT-1", 1), ("development", "feature/NAT-1", 0)],
)
def test_the_workflows_step_as_written_applies_the_rule(tmp_path, base, head, code):
    """The job's own `run:` text, run the way the runner does (bash, repository root, the payload's path)."""
    [job] = load_workflow(BRANCH_FLOW)["jobs"].values()
    [step] = [s for s in job["steps"] if "run" in s]
    env = {**os.environ, "GITHUB_EVENT_PATH": str(pr_event(tmp_path, base, head))}
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == code, proc.stdout + proc.stderr


# --- protect-branches.sh: dry run, --apply, the owner ---------------------------------------------


FAKE_GH = """\
import json, os, sys
body = sys.stdin.read() if "--input" in sys.argv else ""
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "stdin": body}) + "\\n")
if "--jq" in sys.argv:  # a read: the owner's id, an existing ruleset's id
    path = sys.argv[2]
    if path.startswith("users/"):
        print(os.environ.get("FAKE_GH_USER_ID", "4242"))
    elif "/rulesets" in path:
        print(os.environ.get("FAKE_GH_RULESET_ID", ""))
    sys.exit(0)
fail = os.environ.get("FAKE_GH_FAIL")
if fail and any(fail in arg for arg in sys.argv[1:]):
    print("gh: Not Found (HTTP 404)", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"url": "https://api.github.com/fake"}))
"""


@pytest.fixture
def sandbox(tmp_path):
    """A copy of the script and CODEOWNERS (the script writes CODEOWNERS next to itself), a fake gh first
    on PATH, and an environment without the variables the script reads."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    (root / ".github").mkdir()
    shutil.copy2(PROTECT, root / "scripts" / PROTECT.name)
    shutil.copy2(CODEOWNERS, root / ".github" / "CODEOWNERS")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f"#!{sys.executable}\n{FAKE_GH}")
    gh.chmod(0o755)
    log = tmp_path / "gh-calls.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in {"REPO_OWNER", "GITHUB_REPOSITORY", "FAKE_GH_FAIL"}}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", FAKE_GH_LOG=str(log))

    class Sandbox:
        codeowners = root / ".github" / "CODEOWNERS"

        @staticmethod
        def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["bash", str(root / "scripts" / PROTECT.name), *args], env={**env, **extra_env}, capture_output=True, text=True, timeout=30
            )

        @staticmethod
        def calls() -> list[tuple[str, str, dict]]:
            """(method, path, JSON body) of every `gh api` call that sends something, in order."""
            if not log.exists():
                return []
            out = []
            for line in log.read_text().splitlines():
                call = json.loads(line)
                argv = call["argv"]
                if "--input" not in argv:
                    assert "--method" not in argv and "--jq" in argv, argv  # a read (GET), nothing sent
                    continue
                assert argv[0] == "api" and argv[argv.index("--input") + 1] == "-", argv
                path = next(a for a in argv if a.startswith("repos/"))
                out.append((argv[argv.index("--method") + 1], path, json.loads(call["stdin"])))
            return out

        clear_calls = staticmethod(lambda: log.unlink(missing_ok=True))

    return Sandbox


def requests(stdout: str) -> list[tuple[str, str, dict]]:
    """The script's printed requests: blocks of `METHOD path` and a JSON body, blank-line separated."""
    out = []
    for block in stdout.strip().split("\n\n"):
        first, _, body = block.partition("\n")
        method, path = first.split(" ")
        out.append((method, path, json.loads(body)))
    return out


def test_a_dry_run_prints_the_requests_and_sends_nothing(sandbox):
    before = sandbox.codeowners.read_text()
    proc = sandbox.run("--repo", THIS_REPO)
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == []
    environments = f"repos/{THIS_REPO}/environments"
    assert [(m, p) for m, p, _ in requests(proc.stdout)] == [
        ("PATCH", f"repos/{THIS_REPO}"),
        ("PUT", f"repos/{THIS_REPO}/branches/main/protection"),
        ("PUT", f"repos/{THIS_REPO}/branches/development/protection"),
        ("PUT", f"{environments}/demo-test"),
        ("POST", f"{environments}/demo-test/deployment-branch-policies"),
        ("POST", f"{environments}/demo-test/deployment-branch-policies"),
        ("PUT", f"{environments}/teardown-test"),
        ("POST", f"{environments}/teardown-test/deployment-branch-policies"),
        ("POST", f"{environments}/teardown-test/deployment-branch-policies"),
        ("PUT", f"{environments}/demo-prod"),
        ("POST", f"{environments}/demo-prod/deployment-branch-policies"),
        ("PUT", f"{environments}/teardown-prod"),
        ("POST", f"{environments}/teardown-prod/deployment-branch-policies"),
        ("POST", f"repos/{THIS_REPO}/rulesets"),
        ("PUT", f"repos/{THIS_REPO}/immutable-releases"),
    ]
    assert sandbox.codeowners.read_text() == before


def test_apply_sends_exactly_what_the_dry_run_printed_and_is_idempotent(sandbox):
    printed = requests(sandbox.run("--repo", THIS_REPO).stdout)
    for _ in range(2):
        sandbox.clear_calls()
        proc = sandbox.run("--repo", THIS_REPO, "--apply")
        assert proc.returncode == 0, proc.stderr
        assert sandbox.calls() == printed


def test_a_failed_request_stops_the_script(sandbox):
    proc = sandbox.run("--repo", THIS_REPO, "--owner", "alice", "--apply", FAKE_GH_FAIL="branches/main/")
    assert proc.returncode != 0
    assert [p for _, p, _ in sandbox.calls()] == [f"repos/{THIS_REPO}", f"repos/{THIS_REPO}/branches/main/protection"]
    assert "@alice" not in sandbox.codeowners.read_text(), "nothing written after a failure"


def test_the_committed_codeowners_is_one_owner_and_what_the_script_writes():
    rules = [line for line in CODEOWNERS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(rules) == 1 and re.fullmatch(r"\* @[A-Za-z0-9-]+", rules[0]), rules


def test_the_owner_is_read_from_codeowners_and_rewritten_only_on_apply(sandbox):
    committed = sandbox.codeowners.read_text()
    committed_owner = re.search(r"^\* @(\S+)$", committed, re.M).group(1)

    # The owner written in CODEOWNERS: the default repository is theirs, and --apply leaves the file as is.
    assert sandbox.run("--apply").returncode == 0
    assert {p.split("/")[1] for _, p, _ in sandbox.calls()} == {committed_owner}
    assert sandbox.codeowners.read_text() == committed

    # Another owner: a dry run does not touch the file; --apply writes `* @alice` and nothing else.
    assert sandbox.run("--owner", "alice", "--repo", THIS_REPO).returncode == 0
    assert sandbox.codeowners.read_text() == committed
    assert sandbox.run("--owner", "alice", "--repo", THIS_REPO, "--apply").returncode == 0
    rules = [line for line in sandbox.codeowners.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert rules == ["* @alice"]

    # From then on the file is the owner: the default repository follows it. REPO_OWNER works as --owner.
    sandbox.clear_calls()
    assert sandbox.run("--apply").returncode == 0
    assert {p.split("/")[1] for _, p, _ in sandbox.calls()} == {"alice"}
    assert sandbox.run("--apply", REPO_OWNER="bob").returncode == 0
    assert "* @bob" in sandbox.codeowners.read_text().splitlines()


def test_realign_development_opens_force_pushes_on_development_and_nothing_else(sandbox):
    normal = requests(sandbox.run("--repo", THIS_REPO).stdout)
    realign = requests(sandbox.run("--repo", THIS_REPO, "--realign-development").stdout)
    assert normal[:2] == realign[:2]
    assert normal[2][2]["allow_force_pushes"] is False and realign[2][2]["allow_force_pushes"] is True
    assert {**normal[2][2], "allow_force_pushes": True} == realign[2][2]
    assert normal[3:] == realign[3:]


# --- environments and releases ------------------------------------------------------------------


def environment_settings(printed: list[tuple[str, str, dict]]) -> dict[str, dict]:
    """{environment: {"settings": its PUT body, "branches": the branch names its POSTs allow}}."""
    out: dict[str, dict] = {}
    for method, path, body in printed:
        match = re.fullmatch(rf"repos/{THIS_REPO}/environments/([a-z-]+)(/deployment-branch-policies)?", path)
        if not match:
            continue
        env = out.setdefault(match.group(1), {"settings": None, "branches": []})
        if match.group(2):
            assert method == "POST" and body["type"] == "branch"
            env["branches"].append(body["name"])
        else:
            assert method == "PUT"
            env["settings"] = body
    return out


def test_each_environment_deploys_only_its_branches_and_the_owner_approves_never_the_runs_starter(sandbox):
    proc = sandbox.run("--repo", THIS_REPO, "--owner", "alice", FAKE_GH_USER_ID="31337")
    assert proc.returncode == 0, proc.stderr
    environments = environment_settings(requests(proc.stdout))
    assert {name: env["branches"] for name, env in environments.items()} == {
        "demo-test": ["main", "development"],
        "teardown-test": ["main", "development"],
        "demo-prod": ["main"],
        "teardown-prod": ["main"],
    }
    for name, env in environments.items():
        assert env["settings"] == {
            "wait_timer": 0,
            "prevent_self_review": True,
            "reviewers": [{"type": "User", "id": 31337}],
            "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
        }, name


def test_the_environments_are_the_ones_the_deploy_role_trusts(sandbox):
    trust = (REPO / "terraform" / "policies" / "terraform-role-trust.json").read_text()
    subjects = set(re.findall(r"environment:([a-z]+)-\$\{environment\}", trust))
    environments = environment_settings(requests(sandbox.run("--repo", THIS_REPO).stdout))
    assert subjects == {"demo", "teardown"}
    assert set(environments) == {f"{s}-{env}" for s in subjects for env in ("test", "prod")}


def test_apply_refuses_environments_without_the_owners_id(sandbox):
    proc = sandbox.run("--repo", THIS_REPO, "--apply", FAKE_GH_USER_ID="")
    assert proc.returncode == 2 and "numeric id" in proc.stderr
    assert sandbox.calls() == [], "nothing sent"


def test_release_tags_are_the_owners_alone_and_releases_immutable(sandbox):
    printed = requests(sandbox.run("--repo", THIS_REPO).stdout)
    [(method, path, ruleset)] = [r for r in printed if "/rulesets" in r[1]]
    assert (method, path) == ("POST", f"repos/{THIS_REPO}/rulesets")
    assert ruleset["target"] == "tag" and ruleset["enforcement"] == "active"
    assert ruleset["conditions"] == {"ref_name": {"include": ["refs/tags/v*"], "exclude": []}}
    assert sorted(r["type"] for r in ruleset["rules"]) == ["creation", "deletion", "update"]
    # Only the repository administrator role (5) may bypass: the owner, in a personal repository.
    assert ruleset["bypass_actors"] == [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}]
    assert ("PUT", f"repos/{THIS_REPO}/immutable-releases", {}) in printed
    # The release workflow matches the ruleset's tags.
    release = load_workflow(WORKFLOWS / "release.yml")
    assert release["on"]["push"]["tags"] == ["v*"]


def test_an_existing_tag_ruleset_is_updated_in_place(sandbox):
    proc = sandbox.run("--repo", THIS_REPO, "--apply", FAKE_GH_RULESET_ID="77")
    assert proc.returncode == 0, proc.stderr
    rulesets = [(m, p) for m, p, _ in sandbox.calls() if "/rulesets" in p]
    assert rulesets == [("PUT", f"repos/{THIS_REPO}/rulesets/77")]


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["--owner"],
        ["--owner", "not a login"],
        ["--owner", "-alice"],
        ["--repo", "no-slash"],
        ["--repo", "a/b/c"],
    ],
)
def test_bad_arguments_fail_before_anything_is_sent(sandbox, args):
    proc = sandbox.run(*args, "--apply")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert sandbox.calls() == []
    assert proc.stdout == ""


def test_apply_without_gh_fails_clearly_and_a_dry_run_does_not_need_it(sandbox, tmp_path):
    # A PATH with the script's tools and no gh (CI runners have a real gh in /usr/bin).
    tools = tmp_path / "no-gh"
    tools.mkdir()
    for name in ("bash", "dirname", "sed", "head", "cat", "git"):
        (tools / name).symlink_to(shutil.which(name))
    proc = sandbox.run("--repo", THIS_REPO, "--owner", "alice", "--apply", PATH=str(tools))
    assert proc.returncode == 2
    assert "gh" in proc.stderr and "not on PATH" in proc.stderr
    assert "@alice" not in sandbox.codeowners.read_text()
    assert sandbox.run("--repo", THIS_REPO, PATH=str(tools)).returncode == 0


def test_the_options_contributing_names_exist():
    script = PROTECT.read_text()
    used = set(re.findall(r"protect-branches\.sh((?: --?[a-z][a-z-]*(?: [A-Z]+)?)*)", CONTRIBUTING.read_text()))
    options = {o for u in used for o in re.findall(r"--[a-z][a-z-]*", u)}
    assert options, "CONTRIBUTING.md shows how to run the script"
    for option in options:
        assert f"    {option})" in script, option


# --- one truth: the script's payloads, CONTRIBUTING.md's tables, the workflows' job names -----------


def flatten(payload: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}, "c": None} -> {"a.b": 1, "c": None}: an object's leaves, by dotted name."""
    out = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    tables, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(dict(zip(header, (c.strip() for c in lines[i].strip("|").split("|")), strict=False)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


ABSENT = object()


def cell_value(cell: str):
    """A cell's value is its first `code` span, read as JSON; a cell without one means: no such setting."""
    match = re.search(r"`([^`]*)`", cell)
    return json.loads(match.group(1)) if match else ABSENT


def field_of(cell: str) -> str:
    return re.fullmatch(r"`([a-z_.]+)`", cell).group(1)


@pytest.fixture(scope="module")
def payloads() -> dict[str, dict]:
    proc = subprocess.run(
        ["bash", str(PROTECT), "--repo", THIS_REPO],
        env={k: v for k, v in os.environ.items() if k != "REPO_OWNER"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    by_path = {path: body for _, path, body in requests(proc.stdout)}
    return {
        "environments": environment_settings(requests(proc.stdout)),
        "repository": by_path[f"repos/{THIS_REPO}"],
        "main": by_path[f"repos/{THIS_REPO}/branches/main/protection"],
        "development": by_path[f"repos/{THIS_REPO}/branches/development/protection"],
    }


def contributing_table(*columns: str) -> list[dict[str, str]]:
    found = [t for t in markdown_tables(CONTRIBUTING.read_text()) if t and set(columns) <= set(t[0])]
    assert len(found) == 1, f"one table in CONTRIBUTING.md with columns {columns}"
    return found[0]


def test_the_repository_settings_table_is_what_the_script_sets(payloads):
    table = {field_of(row["API field"]): cell_value(row["value"]) for row in contributing_table("API field", "value")}
    assert table == payloads["repository"]


def test_the_branch_protection_table_is_what_the_script_sets(payloads):
    rows = contributing_table("API field", "`main`", "`development`")
    for branch in ("main", "development"):
        leaves = flatten(payloads[branch])
        documented = {field_of(row["API field"]): cell_value(row[f"`{branch}`"]) for row in rows}
        assert {k: v for k, v in documented.items() if v is not ABSENT} == leaves, branch
        # A row without a value on this branch is a setting this branch does not have as such.
        assert not {k for k, v in documented.items() if v is ABSENT} & set(leaves), branch


def test_required_checks_are_jobs_that_report_on_every_pull_request_into_main(payloads):
    """GitHub names a job's check by the job's `name:`; a required name nothing reports blocks main for ever."""
    reporting = set()
    for path in WORKFLOWS.glob("*.y*ml"):
        workflow = load_workflow(path)
        trigger = workflow["on"].get("pull_request", ABSENT) if isinstance(workflow["on"], dict) else ABSENT
        if trigger is ABSENT:
            continue
        trigger = trigger or {}
        if "main" not in trigger.get("branches", ["main"]) or "paths" in trigger or "paths-ignore" in trigger:
            continue
        reporting |= {job["name"] for job in workflow["jobs"].values() if "workflow_dispatch" not in str(job.get("if", ""))}
    required = payloads["main"]["required_status_checks"]["contexts"]
    assert "Branch flow" in required
    assert set(required) <= reporting, set(required) - reporting


def test_the_environments_table_is_what_the_script_sets(payloads):
    rows = contributing_table("environment", "deployment branches", "`prevent_self_review`")
    documented = {
        row["environment"].strip("`"): {
            "branches": cell_value(row["deployment branches"]),
            "prevent_self_review": cell_value(row["`prevent_self_review`"]),
        }
        for row in rows
    }
    assert documented == {
        name: {"branches": env["branches"], "prevent_self_review": env["settings"]["prevent_self_review"]}
        for name, env in payloads["environments"].items()
    }
