locals {
  # Applied to every resource through the provider's default_tags; the nuke script finds
  # leftovers by these.
  tags = {
    Project = "ruby-cross-cloud-bench"
    RunId   = var.run_id
  }
  name = "rcb-${var.run_id}"

  # The orchestrator host exists once the master script has uploaded the images into the
  # bucket this stack creates and passed their presigned URLs (the second apply).
  orchestrator_enabled = var.orchestrator_image_url != "" && var.postgres_image_url != ""

  https            = var.domain != ""
  orchestrator_url = local.https ? "https://${var.domain}" : "http://${aws_eip.orchestrator.public_ip}"

  ssh_private_key_path = var.ssh_private_key_path != "" ? var.ssh_private_key_path : pathexpand("~/.ssh/rcb-${var.run_id}")

  # Canonical's Ubuntu 24.04 images, by the architecture an instance type supports.
  ami_arch = { arm64 = "arm64", x86_64 = "amd64" }
}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_ec2_instance_type" "host" {
  for_each      = toset([var.orchestrator_instance_type, var.bastion_instance_type])
  instance_type = each.key
}

# Which zones offer the hosts' types: the public subnet goes to the first that offers both.
data "aws_ec2_instance_type_offerings" "host" {
  for_each      = toset([var.orchestrator_instance_type, var.bastion_instance_type])
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [each.key]
  }
}

data "aws_ssm_parameter" "ubuntu" {
  for_each = local.ami_arch
  name     = "/aws/service/canonical/ubuntu/server/24.04/stable/current/${each.value}/hvm/ebs-gp3/ami-id"
}

locals {
  # arm64 when the type supports it (Graviton), else x86_64.
  host_arch = {
    for t, d in data.aws_ec2_instance_type.host : t => contains(d.supported_architectures, "arm64") ? "arm64" : "x86_64"
  }
  host_ami = { for t, arch in local.host_arch : t => data.aws_ssm_parameter.ubuntu[arch].insecure_value }

  host_zones = [
    for az in sort(data.aws_availability_zones.available.names) : az
    if alltrue([for t, o in data.aws_ec2_instance_type_offerings.host : contains(o.locations, az)])
  ]
}
