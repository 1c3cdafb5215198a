locals {
  # NAT_ASG_HOOK_CONFIG, the contract in DESIGN.md. jsonencode sorts object keys: a stable rendering,
  # so an unchanged configuration never updates the function.
  hook_config = jsonencode({
    groups = {
      for name, group in var.groups : name => {
        availability_zone = group.availability_zone
        eip_allocation_id = group.eip_allocation_id
        route_table_ids   = group.route_table_ids
      }
    }
    destination_cidr_block = "0.0.0.0/0"
  })

  group_names = sort(keys(var.groups))

  # An event older than this is stale anyway: the scheduled reconcile heals what it would have fixed.
  # The age is counted twice (at EventBridge, then in Lambda's queue), so a launch event reaches the
  # function within 2 x 120 s and is handled within its timeout: before a 300 s lifecycle heartbeat
  # can abandon the instance the hook is moving the routes to (see the nat-instance module).
  maximum_event_age_seconds = 120

  rules = {
    launch    = aws_cloudwatch_event_rule.launch
    reconcile = aws_cloudwatch_event_rule.reconcile
  }

  alarm_actions = compact([var.alarm_sns_topic_arn])

  # The dead-letter queue's policy names the queue and both rules. Their ARNs are built from their
  # names, not read from the resources, so the queue is created at once: not after the launch rule,
  # which waits for the whole VPC through var.groups, and with its policy in place from the start.
  rule_names             = { launch = "${var.name}-launch", reconcile = "${var.name}-reconcile" }
  rule_arns              = [for name in values(local.rule_names) : "${local.arn_prefix.events}:rule/${name}"]
  dead_letter_queue_name = "${var.name}-dead-letter"
  dead_letter_queue_arn  = "${local.arn_prefix.sqs}:${local.dead_letter_queue_name}"
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_117: outside the VPC on purpose: inside it, the function could not reach the EC2 API while the NAT it repairs is down
  # checkov:skip=CKV_AWS_272: the zip is uploaded directly from the build (filename); AWS Signer code signing needs a signed S3 object and a signing pipeline this project does not have
  # checkov:skip=CKV_AWS_173: the environment holds no secret (group names, EIP allocation and route table IDs); it is encrypted at rest with an AWS managed key, or with kms_key_arn when given
  function_name = var.name
  description   = "Moves each NAT group's EIP and private default routes to the instance its ASG launches"
  role          = aws_iam_role.this.arn

  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  memory_size      = var.memory_size
  timeout          = var.timeout
  kms_key_arn      = var.kms_key_arn

  reserved_concurrent_executions = var.reserved_concurrent_executions

  environment {
    variables = {
      NAT_ASG_HOOK_CONFIG = local.hook_config
    }
  }

  # JSON logs at the chosen level: the runtime's subscriber reads AWS_LAMBDA_LOG_FORMAT and
  # AWS_LAMBDA_LOG_LEVEL, which Lambda sets from this block.
  logging_config {
    log_format            = "JSON"
    application_log_level = upper(var.log_level)
    system_log_level      = "WARN"
    log_group             = aws_cloudwatch_log_group.this.name
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter.arn
  }

  tags = var.tags

  # The first invocation must find its permissions.
  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_event_age_in_seconds = local.maximum_event_age_seconds
  maximum_retry_attempts       = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letter.arn
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts at rest by default; a customer managed key is optional (kms_key_arn)
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

################################################################################
# Dead letters: events EventBridge could not deliver and invocations that failed every retry
################################################################################

# The policy is set when the queue is created, not by a separate aws_sqs_queue_policy: the provider
# waits about 25 s for SQS attributes to settle after each change, on create and again on destroy,
# and one wait is enough.
resource "aws_sqs_queue" "dead_letter" {
  name                      = local.dead_letter_queue_name
  message_retention_seconds = 1209600 # 14 days, the maximum: time to replay them
  sqs_managed_sse_enabled   = var.kms_key_arn == null
  kms_master_key_id         = var.kms_key_arn
  policy                    = data.aws_iam_policy_document.dead_letter.json
  tags                      = var.tags
}

data "aws_iam_policy_document" "dead_letter" {
  statement {
    sid       = "EventBridgeDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [local.dead_letter_queue_arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }
  }
}

################################################################################
# EventBridge: the groups' launches, and the reconcile schedule
################################################################################

resource "aws_cloudwatch_event_rule" "launch" {
  name        = local.rule_names.launch
  description = "Instance launches of the NAT Auto Scaling groups"

  event_pattern = jsonencode({
    source      = ["aws.autoscaling"]
    detail-type = ["EC2 Instance-launch Lifecycle Action", "EC2 Instance Launch Successful"]
    detail = {
      AutoScalingGroupName = local.group_names
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = local.rule_names.reconcile
  description         = "Reconciles every NAT group: heals lost events and drift"
  schedule_expression = var.reconcile_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = local.rules

  rule      = each.value.name
  target_id = var.name
  arn       = aws_lambda_function.this.arn

  retry_policy {
    maximum_event_age_in_seconds = local.maximum_event_age_seconds
    maximum_retry_attempts       = 10
  }

  dead_letter_config {
    arn = aws_sqs_queue.dead_letter.arn
  }
}

resource "aws_lambda_permission" "events" {
  for_each = local.rules

  statement_id  = "AllowEventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = each.value.arn
}

################################################################################
# Alarms: a failed run, and anything that reached the dead-letter queue
################################################################################

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "${var.name} failed: a NAT group's EIP or default routes may not follow its instance"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "An event or invocation of ${var.name} reached the dead-letter queue: replay it with `nat-asg-hook replay`"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
