output "public_ip" {
  description = "The zone's static egress address (what partners allow-list)"
  value       = module.eip.public_ip
}

output "autoscaling_group_name" {
  description = "The NAT group"
  value       = module.nat.autoscaling_group_name
}

output "hook_config" {
  description = "The hook's configuration: `nat-asg-hook --config FILE verify` checks the zone with it"
  value       = module.hook.hook_config
}
