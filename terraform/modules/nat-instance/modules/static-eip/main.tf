# An AZ's static Elastic IP: partners allow-list it, so it outlives every NAT instance. The hook moves
# it to each new instance; Terraform never associates it. `prevent_destroy` cannot take a variable,
# hence two mutually exclusive resources.

locals {
  tags = merge(var.tags, {
    Name                 = var.name
    "nat-asg-hook:group" = var.name
  })

  eip = one(concat(aws_eip.protected, aws_eip.unprotected))
}

resource "aws_eip" "protected" {
  # checkov:skip=CKV2_AWS_19: the nat-asg-hook Lambda associates this EIP with whichever instance the NAT ASG runs; Terraform must not
  count = var.protect ? 1 : 0

  domain = "vpc"
  tags   = local.tags

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_eip" "unprotected" {
  # checkov:skip=CKV2_AWS_19: the nat-asg-hook Lambda associates this EIP with whichever instance the NAT ASG runs; Terraform must not
  count = var.protect ? 0 : 1

  domain = "vpc"
  tags   = local.tags
}
