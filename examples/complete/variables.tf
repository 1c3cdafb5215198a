variable "region" {
  description = "Region of the VPC"
  type        = string
}

variable "name" {
  description = "Prefix of every name: the hook's function, the NAT groups, the key alias and the alarm topic"
  type        = string
}

variable "vpc_id" {
  description = "The VPC whose private subnets egress through the NAT instances"
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's CIDR block: the only source the NAT instances admit and masquerade"
  type        = string
}

variable "zones" {
  description = "One NAT per Availability Zone: its public subnet, and the private route tables whose 0.0.0.0/0 route it carries (declare no such route in Terraform: the hook owns it). A zone whose NAT is gone is failed over to a healthy one"
  type = map(object({
    public_subnet_id        = string
    private_route_table_ids = list(string)
  }))

  validation {
    condition     = length(var.zones) >= 2
    error_message = "zones needs at least two zones: this example shows a multi-zone setup (examples/minimal has one)."
  }
}

variable "lambda_zip_path" {
  description = "The hook's bootstrap.zip: the path scripts/fetch-release.sh prints (no Rust needed), or target/lambda/nat-asg-hook/bootstrap.zip after `make build`"
  type        = string
}

variable "nat_ami_id" {
  description = "The NAT instances' AMI, pinned: a new image is a deliberate change, never a side effect of an unrelated apply (Amazon Linux 2023, the architecture of nat_instance_type; `make ami-latest` in this repository prints the newest)"
  type        = string
}

variable "nat_instance_type" {
  description = "Instance type of the NAT instances (Graviton: arm64 AMI)"
  type        = string
  default     = "t4g.small"
}

variable "nat_alternate_instance_types" {
  description = "Instance types the NAT groups may launch when nat_instance_type has no capacity (the same architecture, a similar size)"
  type        = list(string)
  default     = ["t4g.medium"]
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topic (it must confirm the subscription); null subscribes nobody"
  type        = string
  default     = null
}

variable "permissions_boundary" {
  description = "ARN of the managed policy set as the permissions boundary of the hook's and the NAT instances' roles (null: none); where a deploy role may create roles only with a boundary, its boundary"
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource (provider default tags, and the NAT instances, which default tags do not reach)"
  type        = map(string)
  default     = {}
}
