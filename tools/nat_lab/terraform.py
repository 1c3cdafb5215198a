"""Terraform for the tests: a scratch copy of terraform/ (no .terraform, state or lock file ever lands
in the repository), `init` from the machine's plugin mirror when $TF_PLUGIN_DIR names one (the public
registry otherwise, as for any user), and the Lambda zip built from the already-built binary."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import REPO

TERRAFORM_DIR = REPO / "terraform"
_SKIP = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", ".terraform.lock.hcl", "*.zip")


def terraform_bin() -> str:
    found = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not found:
        raise FileNotFoundError("terraform is not on PATH")
    return found


DEFAULT_PLUGIN_DIR = Path("/opt/tf-plugins")


def plugin_dir() -> str:
    """The provider mirror, as the Makefile finds it: $TF_PLUGIN_DIR, or when it is unset the
    machine's mirror if it has one; empty means the public registry."""
    found = os.environ.get("TF_PLUGIN_DIR")
    if found is None and DEFAULT_PLUGIN_DIR.is_dir():
        found = str(DEFAULT_PLUGIN_DIR)
    return (found or "").strip()


def plugin_args() -> list[str]:
    """`-plugin-dir=...` when there is a provider mirror (see `plugin_dir`)."""
    return [f"-plugin-dir={plugin_dir()}"] if plugin_dir() else []


def base_env(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if env is None else env)
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    # A CLI config file that does not exist only earns a warning on every command.
    if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).exists():
        del env["TF_CLI_CONFIG_FILE"]
    return env


def scratch_copy(dest: Path) -> Path:
    """terraform/ copied to dest/terraform, so that init and state stay out of the work tree."""
    target = dest / "terraform"
    shutil.copytree(TERRAFORM_DIR, target, ignore=_SKIP)
    return target


def build_zip(binary: Path, dest: Path) -> Path:
    """The Lambda package: the binary as `bootstrap`, executable (what cargo lambda builds)."""
    path = dest / "bootstrap.zip"
    info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, binary.read_bytes(), compresslevel=1)
    return path


class TerraformError(AssertionError):
    pass


# moto's threaded server, loaded (seen with a compiler running beside it), now and then answers a
# rule or route that the provider has just created as already existing: the provider's create then
# fails half-way and taints the resource. AWS does not do this, and a second apply replaces the
# tainted resource and converges, so `apply` retries once on exactly these errors and nothing else.
EMULATOR_RACES = ("InvalidPermission.Duplicate", "RouteAlreadyExists")
# A loaded machine once saw the provider's wait for a Lambda permission's deletion time out while
# moto still listed it (make test, 2026-12-06): the deletion itself had been sent.
DESTROY_RACES = ("delete: found resource",)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class Terraform:
    """terraform -chdir=workdir, with an environment (the emulator's, for the local environment)."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = base_env(self.env or None)
        self._aborted = threading.Event()
        self._abort_reason = ""

    def abort(self, reason: str) -> None:
        """Stops the running command (from another thread): it raises TerraformError with `reason`."""
        self._abort_reason = reason
        self._aborted.set()

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> Result:
        """The command, within `timeout` seconds and until `abort()`: either stops it and raises."""
        cmd = [terraform_bin(), f"-chdir={self.workdir}", *args]
        self._aborted.clear()  # an abort stops the command it was meant for, not the clean-up after it
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                late = time.monotonic() - start > timeout
                if not (late or self._aborted.is_set()):
                    continue
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    stdout, stderr = proc.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    stdout, stderr = proc.communicate()
                why = f"no end after {timeout:.0f}s" if late else self._abort_reason
                raise TerraformError(f"terraform {args[0]} stopped: {why}\n{stdout[-3000:]}\n{stderr[-3000:]}") from None
        result = Result(proc.returncode, stdout, stderr, time.monotonic() - start)
        if check and proc.returncode != 0:
            raise TerraformError(f"terraform {' '.join(args)} exited {proc.returncode}\n{stdout[-6000:]}\n{stderr[-6000:]}")
        return result

    def init(self, backend: bool = True) -> Result:
        args = ["init", "-input=false", "-no-color", *plugin_args()]
        if not backend:
            args.append("-backend=false")
        return self.run(*args)

    def validate(self) -> Result:
        return self.run("validate", "-no-color")

    def apply(self, *var_args: str, check: bool = True) -> Result:
        """`terraform apply`; once more if the emulator lost a race (see EMULATOR_RACES), the two
        logs joined. Any other failure raises at once, unless `check` is false."""
        args = ("apply", "-auto-approve", "-input=false", "-no-color", *var_args)
        result = self.run(*args, check=False)
        race = next((m for m in EMULATOR_RACES if result.code != 0 and m in result.stdout + result.stderr), None)
        if race:
            print(f"terraform apply hit an emulator race ({race}); applying once more", file=sys.stderr)
            again = self.run(*args, check=False)
            result = Result(again.code, result.stdout + again.stdout, result.stderr + again.stderr, result.seconds + again.seconds)
        if check and result.code != 0:
            raise TerraformError(f"terraform apply exited {result.code}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
        self.timings.setdefault("apply", result.seconds)
        return result

    def plan_changes(self, *var_args: str) -> tuple[bool, Result]:
        """(whether the plan has changes, the plan): `-detailed-exitcode` answers 0 or 2."""
        result = self.run("plan", "-input=false", "-no-color", "-detailed-exitcode", *var_args, check=False)
        if result.code not in (0, 2):
            raise TerraformError(f"terraform plan failed\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
        return result.code == 2, result

    def destroy(self, *var_args: str) -> Result:
        """`terraform destroy`; once more if the provider's wait for a deletion lost a race with the
        emulator (DESTROY_RACES: the second run finds the resource gone or deletes it again)."""
        args = ("destroy", "-auto-approve", "-input=false", "-no-color", *var_args)
        result = self.run(*args, check=False)
        race = next((m for m in DESTROY_RACES if result.code != 0 and m in result.stdout + result.stderr), None)
        if race:
            print(f"terraform destroy hit an emulator race ({race}); destroying once more", file=sys.stderr)
            again = self.run(*args, check=False)
            result = Result(again.code, result.stdout + again.stdout, result.stderr + again.stderr, result.seconds + again.seconds)
        if result.code != 0:
            raise TerraformError(f"terraform destroy exited {result.code}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
        self.timings.setdefault("destroy", result.seconds)
        return result

    def outputs(self) -> dict:
        """`terraform output -json`, as {name: value}."""
        raw = json.loads(self.run("output", "-json").stdout)
        return {name: item["value"] for name, item in raw.items()}


def local_environment(workdir: Path, endpoint: str, env: dict[str, str], lambda_zip: Path) -> tuple[Terraform, list[str]]:
    """The `local` environment in a scratch copy: its files that point the stack at the emulator
    (backend and provider overrides, the endpoint variable) in place, initialised. Returns the
    runner and the variable arguments every plan/apply/destroy takes."""
    return emulated_environment(workdir, "local", endpoint, env, lambda_zip)


def emulated_environment(workdir: Path, name: str, endpoint: str, env: dict[str, str], lambda_zip: Path) -> tuple[Terraform, list[str]]:
    """Environment `name` (its vars.tfvars) applied to the emulator: a scratch copy with the local
    environment's emulator files in place (local state, the emulator's endpoints), initialised."""
    root = scratch_copy(workdir)
    for path in (root / "environments" / "local").glob("*.tf"):
        shutil.copy(path, root / path.name)
    tf = Terraform(root, env)
    tf.init()
    var_args = [
        f"-var-file={root / 'environments' / name / 'vars.tfvars'}",
        f"-var=aws_endpoint_url={endpoint}",
        f"-var=lambda_zip_path={lambda_zip}",
    ]
    return tf, var_args


def inventory(moto) -> dict[str, set[str]]:
    """Everything the stack can create, as the emulator lists it: compare one taken before `apply`
    with one taken after `destroy` to prove nothing is left behind."""
    ec2 = moto.client("ec2")
    autoscaling = moto.client("autoscaling")
    instance_states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    found = {
        "vpcs": {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]},
        "subnets": {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]},
        "route_tables": {t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]},
        "internet_gateways": {g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]},
        "security_groups": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]},
        "addresses": {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]},
        # AWS deletes an instance's primary interface with the instance; moto keeps it, attached to the
        # terminated instance. Those are not left behind; any other interface is.
        "network_interfaces": {
            n["NetworkInterfaceId"]
            for n in ec2.describe_network_interfaces()["NetworkInterfaces"]
            if instance_states.get(n.get("Attachment", {}).get("InstanceId", "")) != "terminated"
        },
        "launch_templates": {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]},
        "flow_logs": {f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]},
        "instances": {i for i, state in instance_states.items() if state not in ("terminated", "shutting-down")},
        "autoscaling_groups": {g["AutoScalingGroupName"] for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]},
        "functions": {f["FunctionName"] for f in moto.client("lambda").list_functions()["Functions"]},
        "roles": {r["RoleName"] for r in moto.client("iam").list_roles()["Roles"]},
        "rules": {r["Name"] for r in moto.client("events").list_rules()["Rules"]},
        "queues": set(moto.client("sqs").list_queues().get("QueueUrls", [])),
        "log_groups": {g["logGroupName"] for g in moto.client("logs").describe_log_groups()["logGroups"]},
        "alarms": {a["AlarmName"] for a in moto.client("cloudwatch").describe_alarms()["MetricAlarms"]},
        "dashboards": {d["DashboardName"] for d in moto.client("cloudwatch").list_dashboards()["DashboardEntries"]},
    }
    return found
