#!/bin/bash
# nat-metrics: what this NAT carries, as a NAT Gateway reports it. Every minute (nat-metrics.timer)
# one `aws cloudwatch put-metric-data` with every metric, namespace METRIC_NAMESPACE, dimension
# AutoScalingGroupName (the zone's group: its graphs outlive each instance). Per run:
#   BytesOutToDestination, PacketsOutToDestination    forwarded from the VPC out (Bytes, Count)
#   BytesInFromDestination, PacketsInFromDestination  forwarded from outside into the VPC (Bytes, Count)
#   ConnectionEstablishedCount  connections the VPC opened through the NAT (Count): counted in a nat
#                               chain, which sees only each flow's first packet (no SYN retransmits),
#                               at prerouting: the instance's own connections (self-check, instance
#                               metadata, AWS APIs) leave through output and are not counted
#   ActiveConnectionCount       connection-tracking entries now (nf_conntrack_count: every tracked
#                               flow, TCP, UDP and ICMP, the NAT's own few included; Count)
#   PacketsDropCount            conntrack `drop` + `insert_failed` (/proc/net/stat/nf_conntrack, every
#                               CPU) + the egress interface's receive and transmit drops (Count)
#   ErrorPortAllocation         conntrack `insert_failed` (Count). Linux keeps no counter of its own
#                               for a source port masquerade could not find: such a flow's tuple
#                               clashes when conntrack confirms it, which counts insert_failed and
#                               drops the packet (`clashres` counts the clashes it resolved: no error)
#   ConntrackUsePercent         nf_conntrack_count / nf_conntrack_max (Percent): the self-check's
#                               "full" (CONNTRACK_FULL_PERCENT) divides by the same live values
# Counters are published as what they gained since the last published run (state in STATE_DIR; a
# failed put keeps it, so the next run carries that minute too). A counter lower than last time was
# reset (a reboot, the counting table made anew) and counts from zero.
#
# The forwarded traffic is counted by a table of this script's own (METRICS_TABLE, named counters),
# made when missing: the user data's nftables.conf stays the NAT's, and a restart of nftables.service
# (which flushes the ruleset) costs at most one interval of counting.
#
#   nat-metrics publish   count and publish (the timer; a run by hand too: one at a time, locked)
#   nat-metrics show      count and print the metric data, publish nothing, keep no state
#   nat-metrics limits    "<conntrack max> <hash buckets>" for this instance: /proc/meminfo on stdin
#
# Settings: the file $NAT_METRICS_ENV (the user data's /etc/nat-asg-hook/self-check.env) or the
# environment; commands from PATH and the /proc paths are settings, so that a test can use stand-ins.
set -uo pipefail

NAT_METRICS_ENV=${NAT_METRICS_ENV:-/etc/nat-asg-hook/self-check.env}
if [[ -r $NAT_METRICS_ENV ]]; then
  # shellcheck source=/dev/null
  . "$NAT_METRICS_ENV"
fi
: "${VPC_CIDR_BLOCK:=}" "${AUTO_SCALING_GROUP_NAME:=}" "${METRIC_NAMESPACE:=NatAsgHook}"
: "${METRICS_TABLE:=nat_asg_hook_metrics}" "${STATE_DIR:=/run/nat-asg-hook}"
: "${PROC_NET_ROUTE:=/proc/net/route}" "${PROC_NET_DEV:=/proc/net/dev}"
: "${CONNTRACK_DIR:=/proc/sys/net/netfilter}" "${CONNTRACK_STAT:=/proc/net/stat/nf_conntrack}"
: "${IMDS_ENDPOINT:=http://169.254.169.254}" "${IMDS_TIMEOUT_SECONDS:=2}"

log() { echo "nat-metrics: $*" >&2; }

# --- pure functions -----------------------------------------------------------------------------------

# limits: from /proc/meminfo on stdin, "<max> <buckets>": one connection-tracking entry per 8 KiB of
# memory (an entry takes about 320 bytes: a full table is about 4 % of it), rounded up to a power of
# two within [65536, 4194304]; as many hash buckets (8 bytes each) as entries, so that a full table
# still averages one entry per bucket. t4g.nano 65,536; micro 131,072; small 262,144; large 1,048,576.
limits() {
  local kib max=65536
  kib=$(awk '$1 == "MemTotal:" { print $2 }')
  [[ $kib =~ ^[0-9]+$ ]] || kib=0
  while ((max < kib / 8 && max < 4194304)); do
    max=$((max * 2))
  done
  echo "$max $max"
}

# egress_interface: the interface of the IPv4 default route with the lowest metric (/proc/net/route).
egress_interface() {
  awk 'NR > 1 && $2 == "00000000" && $8 == "00000000" && (best == "" || $7 < metric) { best = $1; metric = $7 }
       END { if (best != "") print best }'
}

# stat_sum COLUMN...: the named columns of /proc/net/stat/nf_conntrack on stdin (hexadecimal, one row
# per CPU under a header), summed over CPUs and columns.
stat_sum() {
  awk -v want=" $* " 'function hex(v,  n, j) { v = tolower(v); n = 0; for (j = 1; j <= length(v); j++) n = n * 16 + index("0123456789abcdef", substr(v, j, 1)) - 1; return n }
       NR == 1 { for (i = 1; i <= NF; i++) if (index(want, " " $i " ")) col[i] = 1; next }
       { for (i in col) sum += hex($i) }
       END { print sum + 0 }'
}

# interface_drops IFACE: receive + transmit drops of IFACE, from /proc/net/dev on stdin.
interface_drops() {
  awk -v iface="$1" '{ sub(/:/, " ") } $1 == iface { print $5 + $13; found = 1 } END { if (!found) print 0 }'
}

# nft_counters: "<name>_packets N" and "<name>_bytes N" per named counter, from `nft list counters`.
nft_counters() {
  awk '$1 == "counter" { name = $2 } $1 == "packets" && name != "" { print name "_packets " $2; print name "_bytes " $4; name = "" }'
}

# gained NOW BEFORE: what a counter gained; all of NOW when there is no BEFORE or NOW is lower (reset).
gained() {
  if [[ $2 =~ ^[0-9]+$ ]] && (($1 >= $2)); then
    echo $(($1 - $2))
  else
    echo "$1"
  fi
}

# percent COUNT MAX: COUNT in percent of MAX, one decimal (0 when MAX is unknown).
percent() {
  awk -v c="$1" -v m="$2" 'BEGIN { printf "%.1f\n", (m > 0 ? c * 100 / m : 0) }'
}

# datum NAME VALUE UNIT: one metric of the put-metric-data JSON.
datum() {
  printf '{"MetricName":"%s","Dimensions":[{"Name":"AutoScalingGroupName","Value":"%s"}],"Value":%s,"Unit":"%s"}' \
    "$1" "$AUTO_SCALING_GROUP_NAME" "$2" "$3"
}

# --- what the machine says ------------------------------------------------------------------------------

# counting_table: the counters, made when missing (status 1: made now, from zero; 2: cannot be made).
counting_table() {
  nft list table ip "$METRICS_TABLE" >/dev/null 2>&1 && return 0
  local vpc=$VPC_CIDR_BLOCK
  nft -f - <<NFT || return 2
table ip $METRICS_TABLE {
  counter outbound {}
  counter inbound {}
  counter opened {}
  chain forward {
    type filter hook forward priority 10; policy accept;
    ip saddr $vpc ip daddr != $vpc counter name "outbound"
    ip saddr != $vpc ip daddr $vpc counter name "inbound"
  }
  chain prerouting {
    type nat hook prerouting priority -99; policy accept;
    ip saddr $vpc ip daddr != $vpc counter name "opened"
  }
}
NFT
  return 1
}

# sample: "name value" lines, every counter and gauge now.
sample() {
  local iface count max
  nft list counters table ip "$METRICS_TABLE" 2>/dev/null | nft_counters
  iface=$(egress_interface <"$PROC_NET_ROUTE")
  echo "iface_drops $(interface_drops "${iface:-none}" <"$PROC_NET_DEV" 2>/dev/null)"
  echo "ct_drops $(stat_sum drop insert_failed <"$CONNTRACK_STAT" 2>/dev/null)"
  echo "ct_insert_failed $(stat_sum insert_failed <"$CONNTRACK_STAT" 2>/dev/null)"
  count=$(cat "$CONNTRACK_DIR/nf_conntrack_count" 2>/dev/null)
  max=$(cat "$CONNTRACK_DIR/nf_conntrack_max" 2>/dev/null)
  echo "ct_count ${count:-0}"
  echo "ct_percent $(percent "${count:-0}" "${max:-0}")"
}

# metric_data NOW BEFORE: the put-metric-data JSON from two samples (files of "name value" lines).
metric_data() {
  local -A now before
  local name value out=()
  while read -r name value; do now[$name]=$value; done <"$1"
  if [[ -r $2 ]]; then
    while read -r name value; do before[$name]=$value; done <"$2"
  fi
  g() { gained "${now[$1]:-0}" "${before[$1]:-}"; }
  out+=("$(datum BytesOutToDestination "$(g outbound_bytes)" Bytes)")
  out+=("$(datum PacketsOutToDestination "$(g outbound_packets)" Count)")
  out+=("$(datum BytesInFromDestination "$(g inbound_bytes)" Bytes)")
  out+=("$(datum PacketsInFromDestination "$(g inbound_packets)" Count)")
  out+=("$(datum ConnectionEstablishedCount "$(g opened_packets)" Count)")
  out+=("$(datum ActiveConnectionCount "${now[ct_count]:-0}" Count)")
  out+=("$(datum PacketsDropCount "$(($(g ct_drops) + $(g iface_drops)))" Count)")
  out+=("$(datum ErrorPortAllocation "$(g ct_insert_failed)" Count)")
  out+=("$(datum ConntrackUsePercent "${now[ct_percent]:-0}" Percent)")
  local IFS=,
  echo "[${out[*]}]"
}

# region: this instance's region, from the instance metadata (IMDSv2) once, then from STATE_DIR.
region() {
  local token cache=$STATE_DIR/metrics-region
  if [[ -s $cache ]]; then
    cat "$cache"
    return 0
  fi
  token=$(curl -fsS --max-time "$IMDS_TIMEOUT_SECONDS" -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$IMDS_ENDPOINT/latest/api/token") &&
    curl -fsS --max-time "$IMDS_TIMEOUT_SECONDS" -H "X-aws-ec2-metadata-token: $token" "$IMDS_ENDPOINT/latest/meta-data/placement/region" >"$cache.new" &&
    [[ -s $cache.new ]] && mv "$cache.new" "$cache" && cat "$cache"
}

# run publish|show
run() {
  local mode=$1 state=$STATE_DIR/metrics.state now data region err lock
  mkdir -p "$STATE_DIR"
  # One run at a time: the timer's and an operator's (or the lab's) `nat-metrics publish` at once
  # would both publish the gain since the same state, counting it twice.
  if ! { exec {lock}>"$STATE_DIR/metrics.lock" && flock "$lock"; }; then
    log "cannot lock $STATE_DIR/metrics.lock: running unlocked"
  fi
  now=$(mktemp "$STATE_DIR/metrics.XXXXXX") || return 1
  counting_table
  case $? in
    1) [[ -e $state ]] && sed -i '/^\(outbound\|inbound\|opened\)_/d' "$state" ;; # made anew: its counters start at zero
    2) log "cannot make the nftables table $METRICS_TABLE: forwarded traffic is not counted" ;;
  esac
  sample >"$now"
  data=$(metric_data "$now" "$state")
  if [[ $mode == show ]]; then
    echo "$data"
    rm -f "$now"
    return 0
  fi
  if ! region=$(region); then
    log "the instance metadata does not tell the region: nothing published"
    rm -f "$now"
    return 1
  fi
  if err=$(aws cloudwatch put-metric-data --namespace "$METRIC_NAMESPACE" --metric-data "$data" --region "$region" 2>&1 >/dev/null); then
    mv "$now" "$state"
    return 0
  fi
  log "put-metric-data failed (kept for the next run): ${err//$'\n'/ }"
  rm -f "$now"
  return 1
}

main() {
  case ${1:-} in
    publish | show) run "$1" ;;
    limits) limits ;;
    *)
      echo "usage: nat-metrics publish|show|limits" >&2
      return 64
      ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
