locals {
  # Set as `tags` on every resource that takes them; the nuke script finds leftovers by
  # these (and by the resource group).
  tags = {
    Project = "ruby-cross-cloud-bench"
    RunId   = var.run_id
  }
  name = "rcb-${var.run_id}"

  # Canonical's Ubuntu 24.04 Gen2 images, by architecture.
  image_sku = { x86_64 = "server", arm64 = "server-arm64" }
}

# How many runner VMs each size gets. crates/infra-checks evaluates these expressions for
# a sample config and compares them with its own arithmetic: keep them plain (for,
# conditionals, arithmetic, ceil/floor/max).
locals {
  vcpus            = { for t, s in var.vm_sizes : t => s.vcpus }
  threads_per_core = { for t, s in var.vm_sizes : t => s.threads_per_core }

  # One slot per vCPU, or per physical core with SLOT_MODE=core.
  slots = {
    for t in var.instance_types : t => var.slot_mode == "core" ? max(1, floor(local.vcpus[t] / local.threads_per_core[t])) : local.vcpus[t]
  }
  runner_count = {
    for t in var.instance_types : t => ceil(var.runs_per_instance_type / local.slots[t])
  }
}

locals {
  arch = { for t in var.instance_types : t => var.vm_sizes[t].arch }

  # One entry per runner VM, keyed "<size>-<n>" so that a changed count adds or removes
  # VMs without renumbering the others.
  runners = merge([
    for t in var.instance_types : {
      for n in range(local.runner_count[t]) : "${t}-${n}" => { type = t, index = n }
    }
  ]...)

  # Azure names: lowercase, no underscores, at most 64 characters.
  vm_name = { for key, r in local.runners : key => lower(replace("${local.name}-${r.type}-${r.index}", "_", "-")) }
}

resource "azurerm_resource_group" "run" {
  name     = local.name
  location = var.region
  tags     = local.tags
}
