variable "name" {
  description = "Name of the NAT Auto Scaling group; also names its security group and launch template, and is the value of the `nat-asg-hook:group` tag the hook's IAM conditions match"
  type        = string
  default     = null

  validation {
    condition     = var.name != null && can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", var.name))
    error_message = "name is required: 1-63 letters, digits, '.', '_' or '-'."
  }
}

variable "vpc_id" {
  description = "VPC of the NAT instance"
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id != null
    error_message = "vpc_id is required."
  }
}

variable "vpc_cidr_block" {
  description = "CIDR block of the VPC: the only source the security group admits, and the only source the instance masquerades"
  type        = string
  default     = null

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "vpc_cidr_block must be an IPv4 CIDR block."
  }
}

variable "subnet_id" {
  description = "The AZ's public subnet (routed to the internet gateway) where the single instance runs"
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id != null
    error_message = "subnet_id is required."
  }
}

variable "instance_type" {
  description = "Instance type; its architecture must match the AMI (arm64 for the default AMI)"
  type        = string
  default     = "t4g.nano"
}

variable "ami_id" {
  description = "AMI ID; null takes the latest Amazon Linux 2023 arm64 AMI from the public SSM parameter"
  type        = string
  default     = null
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

variable "lifecycle_hook_heartbeat_timeout" {
  description = "Seconds a launching instance waits in Pending:Wait for the hook to complete the launch lifecycle action before the default result applies; at least 300, so that the hook's latest delivery (twice its 120 s maximum event age, plus its timeout) finds the lifecycle action still open"
  type        = number
  default     = 300

  validation {
    condition     = var.lifecycle_hook_heartbeat_timeout >= 300 && var.lifecycle_hook_heartbeat_timeout <= 7200
    error_message = "lifecycle_hook_heartbeat_timeout must be between 300 and 7200 seconds: a shorter heartbeat can abandon an instance while a late launch event is moving the routes to it."
  }
}

variable "lifecycle_hook_default_result" {
  description = "What the ASG does when the heartbeat times out: ABANDON replaces the instance (the hook never set it up), CONTINUE keeps it"
  type        = string
  default     = "ABANDON"

  validation {
    condition     = contains(["ABANDON", "CONTINUE"], var.lifecycle_hook_default_result)
    error_message = "lifecycle_hook_default_result must be ABANDON or CONTINUE."
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
