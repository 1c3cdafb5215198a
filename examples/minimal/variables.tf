variable "region" {
  description = "Region of the VPC"
  type        = string
}

variable "vpc_id" {
  description = "The VPC whose private subnets egress through the NAT instance"
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's CIDR block: the only source the NAT admits and masquerades"
  type        = string
}

variable "availability_zone" {
  description = "The zone of the NAT instance, its public subnet and its private route table"
  type        = string
}

variable "public_subnet_id" {
  description = "The zone's public subnet (routed to an internet gateway), where the NAT instance runs"
  type        = string
}

variable "private_route_table_id" {
  description = "The zone's private route table. Its 0.0.0.0/0 route belongs to the hook: declare none in Terraform"
  type        = string
}

variable "ami_id" {
  description = "The NAT instance's AMI, pinned (Amazon Linux 2023 arm64 for the default t4g instance type): `make ami-latest` in this repository prints the newest"
  type        = string
}

variable "lambda_zip_path" {
  description = "The hook's bootstrap.zip: the path scripts/fetch-release.sh prints (no Rust needed), or target/lambda/nat-asg-hook/bootstrap.zip after `make build`"
  type        = string
}
