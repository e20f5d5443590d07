terraform {
  required_version = ">= 1.9.0" # validations that refer to other variables

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    local = {
      source  = "hashicorp/local"
      version = "~> 2.5"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }
}

provider "aws" {
  region = var.region

  # Every resource the provider can tag carries the project and the run, so that the nuke
  # script can find whatever a failed destroy left behind.
  default_tags {
    tags = local.tags
  }
}
