#!/usr/bin/env bash
# Bootstrap one environment's AWS account for the nat-asg-hook stack: the Terraform state bucket
# (versioned, SSE-KMS, never public, TLS only; the stack locks with a lock file in it) and the roles
# GitHub Actions assumes through OIDC (terraform-role deploys, terraform-plan-role only reads), whose
# policies are the JSON files in terraform/policies/.
#
# Runs terraform in terraform/bootstrap. Plans only, unless --apply. Never destroys anything.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/bootstrap.sh --profile NAME --env test|prod [--skip-iam] [--apply]

  --profile NAME  AWS profile (from ~/.aws/config or ~/.aws/credentials) of an administrator of the
                  environment's account. Required: the bootstrap runs with that profile and nothing
                  else (AWS_ACCESS_KEY_ID and friends are ignored), so it cannot land in the wrong
                  account by accident. Defaults to $AWS_PROFILE when that is set.
  --env ENV       test or prod: the bucket, key and region come from
                  terraform/environments/ENV/backend-ENV.hcl, the stack name from its vars.tfvars.
  --skip-iam      Create the state bucket only: no OIDC provider, no roles, no policies (for accounts
                  whose IAM another team manages; give them terraform/policies/).
  --apply         Apply the plan. Without it the script only plans.
  -h, --help      This help.

Environment:
  GITHUB_REPOSITORY   owner/name allowed to assume the roles (default: from the git remote origin)
  BOOTSTRAP_STATE_DIR where the bootstrap keeps its own state (default: terraform/bootstrap/state);
                      keep that file: the bucket it created cannot hold it
  TF_PLUGIN_DIR       a local provider mirror (terraform init -plugin-dir), when set
  AWS_ENDPOINT_URL    an AWS API emulator instead of AWS (the tests use moto)
EOF
}

die() {
  printf 'bootstrap: %s\n' "$*" >&2
  exit 2
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tf_dir="$repo_root/terraform/bootstrap"
known_envs=(test prod)

profile="${AWS_PROFILE:-}"
env=""
skip_iam=false
apply=false

while (($# > 0)); do
  case "$1" in
    --profile)
      (($# >= 2)) || die "--profile needs a value"
      profile="$2"
      shift 2
      ;;
    --profile=*)
      profile="${1#*=}"
      shift
      ;;
    --env)
      (($# >= 2)) || die "--env needs a value (${known_envs[*]})"
      env="$2"
      shift 2
      ;;
    --env=*)
      env="${1#*=}"
      shift
      ;;
    --skip-iam)
      skip_iam=true
      shift
      ;;
    --apply)
      apply=true
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: $1"
      ;;
  esac
done

# --- the environment ------------------------------------------------------------------------------

[[ -n "$env" ]] || die "missing --env (one of: ${known_envs[*]})"
known=false
for e in "${known_envs[@]}"; do
  [[ "$env" == "$e" ]] && known=true
done
$known || die "unknown environment '$env' (one of: ${known_envs[*]})"

env_dir="$repo_root/terraform/environments/$env"
backend_file="$env_dir/backend-$env.hcl"
vars_file="$env_dir/vars.tfvars"
[[ -f "$backend_file" ]] || die "environment '$env' has no backend file: $backend_file"
[[ -f "$vars_file" ]] || die "environment '$env' has no variables file: $vars_file"

# The string value of `key = "value"` in an HCL file (backend files and tfvars are that simple).
hcl_string() {
  sed -nE "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"([^\"]*)\".*/\\1/p" "$2" | head -n 1
}

state_bucket="$(hcl_string bucket "$backend_file")"
state_key="$(hcl_string key "$backend_file")"
region="$(hcl_string region "$backend_file")"
stack_name="$(hcl_string name "$vars_file")"
[[ -n "$state_bucket" ]] || die "no bucket = \"...\" in $backend_file"
[[ -n "$state_key" ]] || die "no key = \"...\" in $backend_file"
[[ -n "$region" ]] || die "no region = \"...\" in $backend_file"
[[ -n "$stack_name" ]] || die "no name = \"...\" in $vars_file"

# --- the profile ----------------------------------------------------------------------------------

[[ -n "$profile" ]] || die "missing --profile: name the AWS profile of an administrator of the $env account (see ~/.aws/config)"

config_file="${AWS_CONFIG_FILE:-$HOME/.aws/config}"
credentials_file="${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}"

# A profile is [profile NAME] (or [default]) in the config file, or [NAME] in the credentials file.
has_section() {
  [[ -r "$2" ]] || return 1
  awk -v want="$1" '
    { line = $0; gsub(/^[ \t]+|[ \t]+$/, "", line) }
    line == "[" want "]" { found = 1 }
    END { exit found ? 0 : 1 }
  ' "$2"
}

if [[ "$profile" == "default" ]]; then
  has_section "default" "$config_file" || has_section "default" "$credentials_file" ||
    die "AWS profile 'default' not found in $config_file or $credentials_file"
else
  has_section "profile $profile" "$config_file" || has_section "$profile" "$credentials_file" ||
    die "AWS profile '$profile' not found in $config_file or $credentials_file"
fi

# The profile and nothing else: keys in the environment would win over it.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_DEFAULT_PROFILE
export AWS_PROFILE="$profile"
export AWS_REGION="$region"

# --- the GitHub repository the roles trust --------------------------------------------------------

github_repository="${GITHUB_REPOSITORY:-}"
if [[ -z "$github_repository" ]]; then
  origin="$(git -C "$repo_root" remote get-url origin 2>/dev/null || true)"
  if [[ "$origin" =~ github\.com[:/]([^/]+/[^/]+)$ ]]; then
    github_repository="${BASH_REMATCH[1]%.git}"
  fi
fi
if ! $skip_iam && [[ -z "$github_repository" ]]; then
  die "cannot tell which GitHub repository the roles trust: set GITHUB_REPOSITORY=owner/name (or use --skip-iam)"
fi

# --- terraform ------------------------------------------------------------------------------------

command -v terraform >/dev/null || die "terraform is not on PATH (1.10 or later)"

state_dir="${BOOTSTRAP_STATE_DIR:-$tf_dir/state}"
mkdir -p "$state_dir"
state_file="$(cd "$state_dir" && pwd)/$env.tfstate"

init_args=(-input=false -reconfigure "-backend-config=path=$state_file")
if [[ -n "${TF_PLUGIN_DIR:-}" ]]; then
  init_args+=("-plugin-dir=$TF_PLUGIN_DIR")
fi

tf_vars=(
  -var "environment=$env"
  -var "region=$region"
  -var "state_bucket=$state_bucket"
  -var "state_key=$state_key"
  -var "stack_name=$stack_name"
  -var "manage_iam=$([[ $skip_iam == true ]] && echo false || echo true)"
)
if [[ -n "$github_repository" ]]; then
  tf_vars+=(-var "github_repository=$github_repository")
fi

plan_file="$(mktemp "${TMPDIR:-/tmp}/bootstrap-$env.XXXXXX.tfplan")"
trap 'rm -f "$plan_file"' EXIT

printf 'bootstrap: %s account via profile %s: bucket %s (%s), stack %s, IAM %s\n' \
  "$env" "$profile" "$state_bucket" "$region" "$stack_name" "$($skip_iam && echo skipped || echo "for $github_repository")" >&2

terraform -chdir="$tf_dir" init "${init_args[@]}" >/dev/null
terraform -chdir="$tf_dir" plan -input=false -out="$plan_file" "${tf_vars[@]}"

# The bootstrap only ever adds or updates: a plan that deletes or replaces anything (say --skip-iam on
# an account whose roles it created) stops here. Do that by hand, on purpose.
plan_json="$(terraform -chdir="$tf_dir" show -json "$plan_file")"
if grep -Eq '"actions":\[[^]]*"delete"' <<<"$plan_json"; then
  die "the plan deletes or replaces resources (above); the bootstrap never does: nothing applied"
fi

if ! $apply; then
  printf '\nbootstrap: plan only; run again with --apply to create it.\n' >&2
  exit 0
fi

terraform -chdir="$tf_dir" apply -input=false "$plan_file"

cat >&2 <<EOF

bootstrap: done. Keep $state_file (the bootstrap's own state).
Next:
  - terraform/environments/$env/backend-$env.hcl should read (terraform -chdir=terraform/bootstrap output -raw backend_config):
$(terraform -chdir="$tf_dir" output -raw backend_config | sed 's/^/      /')
EOF
if ! $skip_iam; then
  cat >&2 <<EOF
  - GitHub environments demo-$env and teardown-$env: variable AWS_ROLE_ARN = $(terraform -chdir="$tf_dir" output -raw deploy_role_arn)
  - repository variable AWS_PLAN_ROLE_ARN (test account) = $(terraform -chdir="$tf_dir" output -raw plan_role_arn)
EOF
fi
