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
