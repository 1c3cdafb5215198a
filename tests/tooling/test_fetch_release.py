"""scripts/fetch-release.sh, the deploy path without a Rust toolchain: it must leave a zip at the path
it prints only when the zip is the release's (its published SHA-256, and its provenance attestation
for the tag, unless the user says --checksum-only), and must fail without leaving one otherwise. `gh` and `curl` are stand-ins on
PATH that serve a release from a directory and record how they were called; everything else is real."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "fetch-release.sh"
TAG = "v1.2.3"
GITHUB_REPO = "example-org/nat-asg-hook"
ZIP = b"PK\x03\x04 stand-in for the arm64 bootstrap zip"

# The real tools the script uses; nothing else is on its PATH (so a gh installed on this machine
# cannot stand in for the fake one, or be there when a test wants none).
SYSTEM_TOOLS = ("bash", "sed", "git", "dirname", "mkdir", "mktemp", "rm", "mv", "cut", "sha256sum", "cat", "chmod")

# The operator's binaries the release publishes, by target, and the machine (uname -s, uname -m)
# each is for.
CLI_TARGETS = {
    "x86_64-unknown-linux-musl": ("Linux", "x86_64"),
    "aarch64-unknown-linux-musl": ("Linux", "aarch64"),
    "aarch64-apple-darwin": ("Darwin", "arm64"),
    "x86_64-apple-darwin": ("Darwin", "x86_64"),
}


def cli_bytes(target: str) -> bytes:
    return f"\x7fELF stand-in for the {target} nat-asg-hook binary".encode()


FAKE_GH = """#!/usr/bin/env bash
echo "gh $*" >> "$FAKE_LOG"
case "$1 $2" in
  "auth status") exit "${FAKE_GH_AUTH:-0}" ;;
  "release download")
    # Only the assets asked for (--pattern), as gh does.
    dir=""; want=()
    while [ $# -gt 0 ]; do
      case "$1" in --dir) dir="$2"; shift ;; --pattern) want+=("$2"); shift ;; esac
      shift
    done
    for f in "${want[@]}"; do [ ! -f "$FAKE_RELEASE/$f" ] || cp "$FAKE_RELEASE/$f" "$dir"/; done ;;
  "attestation verify") exit "${FAKE_ATTESTATION:-0}" ;;
  *) exit 64 ;;
esac
"""

# uname as the machine under test would answer.
FAKE_UNAME = """#!/usr/bin/env bash
case "$1" in -s) echo "${FAKE_UNAME_S:-Linux}" ;; -m) echo "${FAKE_UNAME_M:-x86_64}" ;; *) exit 64 ;; esac
"""

FAKE_CURL = """#!/usr/bin/env bash
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in --output) out="$2"; shift ;; --proto|--tlsv1.2) [ "$1" = --proto ] && shift ;; -*) ;; *) url="$1" ;; esac
  shift
done
echo "curl $url" >> "$FAKE_LOG"
[ -f "$FAKE_RELEASE/${url##*/}" ] || exit 22
cp "$FAKE_RELEASE/${url##*/}" "$out"
"""


def sha256_line(data: bytes, name: str = "bootstrap.zip") -> str:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


@pytest.fixture
def world(tmp_path: Path):
    release = tmp_path / "release"
    release.mkdir()
    (release / "bootstrap.zip").write_bytes(ZIP)
    (release / "bootstrap.zip.sha256").write_text(sha256_line(ZIP))
    for target in CLI_TARGETS:
        asset = f"nat-asg-hook-{target}"
        (release / asset).write_bytes(cli_bytes(target))
        (release / f"{asset}.sha256").write_text(sha256_line(cli_bytes(target), asset))

    system = tmp_path / "system-bin"
    system.mkdir()
    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (system / tool).symlink_to(found)
    (system / "env").symlink_to(shutil.which("env"))
    (system / "cp").symlink_to(shutil.which("cp"))

    # A copy outside any clone: the script's fallback to its clone's GitHub origin finds nothing.
    script = tmp_path / "scripts" / SCRIPT.name
    script.parent.mkdir()
    shutil.copy(SCRIPT, script)

    fakes = tmp_path / "fake-bin"
    fakes.mkdir()
    for name, body in (("gh", FAKE_GH), ("curl", FAKE_CURL), ("uname", FAKE_UNAME)):
        (fakes / name).write_text(body)
        (fakes / name).chmod(0o755)

    class World:
        root = tmp_path
        dest = tmp_path / "out"
        log = tmp_path / "calls.log"

        def run(self, *args: str, gh: bool = True, **env: str) -> subprocess.CompletedProcess:
            if not gh:
                (fakes / "gh").unlink(missing_ok=True)
            environ = {
                "PATH": f"{fakes}{os.pathsep}{system}",
                "HOME": str(tmp_path),
                "FAKE_RELEASE": str(release),
                "FAKE_LOG": str(self.log),
                **env,
            }
            return subprocess.run(["bash", str(script), *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60)

        def calls(self) -> list[str]:
            return self.log.read_text().splitlines() if self.log.exists() else []

        def leftovers(self) -> list[str]:
            return sorted(p.name for p in self.dest.iterdir()) if self.dest.exists() else []

    world = World()
    world.release = release
    return world


def test_with_gh_the_zip_is_downloaded_checked_attested_and_its_path_printed(world):
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO)
    assert proc.returncode == 0, proc.stderr
    printed = Path(proc.stdout.strip())
    assert printed == world.dest / "bootstrap.zip" and printed.is_absolute()
    assert printed.read_bytes() == ZIP
    assert world.leftovers() == ["bootstrap.zip", "bootstrap.zip.sha256"], "no scratch directory is left"
    calls = world.calls()
    assert any(c.startswith(f"gh release download {TAG} --repo {GITHUB_REPO}") for c in calls), calls
    [verify] = [c for c in calls if c.startswith("gh attestation verify ")]
    # this repository's release workflow, for this very tag (created on main only), on GitHub's runners
    assert verify.endswith(
        f"--repo {GITHUB_REPO} --signer-workflow {GITHUB_REPO}/.github/workflows/release.yml"
        f" --source-ref refs/tags/{TAG} --deny-self-hosted-runners"
    ), verify


def test_a_zip_whose_checksum_differs_is_not_left_at_the_path(world):
    (world.release / "bootstrap.zip").write_bytes(ZIP + b"tampered")
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert world.leftovers() == []
    assert not any("attestation" in c for c in world.calls()), "nothing more is asked of a zip that failed its checksum"


def test_a_failed_download_keeps_the_zip_verified_before(world):
    first = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO)
    assert first.returncode == 0, first.stderr
    (world.release / "bootstrap.zip.sha256").write_text(sha256_line(b"another zip"))
    again = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO)
    assert again.returncode == 1
    assert (world.dest / "bootstrap.zip").read_bytes() == ZIP
    assert world.leftovers() == ["bootstrap.zip", "bootstrap.zip.sha256"]


def test_a_zip_without_valid_provenance_is_refused(world):
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO, FAKE_ATTESTATION="1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert world.leftovers() == []


def test_a_checksum_file_for_another_name_is_refused(world):
    (world.release / "bootstrap.zip.sha256").write_text(sha256_line(ZIP).replace("bootstrap.zip", "other.zip"))
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO)
    assert proc.returncode == 1 and world.leftovers() == []


@pytest.mark.parametrize("gh", [False, True], ids=["no-gh", "gh-logged-out"])
def test_without_a_logged_in_gh_it_fails_closed_before_downloading(world, gh):
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO, gh=gh, FAKE_GH_AUTH="1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "--checksum-only" in proc.stderr, "it says how to go on without the provenance"
    assert [c for c in world.calls() if not c.startswith("gh auth status")] == [], "nothing downloaded"
    assert world.leftovers() == []


@pytest.mark.parametrize("gh", [False, True], ids=["no-gh", "gh-logged-out"])
def test_checksum_only_without_gh_curl_downloads_the_public_assets_and_the_checksum_is_checked(world, gh):
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO, "--checksum-only", gh=gh, FAKE_GH_AUTH="1")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).read_bytes() == ZIP
    assert "build provenance NOT verified (--checksum-only)" in proc.stderr
    curls = [c for c in world.calls() if c.startswith("curl ")]
    assert curls == [
        f"curl https://github.com/{GITHUB_REPO}/releases/download/{TAG}/bootstrap.zip",
        f"curl https://github.com/{GITHUB_REPO}/releases/download/{TAG}/bootstrap.zip.sha256",
    ]
    assert not any("attestation" in c for c in world.calls())


def test_checksum_only_still_refuses_a_zip_whose_checksum_differs(world):
    (world.release / "bootstrap.zip").write_bytes(ZIP + b"tampered")
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO, "--checksum-only", gh=False)
    assert proc.returncode == 1 and world.leftovers() == []


def test_require_attestation_is_the_default_and_fails_when_gh_cannot_verify(world):
    proc = world.run(TAG, "--dest", str(world.dest), "--repo", GITHUB_REPO, "--require-attestation", gh=False)
    assert proc.returncode == 1 and world.leftovers() == []


def test_the_default_destination_is_dist_tag_and_the_repository_may_come_from_gh_repo(world):
    proc = world.run(TAG, GH_REPO=GITHUB_REPO)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == world.root / "dist" / TAG / "bootstrap.zip"


@pytest.mark.parametrize(
    "args",
    [
        ["--repo", GITHUB_REPO],
        ["latest", "--repo", GITHUB_REPO],
        ["v1/../../x", "--repo", GITHUB_REPO],
        [TAG, "--repo", GITHUB_REPO, "--dest"],
        [TAG, "--repo", GITHUB_REPO, "--frobnicate"],
        [TAG, TAG, "--repo", GITHUB_REPO],
        [TAG, "--repo", "not-a-repo"],
    ],
    ids=["no-tag", "not-a-tag", "path-in-tag", "dest-without-dir", "unknown-option", "two-tags", "bad-repo"],
)
def test_bad_arguments_fail_before_any_download(world, args):
    proc = world.run(*args)
    assert proc.returncode == 1
    assert proc.stderr.startswith("fetch-release: ")
    assert world.calls() == []
    assert world.leftovers() == []


def test_without_a_repository_it_says_how_to_name_one(world):
    proc = world.run(TAG)
    assert proc.returncode == 1 and "--repo" in proc.stderr
    assert world.calls() == []


# --- the operator's binary (--cli) ------------------------------------------------------------------


@pytest.mark.parametrize("target", list(CLI_TARGETS))
def test_cli_fetches_the_binary_for_this_machine_checked_attested_and_executable(world, target):
    system, machine = CLI_TARGETS[target]
    asset = f"nat-asg-hook-{target}"
    proc = world.run(TAG, "--cli", "--dest", str(world.dest), "--repo", GITHUB_REPO, FAKE_UNAME_S=system, FAKE_UNAME_M=machine)
    assert proc.returncode == 0, proc.stderr
    printed = Path(proc.stdout.strip())
    assert printed == world.dest / "nat-asg-hook" and printed.read_bytes() == cli_bytes(target)
    assert os.access(printed, os.X_OK), "ready to run"
    assert world.leftovers() == sorted(["nat-asg-hook", f"{asset}.sha256"])
    calls = world.calls()
    [download] = [c for c in calls if c.startswith("gh release download ")]
    assert download.endswith(f"--pattern {asset} --pattern {asset}.sha256"), download
    [verify] = [c for c in calls if c.startswith("gh attestation verify ")]
    assert f"/{asset} --repo {GITHUB_REPO}" in verify
    assert verify.endswith(
        f"--signer-workflow {GITHUB_REPO}/.github/workflows/release.yml --source-ref refs/tags/{TAG} --deny-self-hosted-runners"
    ), verify


def test_cli_target_may_be_named_for_another_machine(world):
    proc = world.run(TAG, "--cli", "--target", "aarch64-apple-darwin", "--dest", str(world.dest), "--repo", GITHUB_REPO)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).read_bytes() == cli_bytes("aarch64-apple-darwin")


def test_cli_binary_without_valid_provenance_is_not_left_at_the_path(world):
    proc = world.run(TAG, "--cli", "--dest", str(world.dest), "--repo", GITHUB_REPO, FAKE_ATTESTATION="1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert world.leftovers() == []


def test_cli_binary_whose_checksum_differs_is_refused(world):
    (world.release / "nat-asg-hook-x86_64-unknown-linux-musl").write_bytes(b"tampered")
    proc = world.run(TAG, "--cli", "--dest", str(world.dest), "--repo", GITHUB_REPO)
    assert proc.returncode == 1 and proc.stdout == "" and world.leftovers() == []
    assert not any("attestation" in c for c in world.calls())


def test_cli_without_a_logged_in_gh_fails_closed(world):
    proc = world.run(TAG, "--cli", "--dest", str(world.dest), "--repo", GITHUB_REPO, gh=False)
    assert proc.returncode == 1 and "--checksum-only" in proc.stderr
    assert world.calls() == [] and world.leftovers() == []


@pytest.mark.parametrize(
    "args,env",
    [
        (["--cli"], {"FAKE_UNAME_S": "FreeBSD", "FAKE_UNAME_M": "amd64"}),
        (["--cli", "--target", "riscv64gc-unknown-linux-gnu"], {}),
        (["--target", "x86_64-apple-darwin"], {}),
    ],
    ids=["unsupported-machine", "unknown-target", "target-without-cli"],
)
def test_cli_refuses_what_the_release_does_not_build_before_downloading(world, args, env):
    proc = world.run(TAG, *args, "--dest", str(world.dest), "--repo", GITHUB_REPO, **env)
    assert proc.returncode == 1 and proc.stderr.startswith("fetch-release: "), proc.stderr
    assert [c for c in world.calls() if not c.startswith("gh auth")] == []
    assert world.leftovers() == []
