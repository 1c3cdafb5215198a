locals {
  # NAT_ASG_HOOK_CONFIG, the hook's configuration contract. jsonencode sorts object keys: a stable
  # rendering, so an unchanged configuration never updates the function.
  hook_config = jsonencode(merge({
    groups = {
      for name, group in var.groups : name => {
        availability_zone = group.availability_zone
        eip_allocation_id = group.eip_allocation_id
        route_table_ids   = group.route_table_ids
      }
    }
    destination_cidr_block = "0.0.0.0/0"
    failover               = var.failover
  }, var.spot_fallback_retry_seconds == null ? {} : { spot_fallback = { retry_spot_after_seconds = var.spot_fallback_retry_seconds } }))

  group_names = sort(keys(var.groups))

  # The terminate lifecycle hook the nat-instance module declares on every NAT group (a test holds
  # the two names equal). The hook completes it once it handed the leaving instance's zone over.
  terminate_hook_name = "nat-asg-hook-terminate"

  # An event older than this is stale anyway: the scheduled reconcile heals what it would have fixed.
  # The age is counted twice (at EventBridge, then in Lambda's queue). Long enough for Lambda's two
  # asynchronous retries (1 and 2 minutes after attempts of up to the timeout), which a terminate
  # hand-over relies on while its heartbeats keep the leaving NAT in its group.
  maximum_event_age_seconds = 300

  rules = {
    launch        = aws_cloudwatch_event_rule.launch
    launch-failed = aws_cloudwatch_event_rule.launch_failed
    terminate     = aws_cloudwatch_event_rule.terminate
    state-change  = aws_cloudwatch_event_rule.state_change
    self-check    = aws_cloudwatch_event_rule.self_check
    spot-warning  = aws_cloudwatch_event_rule.spot_warning
    reconcile     = aws_cloudwatch_event_rule.reconcile
  }

  alarm_actions = compact([var.alarm_sns_topic_arn])

  # The dead-letter queue's policy names the queue and every rule. Their ARNs are built from their
  # names, not read from the resources, so the queue is created at once: not after the rules that
  # wait for the whole VPC through var.groups, and with its policy in place from the start.
  rule_names             = { for purpose in ["launch", "launch-failed", "terminate", "state-change", "self-check", "spot-warning", "reconcile"] : purpose => "${var.name}-${purpose}" }
  rule_arns              = [for name in values(local.rule_names) : "${local.arn_prefix.events}:rule/${name}"]
  dead_letter_queue_name = "${var.name}-dead-letter"
  dead_letter_queue_arn  = "${local.arn_prefix.sqs}:${local.dead_letter_queue_name}"

  # The reconcile schedule's period, seconds (reconcile_schedule is a rate() of minutes or hours):
  # the period of the alarms on the metrics every reconcile emits.
  reconcile_rate           = regex("^rate\\((\\d+) (minute|hour)s?\\)$", var.reconcile_schedule)
  reconcile_period_seconds = tonumber(local.reconcile_rate[0]) * (local.reconcile_rate[1] == "hour" ? 3600 : 60)
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_117: outside the VPC on purpose: inside it, the function could not reach the EC2 API while the NAT it repairs is down
  # checkov:skip=CKV_AWS_272: the zip is uploaded directly from the build (filename); AWS Signer code signing needs a signed S3 object and a signing pipeline this project does not have
  # checkov:skip=CKV_AWS_116: a failed asynchronous invocation goes to the dead-letter queue through the on-failure destination (aws_lambda_function_event_invoke_config), which also records the error; a function DLQ as well would record each failure twice
  # checkov:skip=CKV_AWS_115: no reservation by default: Lambda keeps 100 concurrent executions of an account unreserved and new accounts often have 10 in all, so a default reservation fails the first apply; reserved_concurrent_executions opts in
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

  tags = var.tags

  # The first invocation must find its permissions.
  depends_on = [aws_iam_role_policy.this]
}

# One failure, one dead letter: an invocation that failed every retry (or grew too old) reaches the
# dead-letter queue through this on-failure destination only, as Lambda's record of the request,
# the response and the error (what `nat-asg-hook replay` takes). The function has no DLQ of its own.
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
  message_retention_seconds = 1209600                               # 14 days, the maximum: time to replay them
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null # with a key, SSE-KMS; the provider refuses both set
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
# EventBridge: a NAT that proved itself, a NAT that is leaving, and the reconcile schedule
################################################################################

# The instance proved itself (it completed its own launch hook with CONTINUE): cut over to it. The
# launch lifecycle action itself is the instance's business: no rule subscribes to it.
resource "aws_cloudwatch_event_rule" "launch" {
  name        = local.rule_names.launch
  description = "A NAT group's instance is InService: it proved itself, cut over to it"

  event_pattern = jsonencode({
    account     = [data.aws_caller_identity.current.account_id]
    source      = ["aws.autoscaling"]
    detail-type = ["EC2 Instance Launch Successful"]
    detail = {
      AutoScalingGroupName = local.group_names
    }
  })

  tags = var.tags
}

# A NAT group could not launch an instance. With the Spot fallback (capacity = "spot-with-fallback")
# a launch that found no Spot capacity switches the group to on-demand; otherwise the hook logs the
# failure and its reason and answers `ignored` without a call.
resource "aws_cloudwatch_event_rule" "launch_failed" {
  name        = local.rule_names["launch-failed"]
  description = "A NAT group could not launch an instance: short of Spot capacity, launch on-demand (Spot fallback)"

  event_pattern = jsonencode({
    account     = [data.aws_caller_identity.current.account_id]
    source      = ["aws.autoscaling"]
    detail-type = ["EC2 Instance Launch Unsuccessful"]
    detail = {
      AutoScalingGroupName = local.group_names
    }
  })

  tags = var.tags
}

# A NAT group terminates an instance: its terminate hook waits while the hook hands the zone over.
resource "aws_cloudwatch_event_rule" "terminate" {
  name        = local.rule_names.terminate
  description = "A NAT group's instance is terminating: hand its zone over, then complete the terminate hook"

  event_pattern = jsonencode({
    account     = [data.aws_caller_identity.current.account_id]
    source      = ["aws.autoscaling"]
    detail-type = ["EC2 Instance-terminate Lifecycle Action"]
    detail = {
      AutoScalingGroupName = local.group_names
      LifecycleHookName    = [local.terminate_hook_name]
    }
  })

  tags = var.tags
}

# An instance is leaving without its group's terminate hook (stopped, shut down from inside, lost).
# EC2's state-change events carry no group or tag, so this rule matches the leaving states of every
# instance in the region; the hook answers `ignored` after one read round for an instance that no
# configured route table targets. That stays cheap: AWS service events on the default bus cost
# nothing, and an ignored invocation is a few reads and tens of milliseconds of a 256 MB function
# (a region with 100 000 such state changes a month: about $0.05 of Lambda). The reads do count
# against the account's EC2 Describe* request rate.
resource "aws_cloudwatch_event_rule" "state_change" {
  name        = local.rule_names["state-change"]
  description = "An EC2 instance of the region is stopping, stopped, shutting down or terminated: if a NAT, hand its zone over"

  event_pattern = jsonencode({
    account     = [data.aws_caller_identity.current.account_id]
    source      = ["aws.ec2"]
    detail-type = ["EC2 Instance State-change Notification"]
    detail = {
      state = ["stopping", "stopped", "shutting-down", "terminated"]
    }
  })

  tags = var.tags
}

# A NAT's own report, right after it marked itself Unhealthy (an own fault: forwarding, masquerade,
# route, connection tracking): hand its zone over now, not when its replacement is in service. The
# hook moves nothing unless the group holds the instance Unhealthy: a forged report moves nothing.
resource "aws_cloudwatch_event_rule" "self_check" {
  name        = local.rule_names["self-check"]
  description = "A NAT's self-check took it out (it marked itself Unhealthy): hand its zone over now"

  event_pattern = jsonencode({
    account     = [data.aws_caller_identity.current.account_id]
    source      = ["nat-asg-hook.nat"]
    detail-type = ["NAT Self-Check Failed"]
    detail = {
      AutoScalingGroupName = local.group_names
    }
  })

  tags = var.tags
}

# EC2 reclaims a Spot instance in two minutes: hand its zone over while it still forwards, and mark
# it Unhealthy so that its group launches the replacement now. Like the state-change rule it sees
# every Spot instance of the region (the event carries no group); one read answers `ignored` for
# an instance that is not a NAT of ours. A rebalance recommendation is not subscribed: the groups'
# capacity rebalancing launches the replacement first, and its launch takes the zone.
resource "aws_cloudwatch_event_rule" "spot_warning" {
  name        = local.rule_names["spot-warning"]
  description = "EC2 warns that it reclaims a Spot instance: if a NAT, hand its zone over now"

  event_pattern = jsonencode({
    account     = [data.aws_caller_identity.current.account_id]
    source      = ["aws.ec2"]
    detail-type = ["EC2 Spot Instance Interruption Warning"]
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = local.rule_names.reconcile
  description         = "Reconciles every NAT zone: heals lost events and drift, fails over and back"
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
# Alarms: a failed run, anything in the dead-letter queue, a zone without its own NAT, a failover
# that outlasts a replacement, and missing permissions
################################################################################

locals {
  # One alarm per entry; `dimensions = null` for the hook's own metrics (namespace NatAsgHook, no
  # dimensions: the hook emits them per reconcile or per invocation).
  alarms = {
    errors = {
      name               = "${var.name}-errors"
      description        = "${var.name} failed: a NAT zone's EIP or default routes may not follow its instance"
      namespace          = "AWS/Lambda"
      metric_name        = "Errors"
      dimensions         = { FunctionName = var.name }
      statistic          = "Sum"
      period             = 60
      evaluation_periods = 1
      treat_missing_data = "notBreaching"
    }
    dead_letters = {
      name               = "${var.name}-dead-letters"
      description        = "An event or invocation of ${var.name} reached the dead-letter queue: replay it with `nat-asg-hook replay`"
      namespace          = "AWS/SQS"
      metric_name        = "ApproximateNumberOfMessagesVisible"
      dimensions         = { QueueName = local.dead_letter_queue_name }
      statistic          = "Maximum"
      period             = 300
      evaluation_periods = 1
      treat_missing_data = "notBreaching"
    }
    # Every reconcile reports how many zones hold no live InService NAT of their own. Missing data
    # breaches too: a reconcile that does not report is a fleet nobody watches.
    zone_without_nat = {
      name               = "${var.name}-zone-without-nat"
      description        = "A NAT zone has had no NAT of its own for ${var.zone_without_nat_alarm_periods} reconcile periods (or the reconcile stopped reporting): its private subnets leave through a sibling zone's NAT and EIP, or not at all"
      namespace          = "NatAsgHook"
      metric_name        = "ZonesWithoutOwnNat"
      dimensions         = null
      statistic          = "Maximum"
      period             = local.reconcile_period_seconds
      evaluation_periods = var.zone_without_nat_alarm_periods
      treat_missing_data = "breaching"
    }
    failover_too_long = {
      name               = "${var.name}-failover-too-long"
      description        = "A NAT zone's routes have pointed at a sibling zone's NAT for ${var.failover_alarm_minutes} minutes, longer than a replacement takes: its traffic leaves with the sibling's EIP"
      namespace          = "NatAsgHook"
      metric_name        = "ZonesFailedOver"
      dimensions         = null
      statistic          = "Minimum"
      period             = local.reconcile_period_seconds
      evaluation_periods = max(1, ceil(var.failover_alarm_minutes * 60 / local.reconcile_period_seconds))
      treat_missing_data = "notBreaching"
    }
    authorization_errors = {
      name               = "${var.name}-authorization-errors"
      description        = "${var.name} was refused an AWS call (AccessDenied, UnauthorizedOperation): its role does not cover a resource; nothing retries that away"
      namespace          = "NatAsgHook"
      metric_name        = "AuthorizationErrors"
      dimensions         = null
      statistic          = "Sum"
      period             = 300
      evaluation_periods = 1
      treat_missing_data = "notBreaching"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = each.value.name
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

################################################################################
# The fleet guard's alarm: outside trouble. Each NAT publishes CheckEndpointsUnreachable (1: none of
# its check endpoints confirmed its address; nat-instance module, nat-self-check). One zone alone may
# be its own trouble; NATs of several zones at once is trouble outside them (an endpoint, DNS, the
# internet): nothing is replaced for it (no NAT counts it as a failure), and this alarm fires.
################################################################################

locals {
  # m0, m1, ...: one metric per NAT group, in a stable order.
  outside_metrics = { for i, group in sort(keys(var.groups)) : "m${i}" => group }
}

resource "aws_cloudwatch_metric_alarm" "outside_trouble" {
  alarm_name          = "${var.name}-outside-trouble"
  alarm_description   = "NATs of ${var.outside_trouble_zones} zones or more could not reach any of their check endpoints in the same minute: trouble outside the NATs (the endpoints, DNS, the internet). No NAT is replaced for it. Runbook: \"Outside trouble\""
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.outside_trouble_zones
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "zones"
    label       = "NAT zones reporting outside trouble"
    expression  = join(" + ", [for id in keys(local.outside_metrics) : "FILL(${id}, 0)"])
    return_data = true
  }

  dynamic "metric_query" {
    for_each = local.outside_metrics

    content {
      id = metric_query.key

      metric {
        namespace   = var.nat_metric_namespace
        metric_name = "CheckEndpointsUnreachable"
        dimensions  = { AutoScalingGroupName = metric_query.value }
        stat        = "Maximum"
        period      = 60
      }
    }
  }
}
