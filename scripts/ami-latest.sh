#!/usr/bin/env bash
# The NAT instances' image is pinned per environment (nat_ami_id in terraform/environments/<env>/
# vars.tfvars), so that a new Amazon Linux release never makes an unrelated apply replace them.
# Rolling to a newer image is this deliberate step: for each environment, print the pinned AMI, the
# newest Amazon Linux 2023 arm64 AMI in the environment's region (AWS's public SSM parameter), and
# the change to make. Then review, plan (one instance refresh per zone) and apply as usual.
#
#   scripts/ami-latest.sh [--profile NAME] [--env ENV]... [--write] [--check]
#
#   --profile NAME  AWS profile to ask (default: $AWS_PROFILE, or the usual credential chain)
#   --env ENV       only this environment (repeatable; default: test prod)
#   --write         make the change in the vars.tfvars files (nothing else is touched)
#   --check         exit 1 when an environment is behind (for a scheduled job)
#
# Needs the AWS CLI, with ssm:GetParameter on AWS's public parameter and ec2:DescribeImages.
set -euo pipefail

PARAMETER=/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64
DEFAULT_REGION=us-east-1 # the stack's default (terraform/variables.tf, variable "region")
ENVIRONMENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../terraform/environments" && pwd)

die() {
  echo "ami-latest: $*" >&2
  exit 2
}

profile=()
envs=()
write=false
check=false
while (($# > 0)); do
  case $1 in
    --profile)
      (($# > 1)) || die "--profile needs a name"
      profile=(--profile "$2")
      shift 2
      ;;
    --env)
      (($# > 1)) || die "--env needs an environment"
      envs+=("$2")
      shift 2
      ;;
    --write) write=true && shift ;;
    --check) check=true && shift ;;
    *) die "unknown argument: $1" ;;
  esac
done
((${#envs[@]} > 0)) || envs=(test prod)
command -v aws >/dev/null || die "the AWS CLI is not on PATH"

# tfvar FILE NAME: the quoted string value of `NAME = "..."` in a tfvars file, or nothing.
tfvar() {
  sed -n -E "s/^$2[[:space:]]*=[[:space:]]*\"([^\"]*)\".*/\1/p" "$1" | head -n 1
}

behind=0
for env in "${envs[@]}"; do
  file=$ENVIRONMENTS_DIR/$env/vars.tfvars
  [[ -f $file ]] || die "unknown environment '$env' (no $file)"
  region=$(tfvar "$file" region)
  region=${region:-$DEFAULT_REGION}
  pinned=$(tfvar "$file" nat_ami_id)

  latest=$(aws "${profile[@]}" ssm get-parameter --region "$region" --name "$PARAMETER" --query Parameter.Value --output text)
  name=$(aws "${profile[@]}" ec2 describe-images --region "$region" --image-ids "$latest" --query 'Images[0].Name' --output text 2>/dev/null) || name=""
  [[ -n $name && $name != None ]] || name="name unknown"

  if [[ $pinned == ssm:latest ]]; then
    echo "$env ($region): follows the latest ($latest, $name) at every apply: nothing to pin"
  elif [[ $pinned == "$latest" ]]; then
    echo "$env ($region): up to date, nat_ami_id = $pinned ($name)"
  else
    behind=1
    echo "$env ($region): pinned ${pinned:-nothing}, latest $latest ($name)"
    echo "  change ${file#"$ENVIRONMENTS_DIR"/}: nat_ami_id = \"$latest\" # $name"
    if $write; then
      sed -i -E "s|^nat_ami_id[[:space:]]*=.*$|nat_ami_id = \"$latest\" # $name|" "$file"
      grep -q "^nat_ami_id = \"$latest\"" "$file" || die "$file has no nat_ami_id line to change"
      echo "  written; now plan it: every NAT group of $env will be refreshed, one zone at a time"
    fi
  fi
done

if $check && ((behind)) && ! $write; then
  exit 1
fi
