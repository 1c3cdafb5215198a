#!/usr/bin/env bash
# verify_nat.sh: the data-plane proof. For every zone, ask a check-IP service from a host in that
# zone's private subnet which address its egress leaves with, and compare it with the zone's static
# EIP. Exit 0 only when every zone leaves through its own EIP.
#
#   scripts/verify_nat.sh [--tf-dir DIR] [--region REGION] [--check-ip-url URL] [--timeout S]
#       On AWS. From each zone's egress probe (the root stack's optional `egress_probe` instance, an
#       SSM-managed host in the zone's private subnet), through `aws ssm send-command`
#       (AWS-RunShellScript: curl the check-IP URL). What it reads, from `terraform output -json`
#       in --tf-dir (default: terraform/):
#         nat_public_ips             {zone: EIP public IP}       (the root stack's output)
#         egress_probe_instance_ids  {zone: instance ID}         (empty when egress_probe is off)
#       Or given by hand, instead of Terraform: --zone ZONE=EIP=INSTANCE_ID (repeatable).
#       Needs: aws (CLI), curl on the probes (Amazon Linux has it), python3 to read Terraform's JSON,
#       and permission for ssm:SendCommand on the probes and ssm:GetCommandInvocation.
#
#   scripts/verify_nat.sh --lab FILE
#       In the data-plane lab (`python -m nat_lab.lab --serve` writes FILE, target/lab/lab-state.tsv):
#       the same check from each zone's private host namespace (`ip netns exec`, so as root).
#
# Per zone it prints one line: `ok` (own EIP), `FAILED OVER` (a sibling zone's EIP: egress works,
# but partners see the sibling's address until the zone's own NAT is back), `NO EGRESS`, or
# `FOREIGN` (an address that is no zone's EIP). Exit status: 0 every zone ok; 1 any other verdict;
# 2 usage or configuration error.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

TF_DIR=terraform
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
CHECK_IP_URL=https://checkip.amazonaws.com
TIMEOUT=60
LAB_FILE=
declare -a GIVEN=()

while (($# > 0)); do
  case $1 in
    --tf-dir) TF_DIR=${2:?}; shift 2 ;;
    --region) REGION=${2:?}; shift 2 ;;
    --check-ip-url) CHECK_IP_URL=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --zone) GIVEN+=("${2:?}"); shift 2 ;;
    --lab) LAB_FILE=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "verify_nat.sh: unknown argument $1" >&2; usage ;;
  esac
done

# zone -> EIP, zone -> where to ask from (an instance ID, or a lab namespace)
declare -A EIP=() FROM=()
declare -a ZONES=()

# verdict ZONE SEEN: prints the zone's line; status 0 only for its own EIP.
verdict() {
  local zone=$1 seen=$2 other
  if [[ -z $seen ]]; then
    printf '%-16s NO EGRESS    no answer from %s\n' "$zone" "$CHECK_IP_URL"
    return 1
  fi
  if [[ $seen == "${EIP[$zone]}" ]]; then
    printf '%-16s ok           leaves as %s, its own EIP\n' "$zone" "$seen"
    return 0
  fi
  for other in "${ZONES[@]}"; do
    if [[ $seen == "${EIP[$other]}" ]]; then
      printf '%-16s FAILED OVER  leaves as %s, the EIP of %s (own: %s)\n' "$zone" "$seen" "$other" "${EIP[$zone]}"
      return 1
    fi
  done
  printf '%-16s FOREIGN      leaves as %s: no zone'"'"'s EIP (own: %s)\n' "$zone" "$seen" "${EIP[$zone]}"
  return 1
}

# The check-IP URL goes into a root shell on each probe (AWS-RunShellScript) and into curl in the lab:
# an http(s) URL of plain characters only, no quote, space, `$`, `;`, backtick or the like.
valid_url() {
  [[ $1 =~ ^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+=-]*)?$ ]]
}
require_valid_url() {
  valid_url "$CHECK_IP_URL" || { echo "verify_nat.sh: not a plain http(s) URL: $CHECK_IP_URL" >&2; exit 2; }
}

# --- where the zones are ------------------------------------------------------------------------------

load_lab() {
  local kind a b c
  [[ -r $LAB_FILE ]] || { echo "verify_nat.sh: cannot read $LAB_FILE (is the lab running?)" >&2; exit 2; }
  while IFS=$'\t' read -r kind a b c; do
    case $kind in
      check_ip_url) CHECK_IP_URL=$a ;;
      zone) ZONES+=("$a"); FROM[$a]=$b; EIP[$a]=$c ;;
    esac
  done <"$LAB_FILE"
}

load_given() {
  local spec zone rest
  for spec in "${GIVEN[@]}"; do
    zone=${spec%%=*}
    rest=${spec#*=}
    if [[ $zone == "$spec" || $rest != *=* ]]; then
      echo "verify_nat.sh: --zone takes ZONE=EIP=INSTANCE_ID, not $spec" >&2
      exit 2
    fi
    ZONES+=("$zone")
    EIP[$zone]=${rest%%=*}
    FROM[$zone]=${rest#*=}
  done
}

load_terraform() {
  local outputs zone eip probe
  outputs=$(terraform -chdir="$TF_DIR" output -json) || { echo "verify_nat.sh: terraform output failed in $TF_DIR" >&2; exit 2; }
  # One line per zone: zone, EIP, probe instance ID (empty without one).
  while IFS=$'\t' read -r zone eip probe; do
    ZONES+=("$zone")
    EIP[$zone]=$eip
    FROM[$zone]=$probe
  done < <(python3 -c '
import json, sys
out = json.load(sys.stdin)
value = lambda name: (out.get(name) or {}).get("value") or {}
eips, probes = value("nat_public_ips"), value("egress_probe_instance_ids")
for zone in sorted(eips):
    print(zone, eips[zone], probes.get(zone, ""), sep="\t")
' <<<"$outputs")
}

# --- asking -----------------------------------------------------------------------------------------

ask_lab() {
  ip netns exec "$1" curl -fsS --max-time 5 "$CHECK_IP_URL" 2>/dev/null | tr -d '[:space:]' || true
}

ask_ssm() {
  local instance=$1 command_id status output deadline
  # JSON parameters, the URL single-quoted in the command (require_valid_url: it holds no quote).
  local parameters
  parameters=$(printf '{"commands":["curl -fsS --max-time 10 '"'"'%s'"'"'"]}' "$CHECK_IP_URL")
  command_id=$(aws ssm send-command ${REGION:+--region "$REGION"} --instance-ids "$instance" \
    --document-name AWS-RunShellScript --comment "verify_nat.sh: egress source address" \
    --parameters "$parameters" \
    --query Command.CommandId --output text) || return 0
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    sleep 2
    read -r status output < <(aws ssm get-command-invocation ${REGION:+--region "$REGION"} \
      --command-id "$command_id" --instance-id "$instance" \
      --query '[Status, StandardOutputContent]' --output text 2>/dev/null || echo "Pending")
    case $status in
      Success) echo "$output" | tr -d '[:space:]'; return 0 ;;
      Failed | Cancelled | TimedOut | Undeliverable | Terminated) return 0 ;;
    esac
  done
}

require_valid_url
if [[ -n $LAB_FILE ]]; then
  load_lab
  require_valid_url
elif ((${#GIVEN[@]} > 0)); then
  load_given
else
  command -v terraform >/dev/null || { echo "verify_nat.sh: terraform is not on PATH (or give --zone ZONE=EIP=INSTANCE_ID)" >&2; exit 2; }
  load_terraform
fi
if ((${#ZONES[@]} == 0)); then
  echo "verify_nat.sh: no zones to check" >&2
  exit 2
fi

failed=0
for zone in "${ZONES[@]}"; do
  if [[ -z ${FROM[$zone]} ]]; then
    printf '%-16s UNCHECKED    no egress probe in this zone (enable egress_probe in the root stack)\n' "$zone"
    failed=1
    continue
  fi
  if [[ -n $LAB_FILE ]]; then
    seen=$(ask_lab "${FROM[$zone]}")
  else
    seen=$(ask_ssm "${FROM[$zone]}")
  fi
  verdict "$zone" "$seen" || failed=1
done
exit "$failed"
