variable "name" {
  description = "Name of the probe: its instance, security group, launch template, role and instance profile"
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", var.name))
    error_message = "name must be 1-63 letters, digits, '.', '_' or '-'."
  }
}

variable "vpc_id" {
  description = "VPC of the probe"
  type        = string
}

variable "subnet_id" {
  description = "The zone's private subnet: the probe's egress takes the zone's default route, through the zone's NAT"
  type        = string
}

variable "ami_id" {
  description = "AMI of the probe: an Amazon Linux 2023 image (it ships the SSM agent and curl), pinned as an AMI ID, or \"ssm:latest\" to follow AWS's public SSM parameter for the latest Amazon Linux 2023 arm64 AMI (every release then replaces the probe at the next apply); its architecture must match instance_type"
  type        = string

  validation {
    condition     = can(regex("^ami-([0-9a-f]{8}|[0-9a-f]{17})$", var.ami_id)) || var.ami_id == "ssm:latest"
    error_message = "ami_id must be an AMI ID (ami-...) or \"ssm:latest\"."
  }
}

variable "instance_type" {
  description = "Instance type; its architecture must match the AMI (arm64 for the default AMI)"
  type        = string
  default     = "t4g.nano"
}

variable "root_volume_size" {
  description = "Size of the encrypted gp3 root volume, GiB (at least the AMI's snapshot: 8 for Amazon Linux 2023)"
  type        = number
  default     = 8
}

variable "kms_key_arn" {
  description = "KMS key for the root volume; null uses the account's default EBS key"
  type        = string
  default     = null
}

variable "create_after" {
  description = "Values the instance waits for before it is created: pass the zone's NAT group (Terraform waits for its instance to be in service), so that the probe's SSM agent finds egress at its first boot"
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
