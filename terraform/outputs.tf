output "vpc_id" {
  description = "ID of the VPC"
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnet IDs, by zone"
  value       = { for zone, subnet in aws_subnet.public : zone => subnet.id }
}

output "private_subnet_ids" {
  description = "Private subnet IDs, by zone"
  value       = { for zone, subnet in aws_subnet.private : zone => subnet.id }
}

output "private_route_table_ids" {
  description = "Private route table IDs, by zone (their default route is the hook's)"
  value       = { for zone, table in aws_route_table.private : zone => table.id }
}

output "nat_autoscaling_group_names" {
  description = "NAT Auto Scaling group names, by zone"
  value       = { for zone, nat in module.nat : zone => nat.autoscaling_group_name }
}

output "nat_eip_allocation_ids" {
  description = "Static EIP allocation IDs, by zone"
  value       = { for zone, eip in module.eip : zone => eip.allocation_id }
}

output "nat_public_ips" {
  description = "Static public IPs (what partners allow-list), by zone: the address each zone's egress must leave with (scripts/verify_nat.sh)"
  value       = { for zone, eip in module.eip : zone => eip.public_ip }
}

output "egress_probe_instance_ids" {
  description = "Egress probe instance IDs, by zone (scripts/verify_nat.sh sends its check to them over SSM); {} when egress_probe is off"
  value       = { for zone, probe in module.egress_probe : zone => probe.instance_id }
}

output "lambda_function_name" {
  description = "Name of the hook's function"
  value       = module.hook.lambda_function_name
}

output "lambda_role_name" {
  description = "Name of the hook's execution role"
  value       = module.hook.lambda_role_name
}

output "dead_letter_queue_url" {
  description = "URL of the hook's dead-letter queue"
  value       = module.hook.dead_letter_queue_url
}

output "hook_config" {
  description = "The hook's configuration JSON (`nat-asg-hook --config FILE replay EVENT`)"
  value       = module.hook.hook_config
}

output "dashboard_url" {
  description = "The deployment's CloudWatch dashboard, where the runbook starts: per zone its NAT group, EIP, failover, traffic, connections, drops and connection-tracking use; the hook's invocations, errors and cutover duration; every alarm"
  value       = module.hook.dashboard_url
}
