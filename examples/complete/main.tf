# Several zones, every notable option: one customer managed key for everything the stack stores, an
# alarm topic encrypted with it, protected EIPs, a pinned AMI. Each zone's NAT fails over to a
# healthy sibling zone when it leaves.

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  hook_name = "${var.name}-asg-hook"

  # Zone -> NAT group name: the Auto Scaling group, its EIP's tags, the hook's configuration key.
  groups = { for zone in keys(var.zones) : zone => "${var.name}-nat-${zone}" }
}

################################################################################
# One key for the hook's logs, environment and dead-letter queue, the alarm topic and the NAT
# instances' root volumes. Its policy names each AWS service that must use it: without these, logs,
# dead letters, alarm notifications or NAT launches fail at run time, not at apply.
################################################################################

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109: a key policy's resource is always "*" (the key itself); the account's IAM policies decide who administers it, as in AWS's default key policy
  # checkov:skip=CKV_AWS_111: a key policy's resource is always "*" (the key itself); the account's IAM policies decide who administers it, as in AWS's default key policy
  # checkov:skip=CKV_AWS_356: a key policy's resource is always "*" (the key itself); each service statement is limited by its conditions
  statement {
    sid       = "AccountIamPolicies"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "HookLogGroup"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = concat(
        ["arn:${local.partition}:logs:${var.region}:${local.account}:log-group:/aws/lambda/${local.hook_name}"],
        [for group in values(local.groups) : "arn:${local.partition}:logs:${var.region}:${local.account}:log-group:/nat-asg-hook/nat/${group}"],
      )
    }
  }

  # EventBridge sends failed events to the encrypted dead-letter queue; CloudWatch publishes alarms
  # to the encrypted topic.
  statement {
    sid       = "DeadLettersAndAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  # Auto Scaling launches the NAT instances with their encrypted root volumes through its
  # service-linked role: without these two statements every launch fails.
  statement {
    sid       = "NatRootVolumes"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"]
    }
  }

  statement {
    sid       = "NatRootVolumeGrants"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"]
    }

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: NAT hook logs, environment and dead letters, alarm topic, NAT root volumes"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-nat"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-nat-alarms"
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

################################################################################
# EIP -> hook -> NAT group, per zone
################################################################################

module "eip" {
  source   = "../../terraform/modules/nat-instance/modules/static-eip"
  for_each = local.groups

  name    = each.value
  protect = true # partners allow-list these addresses: `terraform destroy` stops here
  tags    = var.tags
}

module "hook" {
  source = "../../terraform/modules/nat-asg-hook"

  name            = local.hook_name
  lambda_zip_path = var.lambda_zip_path
  architecture    = "arm64" # the release zip and `make build` are arm64
  memory_size     = 256
  timeout         = 30

  # Reserve concurrency only where the account's quota leaves 100 unreserved after it (new accounts
  # often have 10 in all, and the apply would fail there): zones + 2 lets the hook run while other
  # functions are busy, and caps its calls to the EC2 API.
  reserved_concurrent_executions = length(var.zones) + 2

  # A zone whose NAT leaves borrows a healthy sibling zone's NAT (and egresses with its EIP) until
  # its replacement proves itself; the alarms say when that, or a zone without a NAT, lasts.
  failover                       = true
  zone_without_nat_alarm_periods = 10
  failover_alarm_minutes         = 15

  # Outside trouble: NATs of two zones or more that cannot reach any of their check-IP services in the same
  # minute (nothing is replaced for it; this alarm says so).
  nat_metric_namespace  = "NatAsgHook"
  outside_trouble_zones = 2

  # What each NAT publishes (nat-metrics): per zone, alarms on a filling connection-tracking table,
  # sustained drops, and a NAT that stopped publishing; the module's dashboard shows them.
  conntrack_alarm_percent  = 80
  drops_alarm_per_minute   = 10
  drops_alarm_minutes      = 5
  nat_silent_alarm_minutes = 5

  # Spot with an on-demand fallback is off here (the NATs below buy on-demand). With the NATs'
  # capacity = "spot-with-fallback", 21600 switches a group short of Spot to on-demand and tries
  # Spot again six hours later.
  spot_fallback_retry_seconds = null

  reconcile_schedule  = "rate(1 minute)"
  log_retention_days  = 400
  log_level           = "info"
  kms_key_arn         = aws_kms_key.this.arn
  alarm_sns_topic_arn = aws_sns_topic.alarms.arn
  tags                = var.tags

  # The role's permissions boundary, where the account requires one of whoever creates roles.
  permissions_boundary = var.permissions_boundary

  groups = {
    for zone, group in local.groups : group => {
      availability_zone = zone
      eip_allocation_id = module.eip[zone].allocation_id
      route_table_ids   = var.zones[zone].private_route_table_ids
    }
  }
}

module "nat" {
  source   = "../../terraform/modules/nat-instance"
  for_each = local.groups

  name           = each.value
  vpc_id         = var.vpc_id
  vpc_cidr_block = var.vpc_cidr_block
  # What the security group admits: only the private subnets send through a NAT. The whole VPC
  # here, for brevity; name the private subnets' CIDR blocks where they are known.
  ingress_cidr_blocks = [var.vpc_cidr_block]
  subnet_id           = var.zones[each.key].public_subnet_id
  # A new NAT finds the one serving its zone by the zone's EIP and loads its established TCP flows
  # before it takes over: a planned refresh keeps connections open (null: they end with the old NAT).
  eip_allocation_id = module.eip[each.key].allocation_id

  instance_type = var.nat_instance_type
  ami_id        = var.nat_ami_id
  # On-demand NATs ("spot" costs about a third as much; the hook acts on EC2's two-minute warning), and
  # a second type of the same architecture when the first has no capacity in the zone.
  capacity                 = "on-demand"
  alternate_instance_types = var.nat_alternate_instance_types
  root_volume_size         = 8
  kms_key_arn              = aws_kms_key.this.arn

  # The instance proves itself (forwarding, masquerade, egress through its zone's EIP) before it
  # takes its zone, and keeps checking: unhealthy, its group replaces it and the zone fails over.
  # Any one of the check-IP services proves egress at launch; none answering is outside trouble,
  # published as CheckEndpointsUnreachable and never a reason to replace the instance.
  check_ip_urls                     = ["https://checkip.amazonaws.com", "https://api.ipify.org"]
  metric_namespace                  = "NatAsgHook"
  self_check_interval_seconds       = 10
  unhealthy_after                   = 3
  metrics_interval_seconds          = 60   # bytes, packets, connections, drops, table use: one call a minute
  conntrack_tcp_established_timeout = 7440 # RFC 5382's minimum; 350 for a NAT Gateway's idle timeout
  launch_hook_heartbeat_timeout     = 300
  terminate_hook_heartbeat_timeout  = 150
  instance_warmup_seconds           = 60

  # Each instance ships its user data's output and its self-check's verdicts here: why a NAT was
  # replaced outlives it.
  log_group_name     = "/nat-asg-hook/nat/${each.value}"
  log_retention_days = 400
  log_kms_key_arn    = aws_kms_key.this.arn

  permissions_boundary = var.permissions_boundary
  tags                 = var.tags # the launch template's tag specifications: default tags do not reach the instances

  create_after = module.hook.launch_dependencies
}
