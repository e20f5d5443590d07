# Outputs read by the master script. Those named like a variable of the provider stacks
# (orchestrator_url, runner_api_key, ssh_public_key, meta_*, bastion_private_ip) are passed to
# them under the same name; crates/infra-checks checks that wiring.

output "orchestrator_url" {
  description = "Public URL of the orchestrator (runners, master script, dashboard)."
  value       = local.orchestrator_url
}

output "orchestrator_public_ip" {
  description = "Elastic IP of the orchestrator; the A record of domain must point here."
  value       = aws_eip.orchestrator.public_ip
}

output "api_key" {
  description = "The operator key of the orchestrator's API (the master script): starts, stops and reads runs."
  value       = random_password.api_key.result
  sensitive   = true
}

output "runner_api_key" {
  description = "The runners' key of the orchestrator's API: claims and reports on tasks only."
  value       = random_password.runner_api_key.result
  sensitive   = true
}

output "operator_password" {
  description = "Password of the dashboard's operator login."
  value       = random_password.operator_password.result
  sensitive   = true
}

output "bucket" {
  description = "Name of the run's results bucket; the master script uploads the image tarballs here."
  value       = aws_s3_bucket.results.bucket
}

output "region" {
  description = "Region of the bucket, the orchestrator and the bastion."
  value       = var.region
}

output "bastion_address" {
  description = "Public address of the SSH bastion (user ubuntu)."
  value       = aws_instance.bastion.public_ip
}

output "bastion_private_ip" {
  description = "Private address of the bastion: AWS runners accept SSH from it alone."
  value       = aws_instance.bastion.private_ip
}

output "ssh_private_key_path" {
  description = "Where the run's SSH private key was written (mode 0600)."
  value       = local_sensitive_file.ssh_private_key.filename
}

output "ssh_public_key" {
  description = "Public half of the run's SSH key, for the provider stacks' hosts."
  value       = tls_private_key.ssh.public_key_openssh
}

output "ssh_user" {
  description = "Login user on every host of the run (Ubuntu images)."
  value       = "ubuntu"
}

output "meta_region" {
  description = "Region of the meta VPC, for the AWS runner VPC's peering."
  value       = var.region
}

output "meta_vpc_id" {
  description = "The meta VPC, peered with the AWS runner VPC."
  value       = aws_vpc.meta.id
}

output "meta_vpc_cidr" {
  description = "CIDR of the meta VPC."
  value       = aws_vpc.meta.cidr_block
}

output "meta_route_table_id" {
  description = "Route table of the bastion's subnet; the AWS stack adds the route to its runners."
  value       = aws_route_table.public.id
}
