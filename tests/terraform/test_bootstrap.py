"""scripts/bootstrap.sh against the emulator: one account's story, from a plan that creates nothing to
the state bucket and the GitHub OIDC roles, each step checked against moto's state (bucket settings,
roles, trust and attached policies), never against the script's output. The script runs from a
scratch copy of the repository's scripts/ and terraform/, so no state or lock file lands in the tree,
with a profile from AWS config files written here: it ignores the environment's keys."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import policies
import pytest

from nat_lab import terraform as tf_lab

REPO = Path(__file__).resolve().parents[2]
PROFILE = "nat-bootstrap-test"
GITHUB_REPOSITORY = "example-org/nat-asg-hook"
ENV = "test"
ACCOUNT = "123456789012"  # moto's default account
OIDC_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/stack-role-boundary-{ENV}"


def hcl_string(key: str, path: Path) -> str:
    match = re.search(rf'^\s*{key}\s*=\s*"([^"]*)"', path.read_text(), re.M)
    assert match, f"no {key} in {path}"
    return match.group(1)


BACKEND = REPO / "terraform" / "environments" / ENV / f"backend-{ENV}.hcl"
BUCKET = hcl_string("bucket", BACKEND)
STATE_KEY = hcl_string("key", BACKEND)
REGION = hcl_string("region", BACKEND)
STACK = hcl_string("name", REPO / "terraform" / "environments" / ENV / "vars.tfvars")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """scripts/ and terraform/{bootstrap,policies,environments} copied, AWS config files beside them."""
    root = tmp_path_factory.mktemp("bootstrap")
    shutil.copytree(REPO / "scripts", root / "repo" / "scripts")
    for part in ("bootstrap", "policies", "environments"):
        shutil.copytree(
            REPO / "terraform" / part,
            root / "repo" / "terraform" / part,
            ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "state"),
        )
    aws = root / "aws"
    aws.mkdir()
    (aws / "config").write_text(f"[profile {PROFILE}]\nregion = {REGION}\n")
    (aws / "credentials").write_text(f"[{PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    return root


@dataclass
class Script:
    code: int
    stdout: str
    stderr: str


def run_bootstrap(moto, sandbox: Path, *args: str, **env_overrides: str | None) -> Script:
    env = tf_lab.base_env(moto.env())
    env.update(
        AWS_CONFIG_FILE=str(sandbox / "aws" / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(sandbox / "aws" / "credentials"),
        BOOTSTRAP_STATE_DIR=str(sandbox / "state"),
        TF_DATA_DIR=str(sandbox / "tf-data"),
        TF_PLUGIN_DIR=tf_lab.plugin_dir(),
        GITHUB_REPOSITORY=GITHUB_REPOSITORY,
    )
    env.pop("TF_CLI_CONFIG_FILE", None)  # a developer's CLI configuration must not steer the provider install
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    proc = subprocess.run(
        ["bash", str(sandbox / "repo" / "scripts" / "bootstrap.sh"), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Script(proc.returncode, proc.stdout, proc.stderr)


def must(run: Script) -> Script:
    assert run.code == 0, f"exit {run.code}\n--- stdout\n{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}"
    return run


# --- what the emulator holds ----------------------------------------------------------------------


def buckets(moto) -> set[str]:
    return {b["Name"] for b in moto.client("s3").list_buckets()["Buckets"]}


def roles(moto) -> set[str]:
    return {r["RoleName"] for r in moto.client("iam").list_roles()["Roles"]}


def oidc_providers(moto) -> set[str]:
    return {p["Arn"] for p in moto.client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]}


def policy_names(moto) -> set[str]:
    return {p["PolicyName"] for p in moto.client("iam").list_policies(Scope="Local")["Policies"]}


@dataclass
class Account:
    after_plan_only: dict = field(default_factory=dict)
    after_skip_iam: dict = field(default_factory=dict)
    role_created: dict = field(default_factory=dict)


def snapshot(moto) -> dict:
    return {"buckets": buckets(moto), "roles": roles(moto), "oidc": oidc_providers(moto), "policies": policy_names(moto)}


@pytest.fixture(scope="module")
def account(moto, sandbox):
    """One account's story: plan only, then the bucket alone (--skip-iam), then the roles too."""
    moto.reset()
    story = Account()

    must(run_bootstrap(moto, sandbox, "--profile", PROFILE, "--env", ENV))
    story.after_plan_only = snapshot(moto)

    must(run_bootstrap(moto, sandbox, "--profile", PROFILE, "--env", ENV, "--skip-iam", "--apply"))
    story.after_skip_iam = snapshot(moto)

    must(run_bootstrap(moto, sandbox, "--profile", PROFILE, "--env", ENV, "--apply"))
    iam = moto.client("iam")
    story.role_created = {name: iam.get_role(RoleName=name)["Role"]["CreateDate"] for name in ("terraform-role", "terraform-plan-role")}
    yield story
    moto.reset()  # the session's emulator, left empty for the next module


def rendered(name: str, kms_key_arn: str) -> dict:
    """terraform/policies/<name>.json with this account's values, as templatefile renders it."""
    values = {
        "partition": "aws",
        "account_id": ACCOUNT,
        "region": REGION,
        "environment": ENV,
        "stack_name": STACK,
        "state_bucket": BUCKET,
        "state_key": STATE_KEY,
        "state_kms_key_arn": kms_key_arn,
        "github_repository": GITHUB_REPOSITORY,
        "oidc_provider_arn": OIDC_PROVIDER,
        "deploy_role_name": "terraform-role",
        "plan_role_name": "terraform-plan-role",
        "boundary_policy_arn": BOUNDARY_ARN,
    }
    return policies.render(name, values)


def state_key_arn(moto) -> str:
    rule = moto.client("s3").get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    return rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]


# --- the story ------------------------------------------------------------------------------------


def test_without_apply_nothing_is_created(account):
    assert BUCKET not in account.after_plan_only["buckets"]
    assert not {"terraform-role", "terraform-plan-role"} & account.after_plan_only["roles"]
    assert not account.after_plan_only["oidc"]


def test_skip_iam_creates_the_state_bucket_and_no_iam(account):
    assert BUCKET in account.after_skip_iam["buckets"]
    assert not {"terraform-role", "terraform-plan-role"} & account.after_skip_iam["roles"]
    assert not account.after_skip_iam["oidc"]
    assert not {p for p in account.after_skip_iam["policies"] if p.startswith("terraform-")}


def test_state_bucket_is_versioned_kms_encrypted_private_and_tls_only(account, moto):
    s3 = moto.client("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"

    [rule] = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is True
    key = moto.client("kms").describe_key(KeyId=state_key_arn(moto))["KeyMetadata"]
    assert key["Enabled"] and key["KeyManager"] == "CUSTOMER"
    assert moto.client("kms").get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True

    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]

    statements = {st["Sid"]: st for st in json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]}
    deny = statements["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    [expiry] = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert expiry["Status"] == "Enabled" and expiry["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0


def test_the_state_is_written_with_the_state_key_only(account, moto):
    """The bucket policy refuses a PutObject that asks for SSE-S3 or names another key, and the backend
    file names the key the bootstrap made (its alias). (moto refuses every object call here already,
    plain http: the conditions are checked on the policy S3 holds.)"""
    key_arn = state_key_arn(moto)
    [alias] = [a for a in moto.client("kms").list_aliases(KeyId=key_arn)["Aliases"] if a["AliasName"] == f"alias/{BUCKET}"]
    statements = {st["Sid"]: st for st in json.loads(moto.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]}
    objects = f"arn:aws:s3:::{BUCKET}/*"
    other_encryption, other_keys = statements["DenyOtherEncryption"], statements["DenyOtherKeys"]
    for deny in (other_encryption, other_keys):
        assert deny["Effect"] == "Deny" and deny["Principal"] in ("*", {"AWS": "*"})
        assert deny["Action"] == "s3:PutObject" and deny["Resource"] == objects
    assert other_encryption["Condition"] == {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}
    allowed_keys = other_keys["Condition"]["StringNotEqualsIfExists"]["s3:x-amz-server-side-encryption-aws-kms-key-id"]
    assert sorted(allowed_keys) == sorted([key_arn, alias["AliasName"], alias["AliasArn"]])
    backend = (REPO / "terraform" / "environments" / ENV / f"backend-{ENV}.hcl").read_text()
    assert hcl_string("kms_key_id", BACKEND) == alias["AliasName"] and "encrypt      = true" in backend


def test_state_bucket_refuses_plain_http(account, moto):
    """The TLS-only policy holds: the emulator is reached over http, so every object call is refused."""
    s3 = moto.client("s3")
    for call in (
        lambda: s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=b"{}"),
        lambda: s3.get_object(Bucket=BUCKET, Key=STATE_KEY),
    ):
        with pytest.raises(s3.exceptions.ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_github_oidc_provider_is_for_sts(account, moto):
    assert account.after_plan_only["oidc"] == set()
    provider = moto.client("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=OIDC_PROVIDER)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]


def test_deploy_role_trusts_only_the_repositorys_demo_and_teardown_environments(account, moto):
    trust = moto.client("iam").get_role(RoleName="terraform-role")["Role"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": [
                f"repo:{GITHUB_REPOSITORY}:environment:demo-{ENV}",
                f"repo:{GITHUB_REPOSITORY}:environment:teardown-{ENV}",
            ],
        }
    }
    assert trust == rendered("terraform-role-trust", state_key_arn(moto))


def test_plan_role_trusts_pull_requests_and_the_two_long_lived_branches(account, moto):
    trust = moto.client("iam").get_role(RoleName="terraform-plan-role")["Role"]["AssumeRolePolicyDocument"]
    assert trust == rendered("terraform-plan-role-trust", state_key_arn(moto))
    subjects = trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subjects == [
        f"repo:{GITHUB_REPOSITORY}:pull_request",
        f"repo:{GITHUB_REPOSITORY}:ref:refs/heads/main",
        f"repo:{GITHUB_REPOSITORY}:ref:refs/heads/development",
    ]


@pytest.mark.parametrize(("role", "names"), [("terraform-role", policies.DEPLOY), ("terraform-plan-role", policies.PLAN)])
def test_roles_carry_exactly_the_policy_files_rendered_for_this_account(account, moto, role, names):
    iam = moto.client("iam")
    attached = {p["PolicyName"]: p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}
    assert sorted(attached) == sorted(f"{name}-{ENV}" for name in names)
    assert not iam.list_role_policies(RoleName=role)["PolicyNames"], "no inline policy: only the reviewed files"
    for name in names:
        arn = attached[f"{name}-{ENV}"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        if isinstance(document, str):
            document = json.loads(document)
        assert document == rendered(name, state_key_arn(moto)), name


def test_policies_scope_writes_to_the_stack_and_its_state(account, moto):
    """No write action allowed on "*": only Describe-style reads take no resource (a Deny on "*"
    takes away, it grants nothing)."""
    for name in policies.DEPLOY + policies.PLAN:
        for statement in rendered(name, state_key_arn(moto))["Statement"]:
            if statement["Effect"] == "Deny":
                continue
            resources = policies.as_list(statement["Resource"])
            if "*" in resources:
                actions = policies.as_list(statement["Action"])
                assert all(re.match(r"^\w+:(Describe|List|Get)", a) for a in actions), (name, statement["Sid"])
            else:
                public = ("::image/", "::parameter/aws/service/")  # AMIs and AWS's own public parameters
                assert all(
                    f":{ACCOUNT}:" in r or r.startswith(f"arn:aws:s3:::{BUCKET}") or any(p in r for p in public) for r in resources
                ), (name, resources)


def test_the_deploy_role_terminates_only_egress_probes_and_attaches_only_the_ssm_core_policy(account, moto):
    """What the deploy role was given for the stack's egress probes, as attached in this account: it
    terminates an instance only when it carries the probe's purpose tag (a NAT is its group's to
    terminate), and attaches to the stack's roles no managed policy but AmazonSSMManagedInstanceCore."""
    iam = moto.client("iam")
    statements = []
    for policy in iam.list_attached_role_policies(RoleName="terraform-role")["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
        statements += (json.loads(document) if isinstance(document, str) else document)["Statement"]
    granting = {
        action: [s for s in statements if s["Effect"] == "Allow" and action in policies.as_list(s["Action"])]
        for action in ("ec2:TerminateInstances", "iam:AttachRolePolicy", "iam:DetachRolePolicy")
    }
    [terminate] = granting["ec2:TerminateInstances"]
    assert terminate["Resource"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"
    assert terminate["Condition"] == {
        "StringEquals": {"aws:ResourceTag/Project": "nat-asg-hook", "aws:ResourceTag/nat-asg-hook:purpose": "egress-probe"}
    }
    for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
        [attach] = granting[action]
        assert attach["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/{STACK}-*"
        assert attach["Condition"] == {
            "ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"},
            "StringEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN},
        }


def deploy_statements(moto) -> list[dict]:
    """Every statement of the policies attached to the deploy role, as IAM holds them."""
    iam = moto.client("iam")
    statements = []
    for policy in iam.list_attached_role_policies(RoleName="terraform-role")["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
        statements += (json.loads(document) if isinstance(document, str) else document)["Statement"]
    return statements


# Every call that creates a role or changes what it may do, and takes IAM's iam:PermissionsBoundary key
# (for CreateRole and PutRolePermissionsBoundary the boundary in the request; for the others the
# boundary the role already has). UpdateAssumeRolePolicy takes no such key: the deploy role is not
# given it (a stack role's trust changes by replacing the role).
ROLE_WRITES = (
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
)


def test_the_bootstrap_creates_the_stacks_permissions_boundary_and_gives_it_to_no_role_of_its_own(account, moto):
    iam = moto.client("iam")
    policy = iam.get_policy(PolicyArn=BOUNDARY_ARN)["Policy"]
    document = iam.get_policy_version(PolicyArn=BOUNDARY_ARN, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    assert (json.loads(document) if isinstance(document, str) else document) == rendered(policies.BOUNDARY, state_key_arn(moto))
    entities = iam.list_entities_for_policy(PolicyArn=BOUNDARY_ARN)
    assert not entities["PolicyRoles"] and not entities["PolicyUsers"] and not entities["PolicyGroups"]


def test_the_deploy_role_creates_and_writes_roles_only_with_the_boundary(account, moto):
    """IAM's condition, checked on the documents IAM holds (moto enforces actions, not conditions):
    every Allow of a role write requires the boundary, and a Deny refuses each one without it, so no
    other grant can lift it."""
    statements = deploy_statements(moto)
    for action in ROLE_WRITES:
        allows = [s for s in statements if s["Effect"] == "Allow" and action in policies.as_list(s["Action"])]
        assert allows, action
        for allow in allows:
            assert allow["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/{STACK}-*", (action, allow["Sid"])
            assert allow["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == BOUNDARY_ARN, (action, allow["Sid"])
    [deny] = [s for s in statements if s["Sid"] == "NoRoleWithoutTheStacksBoundary"]
    assert deny["Effect"] == "Deny" and deny["Resource"] == "*"
    assert sorted(deny["Action"]) == sorted(ROLE_WRITES)
    assert deny["Condition"] == {"StringNotEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}}


def test_the_deploy_role_can_neither_remove_nor_rewrite_a_boundary_nor_touch_its_own_roles(account, moto):
    statements = deploy_statements(moto)
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in policies.as_list(s["Action"])}
    never = {
        "iam:DeleteRolePermissionsBoundary",
        "iam:UpdateAssumeRolePolicy",
        "iam:CreatePolicy",
        "iam:CreatePolicyVersion",
        "iam:DeletePolicy",
        "iam:DeletePolicyVersion",
        "iam:SetDefaultPolicyVersion",
    }
    assert not allowed & never
    assert not [a for a in allowed if a.startswith("iam:") and "*" in a]
    denied_everywhere = {
        a
        for s in statements
        if s["Effect"] == "Deny" and "Condition" not in s and s["Resource"] == "*"
        for a in policies.as_list(s["Action"])
    }
    assert {
        "iam:DeleteRolePermissionsBoundary",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:DeletePolicy",
    } <= denied_everywhere
    [own] = [s for s in statements if s["Sid"] == "NeverTheDeployOrPlanRoleItself"]
    assert sorted(own["Resource"]) == [f"arn:aws:iam::{ACCOUNT}:role/terraform-plan-role", f"arn:aws:iam::{ACCOUNT}:role/terraform-role"]
    assert set(ROLE_WRITES) | {"iam:DeleteRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole"} <= set(own["Action"])


def test_the_boundary_scopes_every_write_to_the_stack(account, moto):
    """What a role of the stack can ever do, whatever the deploy role writes into it: reads, X-Ray
    and the SSM agent's channels on "*" (they take no resource), every other call on this account's
    resources of the stack (its name prefix, or the Project tag the deploy role sets only at creation)."""
    boundary = rendered(policies.BOUNDARY, state_key_arn(moto))
    assert all(s["Effect"] == "Allow" for s in boundary["Statement"])
    for statement in boundary["Statement"]:
        actions, resources = policies.as_list(statement["Action"]), policies.as_list(statement["Resource"])
        if resources == ["*"] and actions == ["cloudwatch:PutMetricData"]:  # no resource type: the namespace condition scopes it
            assert statement.get("Condition") == {"StringEquals": {"cloudwatch:namespace": "NatAsgHook"}}, statement["Sid"]
            continue
        if actions == ["events:PutEvents"]:  # the default bus is no stack's: the source condition scopes it
            assert len(resources) == 1 and re.match(rf"^arn:aws:events:[\w-]+:{ACCOUNT}:event-bus/default$", resources[0]), statement["Sid"]
            assert statement.get("Condition") == {"StringEquals": {"events:source": "nat-asg-hook.nat"}}, statement["Sid"]
            continue
        if resources == ["*"]:
            assert all(re.match(r"^(\w+:Describe|xray:Put|ssm:|ssmmessages:|ec2messages:)", a) for a in actions), statement["Sid"]
            assert not [a for a in actions if a.startswith("ssm:Get") and "Parameter" in a], "no parameter reads"
            continue
        assert all(f":{ACCOUNT}:" in r for r in resources), statement["Sid"]
        scoped_by_name = all(f"/{STACK}-" in r or f"/{STACK}/" in r or f":{STACK}-" in r for r in resources)
        scoped_by_tag = statement.get("Condition") == {"StringEquals": {"aws:ResourceTag/Project": "nat-asg-hook"}}
        assert scoped_by_name or scoped_by_tag, statement["Sid"]
    actions = {a for s in boundary["Statement"] for a in policies.as_list(s["Action"])}
    assert not [a for a in actions if a.startswith(("iam:", "sts:", "kms:", "s3:", "lambda:"))]


def test_a_deploy_or_plan_role_named_inside_the_stacks_prefix_is_refused(moto, tmp_path):
    """A stack named `terraform` would put terraform-role among the roles the deploy role writes."""
    root = tmp_path / "bootstrap"
    shutil.copytree(REPO / "scripts", root / "repo" / "scripts")
    for part in ("bootstrap", "policies", "environments"):
        shutil.copytree(
            REPO / "terraform" / part,
            root / "repo" / "terraform" / part,
            ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "state"),
        )
    tfvars = root / "repo" / "terraform" / "environments" / ENV / "vars.tfvars"
    tfvars.write_text(re.sub(r'^name\s*=\s*"[^"]*"', 'name = "terraform"', tfvars.read_text(), flags=re.M))
    aws = root / "aws"
    aws.mkdir()
    (aws / "config").write_text(f"[profile {PROFILE}]\nregion = {REGION}\n")
    (aws / "credentials").write_text(f"[{PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    run = run_bootstrap(moto, root, "--profile", PROFILE, "--env", ENV)
    assert run.code != 0
    assert "deploy_role_name must not start with" in run.stderr, run.stderr[-3000:]


def test_running_it_again_changes_nothing(account, moto, sandbox):
    must(run_bootstrap(moto, sandbox, "--profile", PROFILE, "--env", ENV, "--apply"))
    iam = moto.client("iam")
    for name, created in account.role_created.items():
        assert iam.get_role(RoleName=name)["Role"]["CreateDate"] == created


def test_a_plan_that_deletes_is_refused_and_nothing_is_applied(account, moto, sandbox):
    """--skip-iam on an account whose roles the bootstrap created would destroy them: it stops."""
    run = run_bootstrap(moto, sandbox, "--profile", PROFILE, "--env", ENV, "--skip-iam", "--apply")
    assert run.code == 2
    assert {"terraform-role", "terraform-plan-role"} <= roles(moto)
    assert OIDC_PROVIDER in oidc_providers(moto)
    assert BUCKET in buckets(moto)


# --- refusals, before any AWS call --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--env", ENV], {"AWS_PROFILE": None}, "missing --profile"),
        (["--profile", "nobody", "--env", ENV], {}, "AWS profile 'nobody' not found"),
        (["--profile", PROFILE, "--env", "staging"], {}, "unknown environment 'staging' (one of: test prod)"),
        (["--profile", PROFILE], {}, "missing --env"),
        (["--profile", PROFILE, "--env", ENV, "--force"], {}, "unknown argument: --force"),
        (["--profile", PROFILE, "--env", ENV], {"GITHUB_REPOSITORY": ""}, "set GITHUB_REPOSITORY=owner/name"),
    ],
    ids=["no-profile", "unknown-profile", "unknown-env", "no-env", "unknown-flag", "no-repository"],
)
def test_bad_input_is_refused_with_a_clear_error(moto, sandbox, args, env, says):
    run = run_bootstrap(moto, sandbox, *args, **env)
    assert run.code == 2
    assert says in run.stderr
    assert "Traceback" not in run.stderr and "Error:" not in run.stderr, "refused before terraform ran"


def test_profile_from_aws_profile_when_not_given(moto, sandbox):
    """--profile defaults to $AWS_PROFILE, and is checked just the same."""
    run = run_bootstrap(moto, sandbox, "--env", ENV, AWS_PROFILE="not-there")
    assert run.code == 2 and "AWS profile 'not-there' not found" in run.stderr


@pytest.mark.parametrize("env", ["test", "prod"])
def test_every_backend_file_names_its_buckets_state_key(env):
    """The bootstrap's key alias is alias/<bucket>: a backend without kms_key_id would ask for SSE-S3,
    which the bucket refuses."""
    backend = REPO / "terraform" / "environments" / env / f"backend-{env}.hcl"
    assert hcl_string("kms_key_id", backend) == f"alias/{hcl_string('bucket', backend)}"
    assert re.search(r"^encrypt\s*=\s*true$", backend.read_text(), re.M)
