locals {
  # Applied to every resource through the providers' default_tags, and explicitly where
  # default_tags do not reach (volumes created with an instance).
  tags = {
    Project = "ruby-cross-cloud-bench"
    RunId   = var.run_id
  }
  name = "rcb-${var.run_id}"

  # Canonical's Ubuntu 24.04 images, by the architecture an instance type supports.
  ami_arch = { arm64 = "arm64", x86_64 = "amd64" }
}

# The provider's own data on each type: vCPUs, threads per core, architectures.
data "aws_ec2_instance_type" "runner" {
  for_each      = toset(var.instance_types)
  instance_type = each.key
}

# Which availability zones offer each type (new families are not in every zone).
data "aws_ec2_instance_type_offerings" "runner" {
  for_each      = toset(var.instance_types)
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [each.key]
  }
}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_ssm_parameter" "ubuntu" {
  for_each = local.ami_arch
  name     = "/aws/service/canonical/ubuntu/server/24.04/stable/current/${each.value}/hvm/ebs-gp3/ami-id"
}

# How many runner instances each type gets. crates/infra-checks evaluates these
# expressions for a sample config and compares them with its own arithmetic: keep them
# plain (for, conditionals, arithmetic, ceil/floor/max).
locals {
  vcpus            = { for t, d in data.aws_ec2_instance_type.runner : t => d.default_vcpus }
  threads_per_core = { for t, d in data.aws_ec2_instance_type.runner : t => d.default_threads_per_core }

  # One slot per vCPU, or per physical core with SLOT_MODE=core.
  slots = {
    for t in var.instance_types : t => var.slot_mode == "core" ? max(1, floor(local.vcpus[t] / local.threads_per_core[t])) : local.vcpus[t]
  }
  runner_count = {
    for t in var.instance_types : t => ceil(var.runs_per_instance_type / local.slots[t])
  }
}

locals {
  # arm64 for Graviton types, x86_64 otherwise.
  arch = {
    for t, d in data.aws_ec2_instance_type.runner : t => contains(d.supported_architectures, "arm64") ? "arm64" : "x86_64"
  }

  # One entry per runner instance, keyed "<type>-<n>" so that a changed count adds or
  # removes instances without renumbering the others.
  runners = merge([
    for t in var.instance_types : {
      for n in range(local.runner_count[t]) : "${t}-${n}" => { type = t, index = n }
    }
  ]...)

  # The first zone (in a stable order) that offers the type; null when none does, which
  # the instance's precondition reports.
  zones_by_type = {
    for t in var.instance_types : t => [
      for az in sort(data.aws_availability_zones.available.names) : az
      if contains(data.aws_ec2_instance_type_offerings.runner[t].locations, az)
    ]
  }
}
