variable "name" {
  description = "Name of the NAT Auto Scaling group; also names its security group, launch template, instance role and profile, and is the value of the `nat-asg-hook:group` tag the hook's IAM conditions match"
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", var.name))
    error_message = "name must be 1-63 letters, digits, '.', '_' or '-'."
  }
}

variable "vpc_id" {
  description = "VPC of the NAT instance"
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR block of the VPC: the only source the instance masquerades, and what the security group admits unless `ingress_cidr_blocks` says less"
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "vpc_cidr_block must be an IPv4 CIDR block."
  }
}

variable "subnet_id" {
  description = "The AZ's public subnet (routed to the internet gateway) where the single instance runs"
  type        = string
}

variable "instance_type" {
  description = "Instance type; its architecture must match the AMI (arm64 for the default AMI)"
  type        = string
  default     = "t4g.nano"
}

variable "alternate_instance_types" {
  description = "Instance types the group may launch when instance_type has no capacity (on-demand: in this order after it; Spot: the pools least likely to be interrupted), e.g. [\"t4g.micro\"] beside t4g.nano. Same architecture as the AMI and of similar size: a failed-over zone's traffic lands on a sibling of any of them. Empty: instance_type alone"
  type        = list(string)
  default     = []
}

variable "capacity" {
  description = "How the NAT instances are bought: \"on-demand\" (the default, for production), \"spot\" (roughly two thirds cheaper; EC2 may reclaim one with a two-minute warning, on which the hook hands the zone to a sibling while the NAT still forwards and its group launches the replacement at once; capacity rebalancing on) or \"spot-with-fallback\" (Spot, and when a launch finds no Spot capacity in any of the types, the hook switches the group to on-demand until it tries Spot again: give the nat-asg-hook module spot_fallback_retry_seconds)"
  type        = string
  default     = "on-demand"

  validation {
    condition     = contains(["on-demand", "spot", "spot-with-fallback"], var.capacity)
    error_message = "capacity must be \"on-demand\", \"spot\" or \"spot-with-fallback\"."
  }
}

variable "ami_id" {
  description = "AMI of the NAT instances; its architecture must match instance_type. An AMI ID pins it, so that only a deliberate change replaces the instances (`make ami-latest` prints the newest Amazon Linux 2023 arm64 AMI and the change to make). \"ssm:latest\" follows AWS's public SSM parameter for the latest Amazon Linux 2023 arm64 AMI instead: every Amazon Linux release then starts an instance refresh at the next apply"
  type        = string

  validation {
    condition     = can(regex("^ami-([0-9a-f]{8}|[0-9a-f]{17})$", var.ami_id)) || var.ami_id == "ssm:latest"
    error_message = "ami_id must be an AMI ID (ami-...) or \"ssm:latest\"."
  }
}

variable "root_volume_size" {
  description = "Size of the encrypted gp3 root volume, GiB"
  type        = number
  default     = 8
}

variable "kms_key_arn" {
  description = "KMS key for the root volume; null uses the account's default EBS key"
  type        = string
  default     = null
}

variable "check_ip_urls" {
  description = "Check endpoints the self-check asks which public address the instance leaves with; each must answer with that address as bare text. Any one of them proves egress at launch; none answering is outside trouble (logged, published as the metric CheckEndpointsUnreachable), never a reason to replace the instance. Give at least two independent services"
  type        = list(string)
  default     = ["https://checkip.amazonaws.com", "https://api.ipify.org"]

  validation {
    condition     = length(var.check_ip_urls) >= 1 && alltrue([for url in var.check_ip_urls : can(regex("^https?://[^'\\s]+$", url))])
    error_message = "check_ip_urls must hold at least one http(s) URL, without quotes or spaces."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace the self-check publishes CheckEndpointsUnreachable to (dimension AutoScalingGroupName); the instance may publish to this namespace only. The nat-asg-hook module's outside-trouble alarm reads it there; the bootstrap's permissions boundary allows NatAsgHook only"
  type        = string
  default     = "NatAsgHook"
}

variable "log_group_name" {
  description = "Name of the NATs' log group this module creates (the user data's output and the self-check's lines of every instance, shipped by the instance); null: /nat-asg-hook/nat/<name>. The root stack puts it under /vpc/<stack>/nat/, where its deploy role may create log groups"
  type        = string
  default     = null

  validation {
    condition     = var.log_group_name == null || can(regex("^/[A-Za-z0-9_./#-]{1,511}$", coalesce(var.log_group_name, "/x")))
    error_message = "log_group_name must start with / and hold only letters, digits, '_', '-', '.', '/' and '#'."
  }
}

variable "log_retention_days" {
  description = "Retention of the NATs' log group (log_group_name), days"
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention periods (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key for the NATs' log group; null: CloudWatch Logs' own encryption. The key's policy must let CloudWatch Logs use it"
  type        = string
  default     = null
}

variable "self_check_interval_seconds" {
  description = "Seconds between two whole self-checks of a running NAT instance (endpoints and forwarding probe; its local faults are read every second)"
  type        = number
  default     = 10

  validation {
    condition     = var.self_check_interval_seconds >= 5 && var.self_check_interval_seconds <= 300 && floor(var.self_check_interval_seconds) == var.self_check_interval_seconds
    error_message = "self_check_interval_seconds must be a whole number between 5 and 300."
  }
}

variable "metrics_interval_seconds" {
  description = "Seconds between two runs of nat-metrics, which publishes what the NAT carries (bytes, packets, connections, drops, connection-tracking use) in one PutMetricData call: 60 is CloudWatch's standard resolution; shorter only sums the same minute in more calls (each costs)"
  type        = number
  default     = 60

  validation {
    condition     = var.metrics_interval_seconds >= 10 && var.metrics_interval_seconds <= 60 && floor(var.metrics_interval_seconds) == var.metrics_interval_seconds
    error_message = "metrics_interval_seconds must be a whole number between 10 and 60 (the alarms count a NAT that published nothing in a minute as stopped)."
  }
}

variable "conntrack_tcp_established_timeout" {
  description = "Seconds an idle established TCP flow keeps its connection-tracking entry (and source port). 7440 (RFC 5382's minimum) keeps idle connections a NAT Gateway would reset after 350 s; set 350 for the gateway's behaviour"
  type        = number
  default     = 7440

  validation {
    condition     = var.conntrack_tcp_established_timeout >= 60 && var.conntrack_tcp_established_timeout <= 432000 && floor(var.conntrack_tcp_established_timeout) == var.conntrack_tcp_established_timeout
    error_message = "conntrack_tcp_established_timeout must be a whole number of seconds between 60 and 432000 (Linux's default, 5 days)."
  }
}

variable "unhealthy_after" {
  description = "Consecutive failed self-checks after which the instance marks itself Unhealthy (its group then replaces it, and the hook hands its zone over at once)"
  type        = number
  default     = 3

  validation {
    condition     = var.unhealthy_after >= 1 && var.unhealthy_after <= 60 && floor(var.unhealthy_after) == var.unhealthy_after
    error_message = "unhealthy_after must be a whole number between 1 and 60."
  }
}

variable "launch_hook_heartbeat_timeout" {
  description = "Seconds a launching instance may take to boot, set itself up and prove itself before its launch lifecycle action times out and the instance is abandoned. It must cover boot, a package install when the image lacks a tool, and the self-check's retries (90 s) and lifecycle calls (30 s)"
  type        = number
  default     = 300

  validation {
    condition     = var.launch_hook_heartbeat_timeout >= 240 && var.launch_hook_heartbeat_timeout <= 7200
    error_message = "launch_hook_heartbeat_timeout must be between 240 and 7200 seconds: a shorter one abandons instances that are still proving themselves."
  }
}

variable "terminate_hook_heartbeat_timeout" {
  description = "Seconds a terminating instance waits for the hook to hand its zone over and complete the terminate lifecycle action; when it runs out the instance goes anyway (CONTINUE). The hook renews it with a heartbeat while it retries a hand-over; it must outlast Lambda's longest retry delay (2 minutes) plus a start"
  type        = number
  default     = 150

  validation {
    condition     = var.terminate_hook_heartbeat_timeout >= 150 && var.terminate_hook_heartbeat_timeout <= 600
    error_message = "terminate_hook_heartbeat_timeout must be between 150 and 600 seconds: Lambda's second retry comes 2 minutes after the first, and the instance must still be there for it."
  }
}

variable "instance_warmup_seconds" {
  description = "Warm-up of a new instance, seconds (the group's default instance warm-up and the instance refresh's): during a refresh the old instance is kept this long after the new one is InService, well past the hook's cutover to it"
  type        = number
  default     = 60

  validation {
    condition     = var.instance_warmup_seconds >= 30 && var.instance_warmup_seconds <= 3600
    error_message = "instance_warmup_seconds must be between 30 and 3600."
  }
}

variable "create_after" {
  description = "Values the ASG waits for before it is created: pass the hook module's `launch_dependencies` output, so that the first launch cannot race the automation"
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource, and for the instance, its network interface and its volume"
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

variable "eip_allocation_id" {
  description = "Allocation ID of the zone's static EIP. With it, a new NAT finds the NAT that serves the zone (the EIP's holder, ec2:DescribeAddresses) and loads its established TCP flows before its launch completes, so that a planned refresh keeps them; null: no hand-over (connections through the old NAT end with it)"
  type        = string
  default     = null

  validation {
    condition     = var.eip_allocation_id == null || can(regex("^eipalloc-([0-9a-f]{8}|[0-9a-f]{17})$", var.eip_allocation_id))
    error_message = "eip_allocation_id must be null or an allocation ID (eipalloc-...)."
  }
}

variable "ingress_cidr_blocks" {
  description = "Sources the security group admits: the private subnets whose traffic the NAT forwards (every zone's, for failover); null admits the whole VPC (vpc_cidr_block). The NAT's own address is not a service: nothing else reaches it"
  type        = list(string)
  default     = null

  validation {
    condition     = var.ingress_cidr_blocks == null || (length(coalesce(var.ingress_cidr_blocks, [])) > 0 && alltrue([for c in coalesce(var.ingress_cidr_blocks, []) : can(cidrhost(c, 0))]))
    error_message = "ingress_cidr_blocks must be null or a non-empty list of IPv4 CIDR blocks."
  }
}
