"""Running the real nat-asg-hook binary: as the operator CLI, and as a Lambda function served by
`cargo lambda watch` and invoked with `cargo lambda invoke`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import REPO
from .process import Process, free_port

FUNCTION = "nat-asg-hook"


def cargo_target() -> Path:
    """Cargo's output directory: $CARGO_TARGET_DIR (relative to the repository, as cargo run from it
    reads it), else ./target."""
    return REPO / os.environ.get("CARGO_TARGET_DIR", "target")


def hook_bin() -> Path:
    """The binary under test: $HOOK_BIN, else the one `cargo nextest run` built."""
    path = Path(os.environ.get("HOOK_BIN", cargo_target() / "debug" / FUNCTION))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `make bin` builds it (make test and make demo do too)")
    return path


def cargo_lambda() -> str:
    found = os.environ.get("CARGO_LAMBDA") or shutil.which("cargo-lambda") or str(REPO / ".venv" / "bin" / "cargo-lambda")
    if not Path(found).exists():
        raise FileNotFoundError("cargo-lambda is missing: `make venv` installs it into .venv")
    return found


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict:
        """The result JSON: the last line of stdout."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if not lines:
            raise AssertionError(f"no result on stdout; stderr:\n{self.stderr}")
        return json.loads(lines[-1])


def run(env: dict, *args: str, config: Path | None = None, timeout: float = 90) -> Run:
    cmd = [str(hook_bin())]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += list(args)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


class LambdaWatch:
    """`cargo lambda watch --only-lambda-apis` emulating the Lambda control plane, and the prebuilt
    binary serving it as function `nat-asg-hook` (cargo lambda watch would otherwise compile the
    function again, with other features: the SDK is built once per run)."""

    def __init__(self, env: dict, config_json: str, log_dir: Path, binary: Path | None = None, port: int | None = None):
        self.port = port or free_port()
        self.env = env
        self.function_log_path = log_dir / f"function-{self.port}.log"
        self.function = None
        self.watch = Process(
            [cargo_lambda(), "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(self.port)],
            env,
            log_dir / f"cargo-lambda-watch-{self.port}.log",
            cwd=REPO,
        )
        try:
            self.watch.wait_for_port(self.port)
            function_env = dict(
                env,
                AWS_LAMBDA_FUNCTION_NAME=FUNCTION,
                AWS_LAMBDA_FUNCTION_VERSION="1",
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
                AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{self.port}/.rt/{FUNCTION}",
                AWS_LAMBDA_LOG_FORMAT="JSON",
                NAT_ASG_HOOK_CONFIG=config_json,
            )
            self.function = Process([str(binary or hook_bin())], function_env, self.function_log_path)
        except BaseException:  # a failure, or Ctrl-C / a stop signal while starting: nothing is left running
            self.stop()
            raise

    def invoke(self, data_file: Path, timeout: float = 90) -> tuple[int, dict | None, str]:
        """`cargo lambda invoke --data-file`: (exit code, result JSON or None, stderr)."""
        if self.function is not None and self.function.poll() is not None:
            raise RuntimeError(f"the function exited ({self.function.returncode}); see {self.function_log_path}")
        proc = subprocess.run(
            [cargo_lambda(), "lambda", "invoke", "-A", "127.0.0.1", "-P", str(self.port), "--data-file", str(data_file), FUNCTION],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = None
        if proc.returncode == 0 and proc.stdout.strip():
            result = json.loads(proc.stdout)
        return proc.returncode, result, proc.stderr

    def stop(self) -> None:
        for proc in (self.function, self.watch):
            if proc is not None:
                proc.stop()

    def __enter__(self) -> LambdaWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
