# The meta VPC has one public subnet: the orchestrator and the bastion have public
# addresses; nothing else runs here. The AWS runner VPC is peered with it so that the
# bastion reaches the runners.

resource "aws_vpc" "meta" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }
}

resource "aws_internet_gateway" "meta" {
  vpc_id = aws_vpc.meta.id
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.meta.id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 0)
  availability_zone       = try(local.host_zones[0], null)
  map_public_ip_on_launch = false

  lifecycle {
    precondition {
      condition     = length(local.host_zones) > 0
      error_message = "No zone of ${var.region} offers both ${var.orchestrator_instance_type} and ${var.bastion_instance_type}."
    }
  }

  tags = { Name = "${local.name}-public" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.meta.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.meta.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
