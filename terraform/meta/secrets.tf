# Secrets of the run. Alphanumeric only, so that they go into env files, URLs and YAML
# without quoting. They are in the Terraform state: keep the state local to the machine
# that runs the master script (the default backend) and let the nuke script remove it.
# The orchestrator host reads them from SSM Parameter Store at boot (see the end of this
# file); user data, which anyone with ec2:DescribeInstanceAttribute reads, has only names.

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

# The secret lines of the orchestrator host's env files, one SecureString parameter per file
# (encrypted with the account's aws/ssm key, which any principal of the account may use
# through SSM). Only the orchestrator's role may read them (iam.tf); rcb-secrets appends
# them to the files at boot. Tagged through default_tags, so the nuke script finds them.
locals {
  secret_prefix = "/rcb/${var.run_id}"

  orchestrator_secret_env = {
    API_KEY           = random_password.api_key.result
    RUNNER_API_KEY    = random_password.runner_api_key.result
    OPERATOR_PASSWORD = random_password.operator_password.result
    DATABASE_URL      = "postgres://postgres:${random_password.postgres.result}@127.0.0.1:5432/rcb"
  }
  postgres_secret_env = {
    POSTGRES_PASSWORD = random_password.postgres.result
  }

  # /etc/rcb/secrets of the orchestrator host: which file each parameter goes to.
  orchestrator_secrets = join("", [
    "orchestrator.env ssm ${var.region} ${local.secret_prefix}/orchestrator.env\n",
    "postgres.env ssm ${var.region} ${local.secret_prefix}/postgres.env\n",
  ])
}

resource "aws_ssm_parameter" "orchestrator_env" {
  name        = "${local.secret_prefix}/orchestrator.env"
  description = "The orchestrator's secret settings (run ${var.run_id})"
  type        = "SecureString"
  value       = join("", [for k in sort(keys(local.orchestrator_secret_env)) : "${k}=${local.orchestrator_secret_env[k]}\n"])
}

resource "aws_ssm_parameter" "postgres_env" {
  name        = "${local.secret_prefix}/postgres.env"
  description = "The orchestrator's database password (run ${var.run_id})"
  type        = "SecureString"
  value       = join("", [for k in sort(keys(local.postgres_secret_env)) : "${k}=${local.postgres_secret_env[k]}\n"])
}
