#!/bin/bash
# nat-self-check: does this NAT instance work? Forwarding on, the masquerade rule loaded on the
# egress interface, and the internet reached with the instance's own public address.
#
#   nat-self-check launch   once, from the user data: check (bounded retries), then complete this
#                           instance's launch lifecycle action: CONTINUE, or ABANDON when the check
#                           keeps failing (the group replaces the instance; nothing ever moved to it).
#                           Exit 0: CONTINUE sent; 1: ABANDON sent; 2: could not complete the action.
#   nat-self-check health   from nat-self-check.timer: one check; after UNHEALTHY_AFTER consecutive
#                           failures, mark the instance Unhealthy so that the group replaces it.
#   nat-self-check check    one check, the verdict on stdout; changes nothing.
#
# Configuration: the file $NAT_SELF_CHECK_ENV (the user data writes /etc/nat-asg-hook/self-check.env)
# or the environment. Everything it runs (sysctl, nft, curl, aws, sleep) is looked up on PATH, and
# the instance metadata endpoint and the routing table file are settings, so that a test can run it
# with stand-ins. An authorization error from the AWS CLI is logged loudly and is never counted as a
# failed check: a missing permission must not make the group replace healthy instances in a loop.
set -uo pipefail

NAT_SELF_CHECK_ENV=${NAT_SELF_CHECK_ENV:-/etc/nat-asg-hook/self-check.env}
if [[ -r $NAT_SELF_CHECK_ENV ]]; then
  # shellcheck source=/dev/null
  . "$NAT_SELF_CHECK_ENV"
fi

: "${VPC_CIDR_BLOCK:=}" "${AUTO_SCALING_GROUP_NAME:=}" "${LAUNCH_HOOK_NAME:=}"
: "${CHECK_IP_URL:=https://checkip.amazonaws.com}"
: "${UNHEALTHY_AFTER:=3}"
: "${LAUNCH_ATTEMPTS:=18}" "${LAUNCH_RETRY_SECONDS:=5}" # 18 x 5 s: 90 s for the egress to come up
: "${CLI_ATTEMPTS:=6}" "${CLI_RETRY_SECONDS:=5}"       # a new instance profile can take seconds to work
: "${IMDS_ENDPOINT:=http://169.254.169.254}"
: "${PROC_NET_ROUTE:=/proc/net/route}"
: "${STATE_DIR:=/run/nat-asg-hook}"

# Messages go to stderr; the <N> prefix is the journal's priority (3 error, 4 warning, 6 info).
log() {
  local priority=$1
  shift
  echo "<$priority>nat-self-check: $*" >&2
}

# --- pure functions: the verdict from what the commands printed -------------------------------------

# The interface of the IPv4 default route with the lowest metric, from /proc/net/route on stdin
# (columns: Iface Destination Gateway Flags RefCnt Use Metric Mask ...).
egress_interface() {
  awk 'NR > 1 && $2 == "00000000" && $8 == "00000000" && (best == "" || $7 < metric) { best = $1; metric = $7 }
       END { if (best != "") print best }'
}

# Whether `nft list chain ip nat postrouting` ($1) holds the rule that masquerades the VPC ($3)
# leaving through the egress interface ($2).
masquerade_loaded() {
  local line
  while IFS= read -r line; do
    if [[ $line == *"oifname \"$2\""* && $line == *"ip saddr $3 "* && $line == *masquerade* ]]; then
      return 0
    fi
  done <<<"$1"
  return 1
}

# verdict FORWARD RULESET IFACE VPC_CIDR SEEN PUBLIC: prints what passed or the first check that
# failed; status 0 when the NAT works. FORWARD is net.ipv4.ip_forward, SEEN the address the check-IP
# service saw, PUBLIC the instance's public IPv4 address from the instance metadata.
verdict() {
  local forward=$1 ruleset=$2 iface=$3 cidr=$4 seen=$5 public=$6
  if [[ $forward != 1 ]]; then
    echo "forwarding is off (net.ipv4.ip_forward=${forward:-unreadable})"
    return 1
  fi
  if [[ -z $iface ]]; then
    echo "no IPv4 default route, hence no egress interface"
    return 1
  fi
  if ! masquerade_loaded "$ruleset" "$iface" "$cidr"; then
    echo "no masquerade rule for $cidr out of $iface in table ip nat, chain postrouting"
    return 1
  fi
  if [[ -z $public ]]; then
    echo "the instance has no public IPv4 address (instance metadata public-ipv4)"
    return 1
  fi
  if [[ -z $seen ]]; then
    echo "no answer from $CHECK_IP_URL: no egress"
    return 1
  fi
  if [[ $seen != "$public" ]]; then
    echo "egress leaves as $seen, not as the instance's public address $public"
    return 1
  fi
  echo "forwarding on, masquerade for $cidr out of $iface, egress as $public"
}

# Whether an AWS CLI error message ($1) is a refusal for lack of permission or credentials.
is_authorization_error() {
  [[ $1 =~ AccessDenied|UnauthorizedOperation|UnauthorizedAccess|not\ authorized|Unable\ to\ locate\ credentials ]]
}

# --- what the commands print ------------------------------------------------------------------------

# imds PATH: GET $IMDS_ENDPOINT/latest/PATH with an IMDSv2 token (the launch template requires one).
imds() {
  local token
  token=$(curl -fsS --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$IMDS_ENDPOINT/latest/api/token") || return 1
  curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$IMDS_ENDPOINT/latest/$1"
}

# One check: observe, then the verdict (printed; status 0 when the NAT works).
check_once() {
  local forward ruleset iface seen public
  forward=$(sysctl -n net.ipv4.ip_forward 2>/dev/null)
  ruleset=$(nft list chain ip nat postrouting 2>/dev/null)
  iface=$(egress_interface <"$PROC_NET_ROUTE")
  public=$(imds meta-data/public-ipv4 2>/dev/null)
  seen=$(curl -fsS --max-time 5 "$CHECK_IP_URL" 2>/dev/null | tr -d '[:space:]')
  verdict "$forward" "$ruleset" "$iface" "$VPC_CIDR_BLOCK" "$seen" "$public"
}

# Sets INSTANCE_ID and REGION from the instance metadata; status 1 when it does not answer.
identity() {
  local attempt
  for ((attempt = 1; attempt <= CLI_ATTEMPTS; attempt++)); do
    INSTANCE_ID=$(imds meta-data/instance-id 2>/dev/null) && REGION=$(imds meta-data/placement/region 2>/dev/null) &&
      [[ -n $INSTANCE_ID && -n $REGION ]] && return 0
    sleep "$CLI_RETRY_SECONDS"
  done
  log 3 "the instance metadata service at $IMDS_ENDPOINT does not tell the instance ID and region"
  return 1
}

# cli ARGS...: the aws CLI in this instance's region. Status 0 done, 2 refused for lack of
# permission (logged loudly: fix the instance profile), 1 any other failure.
cli() {
  local err status
  err=$(aws "$@" --region "$REGION" 2>&1 >/dev/null)
  status=$?
  if ((status == 0)); then
    return 0
  fi
  if is_authorization_error "$err"; then
    log 3 "AUTHORIZATION ERROR: aws $1 $2 was refused: ${err//$'\n'/ }." \
      "The instance profile lacks this permission: fix it in Terraform (modules/nat-instance). Not a failed self-check."
    return 2
  fi
  log 4 "aws $1 $2 failed: ${err//$'\n'/ }"
  return 1
}

# --- modes ------------------------------------------------------------------------------------------

complete_launch() {
  local result=$1 attempt status=1
  for ((attempt = 1; attempt <= CLI_ATTEMPTS; attempt++)); do
    cli autoscaling complete-lifecycle-action --auto-scaling-group-name "$AUTO_SCALING_GROUP_NAME" \
      --lifecycle-hook-name "$LAUNCH_HOOK_NAME" --instance-id "$INSTANCE_ID" --lifecycle-action-result "$result"
    status=$?
    if ((status == 0)); then
      log 6 "completed launch lifecycle action $LAUNCH_HOOK_NAME of $INSTANCE_ID: $result"
      return 0
    fi
    ((attempt < CLI_ATTEMPTS)) && sleep "$CLI_RETRY_SECONDS"
  done
  log 3 "could not complete launch lifecycle action $LAUNCH_HOOK_NAME with $result: the hook's default result applies when its heartbeat runs out"
  return 1
}

launch() {
  identity || return 2
  local attempt reason
  for ((attempt = 1; attempt <= LAUNCH_ATTEMPTS; attempt++)); do
    if reason=$(check_once); then
      log 6 "self-check passed (attempt $attempt): $reason"
      complete_launch CONTINUE || return 2
      return 0
    fi
    log 4 "self-check failed (attempt $attempt of $LAUNCH_ATTEMPTS): $reason"
    ((attempt < LAUNCH_ATTEMPTS)) && sleep "$LAUNCH_RETRY_SECONDS"
  done
  log 3 "self-check kept failing: abandoning $INSTANCE_ID (its group replaces it; no traffic ever moved to it)"
  complete_launch ABANDON || return 2
  return 1
}

health() {
  local counter=$STATE_DIR/consecutive-failures failures reason
  mkdir -p "$STATE_DIR"
  failures=$(cat "$counter" 2>/dev/null)
  [[ $failures =~ ^[0-9]+$ ]] || failures=0
  if reason=$(check_once); then
    ((failures > 0)) && log 6 "self-check passes again after $failures failure(s): $reason"
    echo 0 >"$counter"
    return 0
  fi
  failures=$((failures + 1))
  echo "$failures" >"$counter"
  log 4 "self-check failed ($failures of $UNHEALTHY_AFTER in a row): $reason"
  ((failures < UNHEALTHY_AFTER)) && return 1
  identity || return 1
  log 3 "marking $INSTANCE_ID Unhealthy after $failures failed self-checks in a row: its group replaces it"
  # The grace period is for the group's own checks of a booting instance; this one proved itself
  # at launch, so its failures count at once.
  cli autoscaling set-instance-health --instance-id "$INSTANCE_ID" --health-status Unhealthy --no-should-respect-grace-period
  return 1
}

main() {
  case ${1:-} in
    launch) launch ;;
    health) health ;;
    check) check_once ;;
    *)
      echo "usage: nat-self-check launch|health|check" >&2
      return 64
      ;;
  esac
}

# Sourced (the user data and the tests use the functions): define only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
