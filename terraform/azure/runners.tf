resource "azurerm_network_interface" "runner" {
  for_each = local.runners

  name                = "${local.vm_name[each.key]}-nic"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  tags                = local.tags

  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.runners.id
    private_ip_address_allocation = "Dynamic"
  }
}

# RUNNER_API_KEY is added at boot from the run's Key Vault (secrets.tf).
locals {
  runner_env = {
    for key, r in local.runners : key => {
      ORCHESTRATOR_URL        = var.orchestrator_url
      PROVIDER                = "azure"
      INSTANCE_TYPE           = r.type
      RUNNER_ID               = local.vm_name[key]
      SLOTS                   = tostring(local.slots[r.type])
      SLOT_MODE               = var.slot_mode
      BENCH_IMAGE_REPO        = var.bench_image_repo
      BENCH_PACKAGES          = var.bench_packages
      RUBY_BENCH_GIT_URL      = var.ruby_bench_git_url
      RUBY_BENCH_COMMIT       = var.ruby_bench_commit
      HEARTBEAT_INTERVAL_SECS = tostring(var.heartbeat_interval_secs)
      CLAIM_RETRY_SECS        = tostring(var.claim_retry_secs)
      # The runner's ruby-bench checkout: bind-mounted into benchmark containers, so the
      # host script mounts it at the same path (it reads the path from this file).
      RUNNER_CACHE_DIR = "/var/cache/rcb-runner"
    }
  }
}

resource "azurerm_linux_virtual_machine" "runner" {
  for_each = local.runners

  name                            = local.vm_name[each.key]
  location                        = azurerm_resource_group.run.location
  resource_group_name             = azurerm_resource_group.run.name
  size                            = each.value.type
  admin_username                  = "ubuntu"
  disable_password_authentication = true
  network_interface_ids           = [azurerm_network_interface.runner[each.key].id]
  # Every v6 size takes NVMe disks, and some (Dalsv6, Falsv6) take nothing else.
  disk_controller_type = var.vm_sizes[each.value.type].nvme ? "NVMe" : "SCSI"
  tags                 = local.tags

  custom_data = base64encode(templatefile("${path.module}/cloud-init/runner.yaml.tftpl", {
    runner_env       = join("", [for k in sort(keys(local.runner_env[each.key])) : "${k}=${local.runner_env[each.key][k]}\n"])
    runner_image_url = lookup(var.runner_image_urls, local.arch[each.value.type], "")
    ttl_minutes      = var.ttl_minutes
    project          = local.tags.Project
    host_script      = file("${path.module}/../shared/runner-host.sh")
    poweroff_script  = file("${path.module}/cloud-init/rcb-poweroff.sh")
    secrets          = local.runner_secrets
    secrets_script   = file("${path.module}/../shared/rcb-secrets.sh")
  }))

  admin_ssh_key {
    username   = "ubuntu"
    public_key = var.ssh_public_key
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
    disk_size_gb         = var.os_disk_gb
  }

  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = local.image_sku[local.arch[each.value.type]]
    version   = "latest"
  }

  # The shared identity reads the runner key; the VM's own (with self_deallocate) may
  # deallocate this VM, and IMDS hands out its token when no client_id is asked for.
  identity {
    type         = var.self_deallocate ? "SystemAssigned, UserAssigned" : "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.runner.id]
  }

  lifecycle {
    # custom_data forces a new VM when it changes, and presigned URLs change with every
    # apply: a re-apply must not replace runners in the middle of a run.
    ignore_changes = [custom_data]

    precondition {
      condition     = lookup(var.runner_image_urls, local.arch[each.value.type], "") != ""
      error_message = "runner_image_urls has no ${local.arch[each.value.type]} image, which ${each.value.type} needs."
    }
  }

  depends_on = [
    azurerm_subnet_nat_gateway_association.runners,
    azurerm_subnet_network_security_group_association.runners,
    azurerm_key_vault_secret.runner_env,
  ]
}

# A VM powered off from inside stays allocated and billed: each runner may deallocate
# itself (rcb-poweroff), and nothing else. Built-in roles are far wider (Virtual Machine
# Contributor includes run-command on the host), so the run has a role of its own with the
# one action, assigned to each VM's identity on that VM only. Benchmark containers cannot
# reach the identity's token: the host script keeps them from the metadata service.
resource "azurerm_role_definition" "self_deallocate" {
  count = var.self_deallocate ? 1 : 0

  name        = "${local.name}-self-deallocate"
  scope       = azurerm_resource_group.run.id
  description = "Deallocate the VM it is assigned on, nothing else (Ruby Cross Cloud Benchmark run ${var.run_id})"

  permissions {
    actions = ["Microsoft.Compute/virtualMachines/deallocate/action"]
  }

  assignable_scopes = [azurerm_resource_group.run.id]
}

resource "azurerm_role_assignment" "runner_self_deallocate" {
  for_each = var.self_deallocate ? local.runners : {}

  scope              = azurerm_linux_virtual_machine.runner[each.key].id
  role_definition_id = azurerm_role_definition.self_deallocate[0].role_definition_resource_id
  principal_id       = azurerm_linux_virtual_machine.runner[each.key].identity[0].principal_id
}
