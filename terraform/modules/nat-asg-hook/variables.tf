variable "name" {
  description = "Name of the function; prefixes its role, rules, queue and alarms"
  type        = string
  default     = "nat-asg-hook"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,48}$", var.name))
    error_message = "name must be 1-48 letters, digits, '-' or '_' (suffixes follow it in the names of the rules and the queue)."
  }
}

variable "lambda_zip_path" {
  description = "Path of the function's bootstrap.zip: a release's, no Rust toolchain needed (`scripts/fetch-release.sh <tag>` downloads and verifies it and prints this path), or a local build's (`make build`: target/lambda/nat-asg-hook/bootstrap.zip)"
  type        = string

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must be a bootstrap.zip: a release's (scripts/fetch-release.sh prints its path) or the one `make build` builds."
  }
}

variable "architecture" {
  description = "Instruction set of the function; must match the build (`make build` builds arm64)"
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function, MB. Lambda gives CPU in proportion to memory: 256 keeps the few ms of CPU per event (TLS handshakes, SDK) from stretching at 128; the function itself peaks near 15 MiB"
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout of the function, seconds; the handler's retry deadlines stay below it. At most 60, so that a launch event delivered as late as allowed (twice the 120 s maximum event age) is handled before a 300 s lifecycle heartbeat runs out"
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 10 && var.timeout <= 60
    error_message = "timeout must be between 10 and 60 seconds: the handler needs far less, and a longer one could outlast the NAT group's lifecycle heartbeat."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for the function; null (the default) reserves none. Opt in only where the account allows it: Lambda keeps at least 100 of an account's concurrent executions unreserved, and a new account often has only 10 in all, so any reservation makes the first apply fail there. Where it fits, the number of zones plus 2 guarantees the hook runs while other functions are busy and caps its EC2 API calls"
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 1 && var.reserved_concurrent_executions <= 1000 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions, false)
    error_message = "reserved_concurrent_executions must be null (no reservation) or a whole number between 1 and 1000."
  }
}

variable "groups" {
  description = "The NAT groups, by Auto Scaling group name: the zone, the static EIP's allocation ID and the private route tables whose default route goes to the group's instance. Rendered into NAT_ASG_HOOK_CONFIG"
  type = map(object({
    availability_zone = string
    eip_allocation_id = string
    route_table_ids   = list(string)
  }))

  validation {
    condition     = length(var.groups) > 0 && alltrue([for g in values(var.groups) : length(g.route_table_ids) > 0])
    error_message = "groups needs at least one group, and each group at least one route table."
  }

  validation {
    condition     = length(flatten(values(var.groups)[*].route_table_ids)) == length(distinct(flatten(values(var.groups)[*].route_table_ids)))
    error_message = "A route table may belong to only one group."
  }

  validation {
    condition     = length(values(var.groups)) == length(distinct(values(var.groups)[*].eip_allocation_id))
    error_message = "Each group needs its own Elastic IP."
  }
}

variable "failover" {
  description = "Whether a zone whose NAT is leaving, or gone, moves its private default routes to a healthy sibling zone's NAT (its traffic then leaves with the sibling's EIP) until its own replacement proves itself. Rendered into the hook's configuration"
  type        = bool
  default     = true
}

variable "spot_fallback_retry_seconds" {
  description = "Spot with an on-demand fallback (the nat-instance module's capacity \"spot-with-fallback\"): a NAT group whose launch finds no Spot capacity is switched to on-demand, and tried on Spot again after this many seconds (the switch back makes the group replace its on-demand NAT, launching first). null: no fallback, and the hook may not change any group"
  type        = number
  default     = null

  validation {
    condition     = var.spot_fallback_retry_seconds == null || try(var.spot_fallback_retry_seconds >= 900 && var.spot_fallback_retry_seconds <= 604800, false)
    error_message = "spot_fallback_retry_seconds must be null, or from 900 (15 minutes) to 604800 (a week)."
  }
}

variable "reconcile_schedule" {
  description = "EventBridge schedule of the reconcile run that heals lost events and drift: rate(N minutes) or rate(N hours), at most an hour. It bounds how long a zone whose events were all lost stays dark (docs/design.md, \"Lost events\"); every minute costs about 43,800 invocations a month. The alarms on the metrics each reconcile reports count in these periods"
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^rate\\((1 minute|[1-9][0-9]* minutes|1 hour)\\)$", var.reconcile_schedule)) && try(tonumber(regex("^rate\\(([0-9]+) minutes?\\)$", var.reconcile_schedule)[0]) <= 60, true)
    error_message = "reconcile_schedule must be rate(1 minute), rate(N minutes) with N at most 60, or rate(1 hour)."
  }
}

variable "zone_without_nat_alarm_periods" {
  description = "Reconcile periods a zone may have no NAT of its own (or the reconcile may stay silent) before the zone-without-nat alarm fires: longer than a replacement takes (boot and self-check, a few minutes; 10 periods of the default rate(1 minute))"
  type        = number
  default     = 10

  validation {
    condition     = var.zone_without_nat_alarm_periods >= 1 && var.zone_without_nat_alarm_periods <= 24 && floor(var.zone_without_nat_alarm_periods) == var.zone_without_nat_alarm_periods
    error_message = "zone_without_nat_alarm_periods must be a whole number between 1 and 24."
  }
}

variable "failover_alarm_minutes" {
  description = "Minutes a zone may stay failed over to a sibling zone's NAT before the failover-too-long alarm fires: longer than a normal replacement (the new NAT boots, proves itself and takes its zone back)"
  type        = number
  default     = 15

  validation {
    condition     = var.failover_alarm_minutes >= 5 && var.failover_alarm_minutes <= 1440
    error_message = "failover_alarm_minutes must be between 5 and 1440."
  }
}

variable "nat_metric_namespace" {
  description = "CloudWatch namespace the NAT instances publish to (their self-check's CheckEndpointsUnreachable, nat-metrics' traffic metrics; the nat-instance module's metric_namespace)"
  type        = string
  default     = "NatAsgHook"
}

variable "outside_trouble_zones" {
  description = "NAT zones that must report outside trouble (CheckEndpointsUnreachable) in the same minute for the outside-trouble alarm to fire: trouble several zones see at once is outside the NATs"
  type        = number
  default     = 2

  validation {
    condition     = var.outside_trouble_zones >= 2 && floor(var.outside_trouble_zones) == var.outside_trouble_zones
    error_message = "outside_trouble_zones must be a whole number of at least 2: one zone alone may be its own NAT's trouble."
  }
}

variable "conntrack_alarm_percent" {
  description = "Connection-tracking use (ConntrackUsePercent, each NAT's nf_conntrack_count of nf_conntrack_max) above which a zone's conntrack alarm fires, two minutes in a row. The NAT's own self-check treats 95 % as a fault (it is replaced): this warns before"
  type        = number
  default     = 80

  validation {
    condition     = var.conntrack_alarm_percent > 0 && var.conntrack_alarm_percent < 95
    error_message = "conntrack_alarm_percent must be above 0 and below the self-check's 95."
  }
}

variable "drops_alarm_per_minute" {
  description = "Dropped packets a minute (PacketsDropCount: connection tracking's drops and insert failures, the egress interface's drops) that, every minute for drops_alarm_minutes, fire a zone's drops alarm"
  type        = number
  default     = 10

  validation {
    condition     = var.drops_alarm_per_minute >= 1
    error_message = "drops_alarm_per_minute must be at least 1."
  }
}

variable "drops_alarm_minutes" {
  description = "Minutes in a row with at least drops_alarm_per_minute dropped packets before a zone's drops alarm fires: sustained drops, not one burst"
  type        = number
  default     = 5

  validation {
    condition     = var.drops_alarm_minutes >= 1 && var.drops_alarm_minutes <= 60 && floor(var.drops_alarm_minutes) == var.drops_alarm_minutes
    error_message = "drops_alarm_minutes must be a whole number between 1 and 60."
  }
}

variable "nat_silent_alarm_minutes" {
  description = "Minutes without a single metric from any NAT of a zone's group before its nat-silent alarm fires (missing data breaches). Longer than a replacement's boot, so that a routine replacement stays quiet"
  type        = number
  default     = 5

  validation {
    condition     = var.nat_silent_alarm_minutes >= 2 && var.nat_silent_alarm_minutes <= 60 && floor(var.nat_silent_alarm_minutes) == var.nat_silent_alarm_minutes
    error_message = "nat_silent_alarm_minutes must be a whole number between 2 and 60."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group, days"
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs offers (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_level" {
  description = "Application log level of the function"
  type        = string
  default     = "info"

  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be trace, debug, info, warn or error."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the environment variables, the log group and the dead-letter queue; null keeps the AWS managed encryption. Its key policy must let CloudWatch Logs and EventBridge use it"
  type        = string
  default     = null
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify (alarm and OK); null creates the alarms without actions"
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}

variable "permissions_boundary" {
  description = "ARN of the managed policy set as the permissions boundary of every IAM role this module creates (null: none). The bootstrap's deploy role creates and writes roles only with its account's boundary"
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary))
    error_message = "permissions_boundary must be the ARN of a managed policy (arn:aws:iam::<account>:policy/<name>)."
  }
}
