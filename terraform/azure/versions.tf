terraform {
  required_version = ">= 1.9.0" # validations that refer to other variables

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }
}

provider "azurerm" {
  # Null reads ARM_SUBSCRIPTION_ID from the environment.
  subscription_id = var.subscription_id

  features {
    resource_group {
      # The nuke script destroys the group whatever a failed apply left in it.
      prevent_deletion_if_contains_resources = false
    }
    key_vault {
      # A destroyed vault (and its secret) is purged, not kept soft-deleted for days.
      purge_soft_delete_on_destroy          = true
      purge_soft_deleted_secrets_on_destroy = true
    }
  }
}
