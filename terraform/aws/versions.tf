terraform {
  required_version = ">= 1.9.0" # validations that refer to other variables

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
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

# The meta stack's region, for the peering's accepter side and the route back from the
# bastion's subnet.
provider "aws" {
  alias  = "meta"
  region = var.meta_region

  default_tags {
    tags = local.tags
  }
}
