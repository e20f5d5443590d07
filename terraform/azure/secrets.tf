# The runner key reaches the runner VMs through a Key Vault of the run, read at boot with a
# user-assigned identity that the VMs share: custom data, which anyone who may read the
# VM's model reads, has only the vault's and the secret's names. The identity exists, and
# may read the vault, before any VM boots (a VM's own identity would exist only with it).
# The key also stays in this stack's state and variable file, which the master script
# deletes with the run. Deleting the resource group soft-deletes the vault: Terraform
# purges it on destroy (versions.tf), the nuke script purges what a group deletion left.

data "azurerm_client_config" "current" {}

resource "azurerm_user_assigned_identity" "runner" {
  name                = "${local.name}-runner"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  tags                = local.tags
}

resource "azurerm_key_vault" "run" {
  # Vault names are global across Azure, 3 to 24 characters: the run's id and a hash of the
  # subscription with it.
  name                = "rcb-${substr(var.run_id, 0, 14)}-${substr(sha1("${data.azurerm_client_config.current.subscription_id}/${var.run_id}"), 0, 5)}"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  tenant_id           = data.azurerm_client_config.current.tenant_id
  sku_name            = "standard"
  # The shortest Azure allows, and purgeable: nothing of the run outlives it for long.
  soft_delete_retention_days = 7
  purge_protection_enabled   = false
  tags                       = local.tags

  # Whoever applies the stack writes the secret, and deletes and purges it on destroy.
  access_policy {
    tenant_id          = data.azurerm_client_config.current.tenant_id
    object_id          = data.azurerm_client_config.current.object_id
    secret_permissions = ["Get", "List", "Set", "Delete", "Purge", "Recover"]
  }

  # The runners read it, and nothing else: no keys, no certificates, no listing.
  access_policy {
    tenant_id          = data.azurerm_client_config.current.tenant_id
    object_id          = azurerm_user_assigned_identity.runner.principal_id
    secret_permissions = ["Get"]
  }
}

# The runner env file's secret line (terraform/shared/rcb-secrets.sh appends it).
resource "azurerm_key_vault_secret" "runner_env" {
  name         = "runner-env"
  value        = "RUNNER_API_KEY=${var.runner_api_key}\n"
  content_type = "text/plain"
  key_vault_id = azurerm_key_vault.run.id
  tags         = local.tags
}

locals {
  # /etc/rcb/secrets of a runner VM.
  runner_secrets = "runner.env keyvault ${azurerm_key_vault.run.name} ${azurerm_key_vault_secret.runner_env.name} ${azurerm_user_assigned_identity.runner.client_id}\n"
}
