data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # The region's name is the data source's `id` with provider 5 and 6 alike: `name` is deprecated
  # from 6 (for `region`, which 5 lacks).
  # "arn:<partition>:<service>:<region>:<account>", per service whose ARNs this module builds
  arn_prefix = {
    for service in ["autoscaling", "ec2", "events", "sqs"] :
    service => "arn:${data.aws_partition.current.partition}:${service}:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}"
  }

  route_table_arns = [for id in sort(flatten(values(var.groups)[*].route_table_ids)) : "${local.arn_prefix.ec2}:route-table/${id}"]
  eip_arns         = [for id in sort(values(var.groups)[*].eip_allocation_id) : "${local.arn_prefix.ec2}:elastic-ip/${id}"]
  group_arns       = [for name in local.group_names : "${local.arn_prefix.autoscaling}:autoScalingGroup:*:autoScalingGroupName/${name}"]

  # The nat-instance module tags each group's instances and their network interfaces with it.
  group_tag_key = "nat-asg-hook:group"
}

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Execution role of the ${var.name} Lambda"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

# Exactly the calls the handler makes, each on the narrowest resource IAM can name.
data "aws_iam_policy_document" "this" {
  # The observe round. Describe calls take no resource-level permissions: the only "*" besides X-Ray.
  statement {
    sid = "Observe"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "ec2:DescribeAddresses",
      "ec2:DescribeInstances",
      "ec2:DescribeRouteTables",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "PointDefaultRoutes"
    actions   = ["ec2:CreateRoute", "ec2:ReplaceRoute"]
    resources = local.route_table_arns
  }

  # AssociateAddress is authorized on the EIP and on the network interface (or instance) it goes to:
  # the EIP by ARN here, the target by tag in the next statement.
  statement {
    sid       = "MoveStaticEips"
    actions   = ["ec2:AssociateAddress"]
    resources = local.eip_arns
  }

  statement {
    sid     = "OntoNatInstancesOnly"
    actions = ["ec2:AssociateAddress", "ec2:ModifyNetworkInterfaceAttribute"]
    resources = [
      "${local.arn_prefix.ec2}:instance/*",
      "${local.arn_prefix.ec2}:network-interface/*",
    ]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.group_tag_key}"
      values   = local.group_names
    }
  }

  # The terminate hook's action: kept alive (heartbeat) while a hand-over is retried, completed
  # once the leaving instance's zone is handed over. (The launch hook is the instance's own: it
  # completes it from its user data.) A NAT that EC2 warned of (Spot) is marked Unhealthy, so that
  # its group replaces it now.
  statement {
    sid       = "CompleteTerminationsMarkWarned"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat", "autoscaling:SetInstanceHealth"]
    resources = local.group_arns
  }

  # Spot with an on-demand fallback only: switch a NAT group between Spot and on-demand (its
  # instances distribution) and write when Spot was unavailable (that one tag). The conditions refuse
  # a request that would resize the group, move it to other subnets or give it a launch
  # configuration; a launch template in a request would need ec2:RunInstances, which this role lacks.
  dynamic "statement" {
    for_each = var.spot_fallback_retry_seconds == null ? [] : ["on"]

    content {
      sid       = "SwitchSpotOnDemand"
      actions   = ["autoscaling:UpdateAutoScalingGroup"]
      resources = local.group_arns

      dynamic "condition" {
        for_each = ["autoscaling:MinSize", "autoscaling:MaxSize", "autoscaling:VPCZoneIdentifiers", "autoscaling:LaunchConfigurationName"]

        content {
          test     = "Null"
          variable = condition.value
          values   = ["true"]
        }
      }
    }
  }

  dynamic "statement" {
    for_each = var.spot_fallback_retry_seconds == null ? [] : ["on"]

    content {
      sid       = "MarkSpotUnavailable"
      actions   = ["autoscaling:CreateOrUpdateTags"]
      resources = local.group_arns

      condition {
        test     = "ForAllValues:StringEquals"
        variable = "aws:TagKeys"
        values   = ["nat-asg-hook:spot-unavailable"]
      }
    }
  }

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # Lambda sends a failed invocation's record to the on-failure destination with this role.
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }

  # X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions: AWS
  # documents "*" as their only resource (the AWSXRayDaemonWriteAccess managed policy does the same).
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "EncryptedDeadLetters"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = var.name
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
