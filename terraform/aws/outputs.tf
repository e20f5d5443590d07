output "runner_counts" {
  description = "Runner instances per instance type."
  value       = local.runner_count
}

output "slots" {
  description = "Worker slots (SLOTS) per runner instance, by instance type."
  value       = local.slots
}

output "runner_private_ips" {
  description = "Private addresses of the runners, reached through the bastion: ssh -J ubuntu@<bastion_address> ubuntu@<ip>."
  value       = { for key, i in aws_instance.runner : key => i.private_ip }
}

output "nat_public_ip" {
  description = "Address the runners reach the internet (and the orchestrator) from."
  value       = aws_eip.nat.public_ip
}
