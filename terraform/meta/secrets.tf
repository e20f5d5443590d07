# Secrets of the run. Alphanumeric only, so that they go into env files, URLs and YAML
# without quoting. They are in the Terraform state: keep the state local to the machine
# that runs the master script (the default backend) and let the nuke script remove it.

resource "random_password" "api_key" {
  length  = 48
  special = false
}

# The runners' key: it claims tasks and reports on them, and opens no operator endpoint.
resource "random_password" "runner_api_key" {
  length  = 48
  special = false
}

resource "random_password" "operator_password" {
  length  = 32
  special = false
}

resource "random_password" "postgres" {
  length  = 32
  special = false
}

# RSA, because Azure (and azurerm's validation) accept no other key type for VMs.
resource "tls_private_key" "ssh" {
  algorithm = "RSA"
  rsa_bits  = 4096
}

resource "local_sensitive_file" "ssh_private_key" {
  filename             = local.ssh_private_key_path
  content              = tls_private_key.ssh.private_key_openssh
  file_permission      = "0600"
  directory_permission = "0700"
}

resource "aws_key_pair" "run" {
  key_name   = local.name
  public_key = tls_private_key.ssh.public_key_openssh
}
