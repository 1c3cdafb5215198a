variable "region" {
  description = "AWS region of the stack"
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name prefix of every resource; the NAT groups are <name>-<zone>"
  type        = string
  default     = "nat"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name))
    error_message = "name must be 1-24 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC. Each zone gets a public subnet of 1/256 of it (a /24 of a /16) and a private subnet of 1/16 (a /20 of a /16)"
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "availability_zones" {
  description = "The zones the stack may use, in order of use; set them when you change region"
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "az_count" {
  description = "Number of Availability Zones (the first of availability_zones), each with a public subnet, a private subnet and its own NAT group"
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 1 && var.az_count <= min(6, length(var.availability_zones))
    error_message = "az_count must be between 1 and 6, and at most the number of availability_zones."
  }
}

variable "lambda_zip_path" {
  description = "Path of the hook's bootstrap.zip: a release's (scripts/fetch-release.sh prints it); null takes what `make build` produces (target/lambda/nat-asg-hook/bootstrap.zip)"
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "Architecture of the hook's build: arm64 (`make build`) or x86_64"
  type        = string
  default     = "arm64"
}

variable "nat_instance_type" {
  description = "Instance type of the NAT instances (arm64 for the default AMI)"
  type        = string
  default     = "t4g.nano"
}

variable "nat_alternate_instance_types" {
  description = "Instance types the NAT groups may launch when nat_instance_type has no capacity (same architecture, similar size; see the nat-instance module's alternate_instance_types)"
  type        = list(string)
  default     = ["t4g.micro"]
}

variable "nat_capacity" {
  description = "How the NAT instances are bought: \"on-demand\" (production), \"spot\" or \"spot-with-fallback\" (see the nat-instance module's capacity)"
  type        = string
  default     = "on-demand"
}

variable "nat_spot_retry_after_seconds" {
  description = "With nat_capacity \"spot-with-fallback\": how long a NAT group stays on-demand after Spot was last short before it tries Spot again (the switch back replaces the NAT, launching first: a planned refresh)"
  type        = number
  default     = 21600
}

variable "nat_ami_id" {
  description = "AMI of the NAT instances, pinned per environment in its vars.tfvars (`make ami-latest` prints the newest Amazon Linux 2023 arm64 AMI per environment and the change to make), or \"ssm:latest\" to follow the latest at every apply (see the nat-instance module's ami_id)"
  type        = string
}

variable "nat_check_ip_urls" {
  description = "Check-IP services the NAT instances' self-check asks for the public address their egress leaves with (each answers with that address as bare text); any one proves egress at launch, none answering is outside trouble, never a replacement"
  type        = list(string)
  default     = ["https://checkip.amazonaws.com", "https://api.ipify.org"]
}

variable "egress_probe" {
  description = "One egress probe per zone: a small SSM-managed instance in the zone's private subnet (no ingress, no key pair), from which scripts/verify_nat.sh proves that the zone's traffic leaves through the zone's own EIP. It costs one egress_probe_instance_type instance and an 8 GiB gp3 volume per zone (t4g.nano: about 4 USD a month per zone in us-east-1). Off by default; on in the test environment"
  type        = bool
  default     = false
}

variable "egress_probe_instance_type" {
  description = "Instance type of the egress probes; they boot nat_ami_id, so its architecture must match that image's (arm64 for the default)"
  type        = string
  default     = "t4g.nano"
}

variable "failover" {
  description = "Whether a zone whose NAT leaves moves its private default routes to a healthy sibling zone's NAT until its own replacement proves itself"
  type        = bool
  default     = true
}

variable "protect_eips" {
  description = "Protect the static EIPs from destroy (see the nat-instance module's protect_eip)"
  type        = bool
  default     = true
}

variable "reconcile_schedule" {
  description = "Schedule of the hook's reconcile run: rate(N minutes) with N at most 60, or rate(1 hour)"
  type        = string
  default     = "rate(1 minute)"
}

variable "log_retention_days" {
  description = "Retention of the hook's, the NATs' and the flow logs' log groups, days"
  type        = number
  default     = 365
}

variable "log_level" {
  description = "Log level of the hook"
  type        = string
  default     = "info"
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic the hook's alarms notify; null for none"
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource (provider default tags)"
  type        = map(string)
  default     = {}
}

variable "permissions_boundary_name" {
  description = "Name of the managed policy, in the stack's account, set as the permissions boundary of every IAM role the stack creates: the bootstrap's `stack-role-boundary-<environment>`, without which its deploy role may create no role (null: none, as in the local environment)"
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_name == null || can(regex("^[A-Za-z0-9+=,.@_/-]{1,128}$", coalesce(var.permissions_boundary_name, "-")))
    error_message = "permissions_boundary_name must be a managed policy's name (with its path, if any)."
  }
}
