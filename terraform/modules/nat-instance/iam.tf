################################################################################
# The instance's own permissions: complete its group's lifecycle actions (its launch), set the
# health of its group's instances (itself, when its self-check finds an own fault) and report that
# to the hook (one event), ship its log to its group's log group, and publish its self-check's
# metric to the project's namespace. Nothing else: no SSM, no EC2 call (the hook moves
# the EIP and the routes).
################################################################################

data "aws_iam_policy_document" "instance_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "instance" {
  statement {
    sid       = "OwnGroupsLifecycleAndHealth"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth"]
    resources = [local.autoscaling_group_arn]
  }

  # The NAT's log: its own streams of its group's log group only.
  statement {
    sid       = "OwnLogStreams"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group_name}:log-stream:*"]
  }

  # The self-check's report to the hook, right after it marked the instance Unhealthy: one event on
  # the default bus, of the project's source and detail type only.
  statement {
    sid       = "ReportSelfCheckFailed"
    actions   = ["events:PutEvents"]
    resources = ["arn:${data.aws_partition.current.partition}:events:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:event-bus/default"]

    condition {
      test     = "StringEquals"
      variable = "events:source"
      values   = ["nat-asg-hook.nat"]
    }

    condition {
      test     = "StringEquals"
      variable = "events:detail-type"
      values   = ["NAT Self-Check Failed"]
    }
  }

  # nat-conntrack-sync: which instance holds the zone's EIP (the NAT whose flows a new NAT loads).
  # Describe calls take no resource-level permissions: "*", read only.
  dynamic "statement" {
    for_each = var.eip_allocation_id == null ? [] : ["on"]

    content {
      sid       = "FindTheServingNat"
      actions   = ["ec2:DescribeAddresses"]
      resources = ["*"]
    }
  }

  # The self-check's outside-reachability result (CheckEndpointsUnreachable): PutMetricData has no
  # resource type, so the namespace condition is what keeps it to the project's own metrics.
  statement {
    sid       = "OwnNamespaceMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metric_namespace]
    }
  }
}

resource "aws_iam_role" "instance" {
  name                 = var.name
  description          = "NAT instances of ${var.name}: complete their own launch, set their own health"
  assume_role_policy   = data.aws_iam_policy_document.instance_assume_role.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

resource "aws_iam_role_policy" "instance" {
  name   = var.name
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance.json
}

resource "aws_iam_instance_profile" "this" {
  name = var.name
  role = aws_iam_role.instance.name
  tags = var.tags
}
