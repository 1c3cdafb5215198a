#!/bin/bash
# nat-self-check: does this NAT instance work? Only the instance's OWN faults may take it out of
# service; what lies outside every NAT (a check-IP service, the internet) is logged and published,
# never alone a reason to be replaced: every NAT of every zone asks the same endpoints, and a fault
# they all see at once must not replace the whole fleet.
#
# Own faults (each one makes a check fail):
#   - forwarding off (net.ipv4.ip_forward);
#   - no IPv4 default route, hence no egress interface;
#   - the masquerade rule for the VPC on the egress interface gone (table ip nat, chain postrouting);
#   - connection tracking full (nf_conntrack_count at CONNTRACK_FULL_PERCENT of nf_conntrack_max) or
#     dropping (the `drop` and `insert_failed` counters rose since the last check);
#   - the forwarding path broken, tested on the instance itself: a namespace on the instance (veth,
#     FORWARD_PROBE_ADDRESS) asks a check endpoint through the instance's own forwarding and
#     masquerade. When the instance itself reached an endpoint and saw its public address, and the
#     probe through its own forwarding path does not leave with that address, the fault is the
#     instance's. When the instance cannot reach any endpoint itself, nothing is known about its
#     forwarding: that is outside trouble.
# Outside trouble (logged with what was seen, published as the metric CheckEndpointsUnreachable,
# never counted as a failure): no endpoint of CHECK_IP_URLS answered with the instance's address
# (HTML, an empty body, another address, a refusal, a hang), or the instance metadata service is slow.
#
#   nat-self-check launch   once, from the user data: the strict gate (bounded retries): no own
#                           fault, and egress proven through the forwarding path with the instance's
#                           public address (instance metadata) by ANY ONE of CHECK_IP_URLS; then
#                           complete this instance's launch lifecycle action: CONTINUE, or ABANDON
#                           when the check keeps failing (the group replaces it; nothing moved to it).
#                           Exit 0: CONTINUE sent; 1: ABANDON sent; 2: could not complete the action.
#   nat-self-check watch    from nat-self-check.service (systemd, restarted if it ever exits): every
#                           LOCAL_CHECK_SECONDS the instance's local faults (forwarding, default
#                           route, masquerade rule, connection tracking: files and one nft call, no
#                           network), LOCAL_FAULT_AFTER in a row leave; every CHECK_INTERVAL_SECONDS
#                           (RECHECK_SECONDS while failing) a whole `health` check.
#   nat-self-check health   one whole check; after UNHEALTHY_AFTER consecutive own faults, leave.
#                           Outside trouble neither counts nor resets the count.
#   Leaving: mark the instance Unhealthy (its group replaces it, launch before terminate) and put one
#   event "NAT Self-Check Failed" (source EVENT_SOURCE) on the default bus, at the same time: the
#   hook checks that the group holds the instance Unhealthy and hands its zone over at once. Each
#   is done once per instance (retried at the next check until it succeeds).
#   nat-self-check check    one check, the verdict on stdout; changes nothing. Exit 0 works, 1 own
#                           fault, 3 outside trouble.
#
# Configuration: the file $NAT_SELF_CHECK_ENV (the user data writes /etc/nat-asg-hook/self-check.env)
# or the environment. Everything it runs (sysctl, nft, ip, curl, aws, sleep) is looked up on PATH, and
# the instance metadata endpoint, the routing table and the conntrack files are settings, so that a
# test can run it with stand-ins. An authorization error from the AWS CLI is logged loudly and is
# never counted as a failed check: a missing permission must not make the group replace healthy
# instances in a loop.
set -uo pipefail

NAT_SELF_CHECK_ENV=${NAT_SELF_CHECK_ENV:-/etc/nat-asg-hook/self-check.env}
if [[ -r $NAT_SELF_CHECK_ENV ]]; then
  # shellcheck source=/dev/null
  . "$NAT_SELF_CHECK_ENV"
fi

: "${VPC_CIDR_BLOCK:=}" "${AUTO_SCALING_GROUP_NAME:=}" "${LAUNCH_HOOK_NAME:=}"
: "${CHECK_IP_URLS:=https://checkip.amazonaws.com https://api.ipify.org}" # any one proves egress
: "${CHECK_TIMEOUT_SECONDS:=5}"                                         # a hanging endpoint costs this, no more
: "${UNHEALTHY_AFTER:=3}"
: "${LOCAL_CHECK_SECONDS:=1}" "${LOCAL_FAULT_AFTER:=2}"         # watch: a local fault is out in about 2 s
: "${CHECK_INTERVAL_SECONDS:=10}" "${RECHECK_SECONDS:=2}"      # watch: whole checks, sooner while failing
: "${EVENT_SOURCE:=nat-asg-hook.nat}"                           # the hook's rule matches it; empty: no event
: "${LAUNCH_ATTEMPTS:=18}" "${LAUNCH_RETRY_SECONDS:=5}" # 18 x 5 s: 90 s for the egress to come up
: "${CLI_ATTEMPTS:=6}" "${CLI_RETRY_SECONDS:=5}"       # a new instance profile can take seconds to work
: "${IMDS_ENDPOINT:=http://169.254.169.254}" "${IMDS_TIMEOUT_SECONDS:=2}"
: "${PROC_NET_ROUTE:=/proc/net/route}"
: "${CONNTRACK_DIR:=/proc/sys/net/netfilter}" "${CONNTRACK_STAT:=/proc/net/stat/nf_conntrack}"
: "${CONNTRACK_FULL_PERCENT:=95}"
: "${FORWARD_PROBE:=on}" "${FORWARD_PROBE_NS:=nat-self-check}"
: "${FORWARD_PROBE_HOST:=169.254.254.1}" "${FORWARD_PROBE_ADDRESS:=169.254.254.2}"
: "${METRIC_NAMESPACE:=NatAsgHook}" "${METRIC_EVERY_SECONDS:=60}"
: "${STATE_DIR:=/run/nat-asg-hook}"
# The log outlives the instance: LOG_FILE (this script's lines) and USER_DATA_LOG (cloud-init's
# output of the user data) are shipped to the CloudWatch Logs group LOG_GROUP_NAME, streams
# <instance id>/self-check and <instance id>/user-data. Empty: not shipped.
: "${LOG_GROUP_NAME:=}" "${LOG_FILE:=$STATE_DIR/self-check.log}" "${USER_DATA_LOG:=/var/log/cloud-init-output.log}"

# Messages go to stderr; the <N> prefix is the journal's priority (3 error, 4 warning, 6 info).
log() {
  local priority=$1
  shift
  echo "<$priority>nat-self-check: $*" >&2
  if [[ -n $LOG_FILE ]]; then
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) <$priority> $*" >>"$LOG_FILE" 2>/dev/null
  fi
  return 0
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

is_ipv4() {
  [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
    ((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 256 && BASH_REMATCH[4] < 256))
}

# describe_answer STATUS BODY: what a check endpoint's answer was, in words (for the log): the
# address, or why it is none (a hang, a refusal, HTML, an empty body, some other text).
describe_answer() {
  local status=$1 body=$2 text
  if ((status == 28)); then
    echo "no answer within ${CHECK_TIMEOUT_SECONDS} s (a hang)"
  elif ((status != 0)); then
    echo "request failed (curl exit $status)"
  elif [[ -z $body ]]; then
    echo "an empty body"
  elif is_ipv4 "$body"; then
    echo "$body"
  else
    text=${body//[^[:print:]]/ }
    if [[ $body == *"<"* ]]; then
      echo "HTML, not an address: ${text:0:60}"
    else
      echo "not an address: ${text:0:60}"
    fi
  fi
}

# conntrack_counters: the sum over CPUs of the `drop` and `insert_failed` columns of
# $CONNTRACK_STAT (hexadecimal, one row per CPU, a header naming the columns); empty when unreadable.
conntrack_counters() {
  [[ -r $CONNTRACK_STAT ]] || return 0
  awk 'function hex(v,  n, j) { v = tolower(v); n = 0; for (j = 1; j <= length(v); j++) n = n * 16 + index("0123456789abcdef", substr(v, j, 1)) - 1; return n }
       NR == 1 { for (i = 1; i <= NF; i++) if ($i == "drop" || $i == "insert_failed") col[i] = 1; next }
       { for (i in col) sum += hex($i) }
       END { if (NR > 1) print sum + 0 }' "$CONNTRACK_STAT" 2>/dev/null
}

# join ITEMS...: the items separated by "; " (for one log line).
join() {
  local out="" item
  for item in "$@"; do
    out+="${out:+; }$item"
  done
  echo "$out"
}

# --- what the commands print ------------------------------------------------------------------------

# imds PATH: GET $IMDS_ENDPOINT/latest/PATH with an IMDSv2 token (the launch template requires one),
# each request bounded by IMDS_TIMEOUT_SECONDS: a slow metadata service makes it fail, never hang.
imds() {
  local token
  token=$(curl -fsS --max-time "$IMDS_TIMEOUT_SECONDS" -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$IMDS_ENDPOINT/latest/api/token") || return 1
  curl -fsS --max-time "$IMDS_TIMEOUT_SECONDS" -H "X-aws-ec2-metadata-token: $token" "$IMDS_ENDPOINT/latest/$1"
}

# fetch URL [via-probe]: the endpoint's answer, whitespace removed, on stdout; curl's status.
fetch() {
  local url=$1 host address body status
  if [[ ${2:-} == via-probe ]]; then
    # The probe's namespace has no resolver of its own (the VPC's would not answer its address):
    # the name is resolved here and handed to curl.
    host=${url#*://}
    host=${host%%/*}
    host=${host%%:*}
    local resolve=()
    if ! is_ipv4 "$host"; then
      address=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }')
      [[ -n $address ]] || return 6
      local port=443
      [[ $url == http://* ]] && port=80
      resolve=(--resolve "$host:$port:$address")
    fi
    body=$(ip netns exec "$FORWARD_PROBE_NS" curl -fsS --max-time "$CHECK_TIMEOUT_SECONDS" "${resolve[@]}" "$url" 2>/dev/null)
    status=$?
  else
    body=$(curl -fsS --max-time "$CHECK_TIMEOUT_SECONDS" "$url" 2>/dev/null)
    status=$?
  fi
  printf '%s' "${body//[[:space:]]/}"
  return "$status"
}

# The probe namespace: a veth from the instance to a namespace of its own, whose default route is
# the instance; its address is masqueraded like the VPC's (the user data's second rule). Made once;
# status 1 (logged) when it cannot be made: then the probe is skipped, never a fault.
forward_probe_ready() {
  [[ $FORWARD_PROBE == on ]] || return 1
  ip netns exec "$FORWARD_PROBE_NS" true 2>/dev/null && return 0
  local err
  if ! err=$({
    ip netns add "$FORWARD_PROBE_NS" &&
      ip link add nsc-host type veth peer name nsc-probe netns "$FORWARD_PROBE_NS" &&
      ip addr add "$FORWARD_PROBE_HOST/30" dev nsc-host &&
      ip link set nsc-host up &&
      ip -n "$FORWARD_PROBE_NS" link set lo up &&
      ip -n "$FORWARD_PROBE_NS" addr add "$FORWARD_PROBE_ADDRESS/30" dev nsc-probe &&
      ip -n "$FORWARD_PROBE_NS" link set nsc-probe up &&
      ip -n "$FORWARD_PROBE_NS" route add default via "$FORWARD_PROBE_HOST"
  } 2>&1); then
    log 4 "could not set up the forwarding probe (namespace $FORWARD_PROBE_NS): ${err//$'\n'/ }; checking without it"
    ip netns delete "$FORWARD_PROBE_NS" 2>/dev/null
    ip link delete nsc-host 2>/dev/null
    return 1
  fi
  return 0
}

# check_once [launch]: one check. Prints the verdict; status 0 the NAT works, 1 an own fault, 3
# outside trouble only. Sets OUTSIDE (1: no endpoint confirmed the instance's address, 0: one did)
# and logs what each endpoint answered when none did. With `launch`, the gate is strict: the
# instance's public address must be known (instance metadata) and proven through the forwarding
# path; without it, a slow metadata service is no fault (the direct answer is the reference).
# local_faults MODE: the instance's own faults that need no network (files and one nft call), in
# FAULTS; the egress interface in IFACE. MODE health or quick keeps the conntrack drop counter.
local_faults() {
  local mode=$1 forward ruleset count max drops previous
  FAULTS=()
  forward=$(sysctl -n net.ipv4.ip_forward 2>/dev/null)
  ruleset=$(nft list chain ip nat postrouting 2>/dev/null)
  IFACE=$(egress_interface <"$PROC_NET_ROUTE")
  [[ $forward == 1 ]] || FAULTS+=("forwarding is off (net.ipv4.ip_forward=${forward:-unreadable})")
  if [[ -z $IFACE ]]; then
    FAULTS+=("no IPv4 default route, hence no egress interface")
  elif ! masquerade_loaded "$ruleset" "$IFACE" "$VPC_CIDR_BLOCK"; then
    FAULTS+=("no masquerade rule for $VPC_CIDR_BLOCK out of $IFACE in table ip nat, chain postrouting")
  fi
  count=$(cat "$CONNTRACK_DIR/nf_conntrack_count" 2>/dev/null)
  max=$(cat "$CONNTRACK_DIR/nf_conntrack_max" 2>/dev/null)
  if [[ $count =~ ^[0-9]+$ && $max =~ ^[0-9]+$ ]] && ((max > 0 && count * 100 >= max * CONNTRACK_FULL_PERCENT)); then
    FAULTS+=("connection tracking is full: $count of $max entries")
  fi
  drops=$(conntrack_counters)
  previous=$(cat "$STATE_DIR/conntrack-drops" 2>/dev/null)
  if [[ $drops =~ ^[0-9]+$ && $previous =~ ^[0-9]+$ ]] && ((drops > previous)); then
    FAULTS+=("connection tracking is dropping: drop + insert_failed rose by $((drops - previous)) since the last check")
  fi
  if [[ ($mode == health || $mode == quick) && $drops =~ ^[0-9]+$ ]]; then
    mkdir -p "$STATE_DIR" && echo "$drops" >"$STATE_DIR/conntrack-drops"
  fi
  return 0
}

check_once() {
  local mode=${1:-health} iface public faults=()
  local_faults "$mode"
  iface=$IFACE
  faults=("${FAULTS[@]}")

  public=$(imds meta-data/public-ipv4 2>/dev/null)
  if ! is_ipv4 "$public"; then
    [[ $mode == launch ]] || log 4 "the instance metadata service did not tell the public address within ${IMDS_TIMEOUT_SECONDS} s: comparing with what the endpoints saw"
    public=""
  fi

  # Outside: which endpoint saw the instance itself with its public address?
  local url body status seen reference="" confirmed="" observed=()
  for url in $CHECK_IP_URLS; do
    body=$(fetch "$url")
    status=$?
    seen=$(describe_answer "$status" "$body")
    if ((status == 0)) && is_ipv4 "$body" && [[ -z $public || $body == "$public" ]]; then
      reference=$body confirmed=$url
      break
    fi
    [[ -n $public ]] && is_ipv4 "$seen" && seen="another address: $seen, not the instance's public address $public"
    observed+=("$url: $seen")
  done
  OUTSIDE=0
  if [[ -z $confirmed ]]; then
    OUTSIDE=1
    log 4 "OUTSIDE TROUBLE (not a fault of this instance, never a reason to replace it): no check endpoint confirmed the instance's address: $(join "${observed[@]}")"
  fi
  if ((${#faults[@]} > 0)); then
    join "${faults[@]}"
    return 1
  fi
  if [[ $mode == launch && -z $public ]]; then
    echo "the instance has no public IPv4 address (instance metadata public-ipv4) yet"
    return 3
  fi
  if [[ -z $confirmed ]]; then
    echo "outside trouble: no check endpoint confirmed egress (${#observed[@]} tried)"
    return 3
  fi

  # The instance's own forwarding path, from a namespace on the instance through its forward and
  # masquerade: it must leave with the address the endpoint saw the instance itself with.
  if ! forward_probe_ready; then
    [[ $mode == launch && $FORWARD_PROBE == on ]] && log 4 "launch check without the forwarding probe"
    echo "forwarding on, masquerade for $VPC_CIDR_BLOCK out of $iface, egress as $reference ($confirmed; forwarding probe off)"
    return 0
  fi
  local probed=()
  for url in $confirmed $CHECK_IP_URLS; do
    [[ $url == "$confirmed" && ${#probed[@]} -gt 0 ]] && continue # asked first already
    body=$(fetch "$url" via-probe)
    status=$?
    if ((status == 0)) && [[ $body == "$reference" ]]; then
      echo "forwarding on, masquerade for $VPC_CIDR_BLOCK out of $iface, forwarded egress as $reference ($url)"
      return 0
    fi
    seen=$(describe_answer "$status" "$body")
    is_ipv4 "$seen" && seen="left as $seen, not as $reference"
    probed+=("$url: $seen")
  done
  echo "the forwarding path is broken: the instance itself leaves as $reference ($confirmed), a probe forwarded through it does not: $(join "${probed[@]}")"
  return 1
}

# Sets INSTANCE_ID and REGION: from the file launch left (a slow metadata service later changes
# nothing), else from the instance metadata; status 1 when neither tells.
identity() {
  local attempt cache=$STATE_DIR/identity
  if [[ -r $cache ]]; then
    read -r INSTANCE_ID REGION <"$cache"
    [[ -n ${INSTANCE_ID:-} && -n ${REGION:-} ]] && return 0
  fi
  for ((attempt = 1; attempt <= CLI_ATTEMPTS; attempt++)); do
    if INSTANCE_ID=$(imds meta-data/instance-id 2>/dev/null) && REGION=$(imds meta-data/placement/region 2>/dev/null) &&
      [[ -n $INSTANCE_ID && -n $REGION ]]; then
      mkdir -p "$STATE_DIR" && echo "$INSTANCE_ID $REGION" >"$cache"
      return 0
    fi
    sleep "$CLI_RETRY_SECONDS"
  done
  log 3 "the instance metadata service at $IMDS_ENDPOINT does not tell the instance ID and region"
  return 1
}

# Whether an AWS CLI error message ($1) is a refusal for lack of permission or credentials.
is_authorization_error() {
  [[ $1 =~ AccessDenied|UnauthorizedOperation|UnauthorizedAccess|not\ authorized|Unable\ to\ locate\ credentials ]]
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

# publish: the outside-reachability result as the metric CheckEndpointsUnreachable (1: no endpoint
# confirmed the instance's address; dimension AutoScalingGroupName), when it changed or at least
# METRIC_EVERY_SECONDS after the last one. The fleet's alarm (modules/nat-asg-hook) fires when two
# zones or more report 1 in the same minute: outside trouble. Never fails the check.
publish() {
  local value=$1 last now
  [[ -n $METRIC_NAMESPACE ]] || return 0
  now=$(date +%s)
  last=$(cat "$STATE_DIR/metric" 2>/dev/null)
  if [[ $last =~ ^([01])\ ([0-9]+)$ ]] && [[ ${BASH_REMATCH[1]} == "$value" ]] && ((now - BASH_REMATCH[2] < METRIC_EVERY_SECONDS)); then
    return 0
  fi
  identity || return 0
  if cli cloudwatch put-metric-data --namespace "$METRIC_NAMESPACE" \
    --metric-data "MetricName=CheckEndpointsUnreachable,Dimensions=[{Name=AutoScalingGroupName,Value=$AUTO_SCALING_GROUP_NAME}],Value=$value,Unit=Count"; then
    echo "$value $now" >"$STATE_DIR/metric"
  fi
  return 0
}

# ship FILE STREAM: the lines FILE gained since the last ship, as events of the log group's stream
# <instance id>/STREAM (at most 1000 lines and about 100 KB at a time, on the command line: one
# argument stays below Linux's 128 KiB; the rest goes next time). Never fails the caller: a log that
# cannot be shipped stays on the instance, and is tried again at the next check.
ship() {
  local file=$1 stream mark offset shipped events
  [[ -n $LOG_GROUP_NAME && -r $file ]] || return 0
  identity 2>/dev/null || return 0
  stream=$INSTANCE_ID/$2
  mark=$STATE_DIR/shipped-$2
  offset=$(cat "$mark" 2>/dev/null)
  [[ $offset =~ ^[0-9]+$ ]] || offset=0
  # Line 1: the offset after what is shipped; line 2: the events, as JSON ([] when none).
  shipped=$(python3 -c '
import json, os, sys, time
path, offset = sys.argv[1], int(sys.argv[2])
if os.path.getsize(path) < offset:
    offset = 0  # a new file
with open(path, "rb") as f:
    f.seek(offset)
    data = f.read(96 * 1024)
now, events, size, end = int(time.time() * 1000), [], 2, offset
for raw in data.splitlines(keepends=True):
    if not raw.endswith(b"\n") or len(events) == 1000:
        break
    text = raw.decode("utf-8", "replace").rstrip("\n")
    event = {"timestamp": now, "message": text}
    size += len(json.dumps(event)) + 2
    if size > 100000:
        break
    end += len(raw)
    if text.strip():
        events.append(event)
print(end)
print(json.dumps(events))
' "$file" "$offset" 2>/dev/null) || return 0
  offset=${shipped%%$'\n'*}
  events=${shipped#*$'\n'}
  if [[ $events == "[]" ]]; then
    echo "$offset" >"$mark"
    return 0
  fi
  if [[ ! -e $STATE_DIR/stream-$2 ]]; then
    # Already there (a restart) is fine: the put below says whether the stream works.
    aws logs create-log-stream --log-group-name "$LOG_GROUP_NAME" --log-stream-name "$stream" --region "$REGION" >/dev/null 2>&1
    touch "$STATE_DIR/stream-$2"
  fi
  if LOG_FILE="" cli logs put-log-events --log-group-name "$LOG_GROUP_NAME" --log-stream-name "$stream" --log-events "$events"; then
    echo "$offset" >"$mark"
  fi
  return 0
}

# ship_all: this script's log and the user data's output.
ship_all() {
  [[ -n $LOG_FILE ]] && ship "$LOG_FILE" self-check
  ship "$USER_DATA_LOG" user-data
  return 0
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
    if reason=$(check_once launch); then
      log 6 "self-check passed (attempt $attempt): $reason"
      complete_launch CONTINUE || {
        ship_all
        return 2
      }
      ship_all
      return 0
    fi
    log 4 "self-check failed (attempt $attempt of $LAUNCH_ATTEMPTS): $reason"
    ((attempt < LAUNCH_ATTEMPTS)) && sleep "$LAUNCH_RETRY_SECONDS"
  done
  log 3 "self-check kept failing: abandoning $INSTANCE_ID (its group replaces it; no traffic ever moved to it)"
  ship_all # before ABANDON: the group terminates the instance at once
  complete_launch ABANDON || return 2
  return 1
}

health() {
  local counter=$STATE_DIR/consecutive-failures failures reason status OUTSIDE=0
  mkdir -p "$STATE_DIR"
  failures=$(cat "$counter" 2>/dev/null)
  [[ $failures =~ ^[0-9]+$ ]] || failures=0
  # check_once runs in this shell (not $(...)): OUTSIDE is its finding, for the metric.
  reason=$(
    check_once health
    echo "status=$?;outside=$OUTSIDE"
  )
  status=${reason##*status=}
  OUTSIDE=${status##*outside=}
  status=${status%%;*}
  reason=${reason%$'\n'status=*}
  publish "$OUTSIDE"
  health_verdict "$status" "$failures" "$reason"
  status=$?
  ship_all
  return "$status"
}

# health_verdict STATUS FAILURES REASON: what one timer check decides (see health).
health_verdict() {
  local status=$1 failures=$2 reason=$3 counter=$STATE_DIR/consecutive-failures
  if ((status == 0)); then
    ((failures > 0)) && log 6 "self-check passes again after $failures failure(s): $reason"
    echo 0 >"$counter"
    return 0
  fi
  if ((status == 3)); then
    # Outside trouble: neither a failure nor a pass. The count stays where it is.
    log 4 "self-check: $reason; not counted (outside trouble replaces nothing)"
    return 3
  fi
  failures=$((failures + 1))
  echo "$failures" >"$counter"
  if [[ -e $STATE_DIR/left ]]; then
    return 1 # marked and reported already: the group is replacing it
  fi
  log 4 "self-check failed ($failures of $UNHEALTHY_AFTER in a row): $reason"
  ((failures < UNHEALTHY_AFTER)) && return 1
  leave "$failures failed self-checks in a row" "$reason" "$failures"
  return 1
}

# leave WHY REASON FAILURES: mark this instance Unhealthy and report it to the hook with one event,
# at the same time (the hook waits a few seconds for the group to show the mark); each once, and
# retried at the next failed check until it succeeded. Sets $STATE_DIR/left when both are done.
leave() {
  local why=$1 reason=$2 failures=$3 mark=0 sent=0
  identity || return 1
  if [[ ! -e $STATE_DIR/marked ]]; then
    log 3 "marking $INSTANCE_ID Unhealthy after $why: its group replaces it. Last: $reason"
    # The grace period is for the group's own checks of a booting instance; this one proved itself
    # at launch, so its failures count at once.
    (cli autoscaling set-instance-health --instance-id "$INSTANCE_ID" --health-status Unhealthy --no-should-respect-grace-period &&
      touch "$STATE_DIR/marked") &
    mark=$!
  fi
  report "$reason" "$failures" || sent=1
  if ((mark != 0)); then
    wait "$mark"
  fi
  [[ -e $STATE_DIR/marked ]] && ((sent == 0)) || return 1
  touch "$STATE_DIR/left"
  return 0
}

# report REASON FAILURES: the event "NAT Self-Check Failed" on the default bus, for the hook to hand
# the zone over now rather than when the replacement is in service. PutEvents answers 0 even when
# an entry failed: FailedEntryCount says. Status 0 sent (or no EVENT_SOURCE), 1 not sent.
report() {
  [[ -n $EVENT_SOURCE ]] || return 0
  local entries answer err
  entries=$(python3 -c '
import json, sys
source, group, instance, reason, failures = sys.argv[1:6]
detail = {"EC2InstanceId": instance, "AutoScalingGroupName": group, "reason": reason, "consecutive_failures": int(failures)}
print(json.dumps([{"Source": source, "DetailType": "NAT Self-Check Failed", "Detail": json.dumps(detail)}]))
' "$EVENT_SOURCE" "$AUTO_SCALING_GROUP_NAME" "$INSTANCE_ID" "$1" "$2") || return 1
  if ! answer=$(aws events put-events --entries "$entries" --region "$REGION" --output json 2>&1); then
    if is_authorization_error "$answer"; then
      log 3 "AUTHORIZATION ERROR: aws events put-events was refused: ${answer//$'\n'/ }." \
        "The instance profile lacks events:PutEvents for source $EVENT_SOURCE: the zone moves only when the replacement is in service."
    else
      log 4 "aws events put-events failed: ${answer//$'\n'/ }"
    fi
    return 1
  fi
  err=$(printf '%s' "$answer" | tr -d '[:space:]')
  if [[ $err != *'"FailedEntryCount":0'* ]]; then
    log 4 "the event NAT Self-Check Failed was not accepted: ${answer//$'\n'/ }"
    return 1
  fi
  log 6 "reported to the hook: NAT Self-Check Failed for $INSTANCE_ID ($AUTO_SCALING_GROUP_NAME)"
  return 0
}

# quick STREAK: the local faults only (no network, no log while they pass); prints the new streak
# of local faults in a row. At LOCAL_FAULT_AFTER, leave.
quick() {
  local streak=$1 reason
  [[ -e $STATE_DIR/left ]] && {
    echo "$streak"
    return 0
  }
  local_faults quick
  if ((${#FAULTS[@]} == 0)); then
    echo 0
    return 0
  fi
  streak=$((streak + 1))
  reason=$(join "${FAULTS[@]}")
  echo "$streak"
  log 4 "local fault ($streak of $LOCAL_FAULT_AFTER in a row): $reason"
  if ((streak >= LOCAL_FAULT_AFTER)); then
    leave "a local fault seen $streak times in a row, ${LOCAL_CHECK_SECONDS} s apart" "$reason" "$streak" >&2
    ship_all >&2 # after leaving, never before the next local check (shipping takes a request)
  fi
  return 0
}

# watch: the running instance's self-check, for its life (nat-self-check.service). Every tick the
# local checks first (a whole check's requests and log shipping take seconds; they never delay them).
watch() {
  local next=0 streak=0 status
  mkdir -p "$STATE_DIR"
  while :; do
    streak=$(quick "$streak")
    if (($(date +%s) >= next)); then
      health >/dev/null
      status=$?
      if ((status == 1)); then next=$(($(date +%s) + RECHECK_SECONDS)); else next=$(($(date +%s) + CHECK_INTERVAL_SECONDS)); fi
      ((status == 0)) && streak=0
    fi
    sleep "$LOCAL_CHECK_SECONDS"
  done
}

main() {
  case ${1:-} in
    launch) launch ;;
    health) health ;;
    watch) watch ;;
    quick) quick "${2:-0}" ;; # one of watch's local checks (the streak in and out): for tests
    check) check_once check ;;
    *)
      echo "usage: nat-self-check launch|health|watch|check|quick [STREAK]" >&2
      return 64
      ;;
  esac
}

# Sourced (the user data and the tests use the functions): define only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
