output "autoscaling_group_name" {
  description = "Name of the NAT Auto Scaling group"
  value       = aws_autoscaling_group.this.name
}

output "autoscaling_group_arn" {
  description = "ARN of the NAT Auto Scaling group"
  value       = aws_autoscaling_group.this.arn
}

output "security_group_id" {
  description = "ID of the NAT instance's security group"
  value       = aws_security_group.this.id
}

output "launch_template_id" {
  description = "ID of the NAT launch template"
  value       = aws_launch_template.this.id
}

output "launch_template_latest_version" {
  description = "Latest version of the NAT launch template (the one the ASG launches)"
  value       = aws_launch_template.this.latest_version
}

output "ami_id" {
  description = "AMI the NAT instance launches from"
  value       = local.ami_id
}

output "lifecycle_hook_names" {
  description = "The group's lifecycle hooks by purpose: `launch` (completed by the instance itself) and `terminate` (completed by the hook)"
  value       = { for purpose, hook in aws_autoscaling_lifecycle_hook.this : purpose => hook.name }
}

output "instance_role_name" {
  description = "Name of the NAT instances' role (its policy: CompleteLifecycleAction and SetInstanceHealth on this group only)"
  value       = aws_iam_role.instance.name
}

output "instance_profile_arn" {
  description = "ARN of the NAT instances' instance profile"
  value       = aws_iam_instance_profile.this.arn
}

output "log_group_name" {
  description = "The NATs' log group: per instance the streams <instance id>/user-data and <instance id>/self-check (why it proved itself, or was replaced)"
  value       = aws_cloudwatch_log_group.this.name
}
