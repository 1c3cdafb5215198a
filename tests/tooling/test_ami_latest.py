"""scripts/ami-latest.sh against the emulator: moto answers AWS's public SSM parameter for the latest
Amazon Linux 2023 arm64 AMI with the value it recorded from AWS. The script runs from a scratch copy
of scripts/ and terraform/environments/; assertions read the tfvars files and the exit status."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
OLD = "ami-0123456789abcdef0"


@pytest.fixture
def sandbox(tmp_path) -> Path:
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    shutil.copytree(REPO / "terraform" / "environments", tmp_path / "terraform" / "environments")
    return tmp_path


def run(moto, sandbox: Path, *args: str) -> int:
    if not shutil.which("aws"):
        pytest.fail("the AWS CLI is missing (scripts/ami-latest.sh needs it)")
    proc = subprocess.run(
        ["bash", str(sandbox / "scripts" / "ami-latest.sh"), *args], env=moto.env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode


def pinned(sandbox: Path, env: str) -> str:
    text = (sandbox / "terraform" / "environments" / env / "vars.tfvars").read_text()
    [value] = re.findall(r'^nat_ami_id\s*=\s*"([^"]+)"', text, re.M)
    return value


def pin(sandbox: Path, env: str, ami: str) -> None:
    path = sandbox / "terraform" / "environments" / env / "vars.tfvars"
    path.write_text(re.sub(r"^nat_ami_id\s*=.*$", f'nat_ami_id = "{ami}"', path.read_text(), flags=re.M))


def test_an_environment_behind_the_latest_is_rolled_only_on_request(fresh_moto, sandbox):
    latest = fresh_moto.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    pin(sandbox, "test", OLD)
    pin(sandbox, "prod", latest)
    before = (sandbox / "terraform" / "environments" / "test" / "vars.tfvars").read_text()

    assert run(fresh_moto, sandbox, "--check") == 1, "test is behind"
    assert (sandbox / "terraform" / "environments" / "test" / "vars.tfvars").read_text() == before, "printing changes nothing"

    assert run(fresh_moto, sandbox, "--env", "test", "--write") == 0
    assert pinned(sandbox, "test") == latest
    assert pinned(sandbox, "prod") == latest
    assert run(fresh_moto, sandbox, "--check") == 0, "nothing behind any more"


def test_an_environment_that_follows_the_latest_is_left_alone(fresh_moto, sandbox):
    path = sandbox / "terraform" / "environments" / "test" / "vars.tfvars"
    path.write_text(re.sub(r"^nat_ami_id\s*=.*$", 'nat_ami_id = "ssm:latest"', path.read_text(), flags=re.M))
    before = path.read_text()
    assert run(fresh_moto, sandbox, "--env", "test", "--write", "--check") == 0
    assert path.read_text() == before
