output "runner_counts" {
  description = "Runner VMs per VM size."
  value       = local.runner_count
}

output "slots" {
  description = "Worker slots (SLOTS) per runner VM, by VM size."
  value       = local.slots
}

output "jump_address" {
  description = "Public address of the SSH jump host (user ubuntu): ssh -J ubuntu@<jump_address> ubuntu@<runner ip>."
  value       = azurerm_public_ip.jump.ip_address
}

output "runner_private_ips" {
  description = "Private addresses of the runners, reached through the jump host."
  value       = { for key, nic in azurerm_network_interface.runner : key => nic.private_ip_address }
}

output "nat_public_ip" {
  description = "Address the runners reach the internet (and the orchestrator) from."
  value       = azurerm_public_ip.nat.ip_address
}

output "resource_group" {
  description = "The run's resource group; the nuke script deletes it whatever Terraform knows."
  value       = azurerm_resource_group.run.name
}
