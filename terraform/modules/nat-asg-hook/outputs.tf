output "lambda_function_name" {
  description = "Name of the function"
  value       = aws_lambda_function.this.function_name
}

output "lambda_function_arn" {
  description = "ARN of the function"
  value       = aws_lambda_function.this.arn
}

output "lambda_role_arn" {
  description = "ARN of the function's execution role"
  value       = aws_iam_role.this.arn
}

output "lambda_role_name" {
  description = "Name of the function's execution role"
  value       = aws_iam_role.this.name
}

output "lambda_policy_json" {
  description = "The execution role's inline policy (least privilege: see iam.tf)"
  value       = data.aws_iam_policy_document.this.json
}

output "log_group_name" {
  description = "Name of the function's log group"
  value       = aws_cloudwatch_log_group.this.name
}

output "event_rule_arns" {
  description = "ARNs of the EventBridge rules, by purpose (`launch`, `terminate`, `state-change`, `self-check`, `spot-warning`, `reconcile`)"
  value       = { for key, rule in local.rules : key => rule.arn }
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue (failed events and invocations)"
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue"
  value       = aws_sqs_queue.dead_letter.arn
}

output "alarm_arns" {
  description = "ARNs of the CloudWatch alarms, by purpose (`errors`, `dead_letters`, `zone_without_nat`, `failover_too_long`, `authorization_errors`)"
  value       = { for purpose, alarm in aws_cloudwatch_metric_alarm.this : purpose => alarm.arn }
}

output "hook_config" {
  description = "The NAT_ASG_HOOK_CONFIG JSON the function runs with: `nat-asg-hook --config` takes it to replay events against the same groups"
  value       = local.hook_config
}

output "terminate_hook_name" {
  description = "Name of the terminate lifecycle hook the terminate rule matches (the nat-instance module declares it on every NAT group)"
  value       = local.terminate_hook_name
}

output "launch_dependencies" {
  description = "IDs of everything a NAT group's first instance needs in place (every rule, its target and invoke permission, the invoke config, the role policy): pass them to the nat-instance module's `create_after`"
  value = concat(
    [for rule in values(local.rules) : rule.arn],
    [for target in values(aws_cloudwatch_event_target.this) : target.id],
    [for permission in values(aws_lambda_permission.events) : permission.id],
    [aws_lambda_function_event_invoke_config.this.id, aws_iam_role_policy.this.id],
  )
}

output "nat_alarm_arns" {
  description = "ARNs of the alarms on what each NAT publishes, by `conntrack-<zone>`, `drops-<zone>` and `nat-silent-<zone>`"
  value       = { for key, alarm in aws_cloudwatch_metric_alarm.nat : key => alarm.arn }
}

output "dashboard_name" {
  description = "Name of the deployment's CloudWatch dashboard"
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "The dashboard in the CloudWatch console: which group and EIP serve each zone, failovers, each NAT's traffic, connections, drops and table use, the hook's work and every alarm"
  value       = "https://${data.aws_region.current.id}.console.aws.amazon.com/cloudwatch/home?region=${data.aws_region.current.id}#dashboards/dashboard/${aws_cloudwatch_dashboard.this.dashboard_name}"
}
