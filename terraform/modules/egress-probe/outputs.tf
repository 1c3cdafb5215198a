output "instance_id" {
  description = "ID of the probe instance: the target of `aws ssm send-command` (scripts/verify_nat.sh)"
  value       = aws_instance.this.id
}

output "private_ip" {
  description = "Private IP of the probe in the zone's private subnet"
  value       = aws_instance.this.private_ip
}

output "security_group_id" {
  description = "ID of the probe's security group (no ingress; HTTPS and HTTP out)"
  value       = aws_security_group.this.id
}

output "role_name" {
  description = "Name of the probe's role (AmazonSSMManagedInstanceCore only)"
  value       = aws_iam_role.this.name
}

output "instance_profile_arn" {
  description = "ARN of the probe's instance profile"
  value       = aws_iam_instance_profile.this.arn
}
