# The smallest working setup: one zone's NAT instance behind its static EIP, kept alive by the hook.
# Every module input here is a required one, plus `create_after` (optional to Terraform, but it is
# what keeps the NAT group from launching before the automation that sets it up exists).

provider "aws" {
  region = var.region
}

locals {
  # The NAT group's name: the Auto Scaling group, the EIP's tags and the hook's configuration key.
  group = "nat-${var.availability_zone}"
}

# Order: EIP -> hook -> NAT group. The EIP outlives every NAT instance; `protect` defaults to true,
# so `terraform destroy` stops at it (partners allow-list its address): see the module's README.
module "eip" {
  source = "../../terraform/modules/nat-instance/modules/static-eip"

  name = local.group
}

module "hook" {
  source = "../../terraform/modules/nat-asg-hook"

  lambda_zip_path = var.lambda_zip_path

  groups = {
    (local.group) = {
      availability_zone = var.availability_zone
      eip_allocation_id = module.eip.allocation_id
      route_table_ids   = [var.private_route_table_id]
    }
  }
}

module "nat" {
  source = "../../terraform/modules/nat-instance"

  name           = local.group
  vpc_id         = var.vpc_id
  vpc_cidr_block = var.vpc_cidr_block
  subnet_id      = var.public_subnet_id
  ami_id         = var.ami_id

  create_after = module.hook.launch_dependencies
}
