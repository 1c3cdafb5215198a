locals {
  # Zones by name, not "whatever is available now": a zone that turns impaired must not shift the
  # list and make Terraform rebuild the subnets of the others.
  zones = slice(var.availability_zones, 0, var.az_count)

  # Per zone (zone => index): the public subnets take the first 1/16 of the VPC, the private ones a
  # 1/16 each after it.
  zone_index = { for i, zone in local.zones : zone => i }

  # Names are known before anything exists: the hook's rule, policy and config use them, and the
  # groups are created after the hook.
  nat_group_names = { for zone in local.zones : zone => "${var.name}-${zone}" }

  lambda_zip_path = coalesce(var.lambda_zip_path, "${path.root}/../target/lambda/nat-asg-hook/bootstrap.zip")

  # Every role of the stack carries it: the deploy role may create and write no role without it.
  permissions_boundary = (var.permissions_boundary_name == null ? null
    : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/${var.permissions_boundary_name}"
  )
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

################################################################################
# VPC
################################################################################

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

# Nothing uses the default security group: empty it. Untagged: the deploy role may not tag a group it
# did not create (tags decide what it may change), and emptying takes only revoking its rules.
resource "aws_default_security_group" "this" {
  provider = aws.untagged

  vpc_id = aws_vpc.this.id
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  for_each = local.zone_index

  vpc_id            = aws_vpc.this.id
  availability_zone = each.key
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, each.value)
  tags              = { Name = "${var.name}-public-${each.key}" }
}

resource "aws_subnet" "private" {
  for_each = local.zone_index

  vpc_id            = aws_vpc.this.id
  availability_zone = each.key
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, each.value + 1)
  tags              = { Name = "${var.name}-private-${each.key}" }
}

# The public table's routes are inline: Terraform owns that table whole.
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public.id
}

# One private table per zone, with no `route` argument and no aws_route: the hook owns their default
# route (it points it at the zone's NAT instance), and Terraform leaves routes it does not declare.
resource "aws_route_table" "private" {
  for_each = local.zone_index

  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-private-${each.key}" }
}

resource "aws_route_table_association" "private" {
  for_each = aws_subnet.private

  subnet_id      = each.value.id
  route_table_id = aws_route_table.private[each.key].id
}

################################################################################
# VPC flow logs (rejected and accepted traffic) into CloudWatch Logs
################################################################################

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn         = aws_iam_role.flow_logs.arn
  tags                 = { Name = var.name }
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  # checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts at rest by default; this stack adds no customer managed key
  name              = "/vpc/${var.name}/flow-logs"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "flow_logs_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  name                 = "${var.name}-flow-logs"
  assume_role_policy   = data.aws_iam_policy_document.flow_logs_assume_role.json
  permissions_boundary = local.permissions_boundary
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "${var.name}-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

################################################################################
# Per zone: the static EIP, then the hook (its config names the EIPs), then the NAT group (its first
# launch must find the hook in place). EIP -> hook -> ASG: the EIP is a module call of its own because
# Terraform orders a for_each module call as a whole, and the hook cannot both follow and precede one.
################################################################################

module "eip" {
  source   = "./modules/nat-instance/modules/static-eip"
  for_each = local.nat_group_names

  name    = each.value
  protect = var.protect_eips
}

module "hook" {
  source = "./modules/nat-asg-hook"

  name                 = "${var.name}-asg-hook"
  lambda_zip_path      = local.lambda_zip_path
  architecture         = var.lambda_architecture
  failover             = var.failover
  reconcile_schedule   = var.reconcile_schedule
  log_retention_days   = var.log_retention_days
  log_level            = var.log_level
  alarm_sns_topic_arn  = var.alarm_sns_topic_arn
  permissions_boundary = local.permissions_boundary

  # Spot with an on-demand fallback: the hook may switch the NAT groups (null: it may not).
  spot_fallback_retry_seconds = var.nat_capacity == "spot-with-fallback" ? var.nat_spot_retry_after_seconds : null

  groups = {
    for zone, group in local.nat_group_names : group => {
      availability_zone = zone
      eip_allocation_id = module.eip[zone].allocation_id
      route_table_ids   = [aws_route_table.private[zone].id]
    }
  }
}

module "nat" {
  source   = "./modules/nat-instance"
  for_each = local.nat_group_names

  name                     = each.value
  vpc_id                   = aws_vpc.this.id
  vpc_cidr_block           = aws_vpc.this.cidr_block
  subnet_id                = aws_subnet.public[each.key].id
  eip_allocation_id        = module.eip[each.key].allocation_id
  instance_type            = var.nat_instance_type
  capacity                 = var.nat_capacity
  alternate_instance_types = var.nat_alternate_instance_types
  ami_id                   = var.nat_ami_id
  check_ip_urls            = var.nat_check_ip_urls
  log_group_name           = "/vpc/${var.name}/nat/${each.value}" # next to the flow logs: the deploy role may create both
  log_retention_days       = var.log_retention_days
  permissions_boundary     = local.permissions_boundary
  tags                     = var.tags # the launch template's tag specifications: default_tags do not reach them

  # Every zone's private subnets (a failed-over zone leaves through a sibling's NAT), nothing else:
  # the public subnets and the NATs themselves have nothing to send through one.
  ingress_cidr_blocks = [for zone in local.zones : aws_subnet.private[zone].cidr_block]

  create_after = module.hook.launch_dependencies
}

################################################################################
# Optional (egress_probe): per zone an SSM-managed instance in the private subnet, from which
# scripts/verify_nat.sh asks a check-IP service which address the zone's egress leaves with. Each is
# created once its zone's NAT group is in service (Terraform waits for the group's capacity), so that
# its SSM agent registers through the NAT at its first boot.
################################################################################

module "egress_probe" {
  source   = "./modules/egress-probe"
  for_each = var.egress_probe ? local.nat_group_names : {}

  name                 = "${var.name}-egress-probe-${each.key}"
  vpc_id               = aws_vpc.this.id
  subnet_id            = aws_subnet.private[each.key].id
  ami_id               = var.nat_ami_id # the NAT's image: Amazon Linux 2023, pinned per environment
  instance_type        = var.egress_probe_instance_type
  permissions_boundary = local.permissions_boundary
  tags                 = var.tags # the launch template's tag specifications: default_tags do not reach them

  create_after = [module.nat[each.key].autoscaling_group_arn]
}
