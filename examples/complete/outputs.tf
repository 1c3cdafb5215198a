output "public_ips" {
  description = "Each zone's static egress address (what partners allow-list), by zone"
  value       = { for zone, eip in module.eip : zone => eip.public_ip }
}

output "autoscaling_group_names" {
  description = "Each zone's NAT group, by zone"
  value       = { for zone, nat in module.nat : zone => nat.autoscaling_group_name }
}

output "lambda_function_name" {
  description = "The hook's function"
  value       = module.hook.lambda_function_name
}

output "dead_letter_queue_url" {
  description = "Where failed events wait (the runbook replays them)"
  value       = module.hook.dead_letter_queue_url
}

output "alarm_topic_arn" {
  description = "The topic the hook's alarms notify"
  value       = aws_sns_topic.alarms.arn
}

output "kms_key_arn" {
  description = "The key of the hook's logs, environment and dead letters, the alarm topic and the NAT root volumes"
  value       = aws_kms_key.this.arn
}

output "hook_config" {
  description = "The hook's configuration: `nat-asg-hook --config FILE verify` checks every zone with it"
  value       = module.hook.hook_config
}
