output "allocation_id" {
  description = "Allocation ID of the EIP (the hook's `eip_allocation_id` for the group)"
  value       = local.eip.allocation_id
}

output "public_ip" {
  description = "The static public IP that partners allow-list"
  value       = local.eip.public_ip
}
