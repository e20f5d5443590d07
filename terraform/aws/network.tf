# The runner VPC: a private subnet in every zone for the runners, one public subnet with
# the NAT gateway through which they reach the orchestrator, S3 and Docker Hub, and a
# peering with the meta VPC so that the bastion reaches them over SSH.

resource "aws_vpc" "runners" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }
}

resource "aws_internet_gateway" "runners" {
  vpc_id = aws_vpc.runners.id
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.runners.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 0)
  availability_zone = sort(data.aws_availability_zones.available.names)[0]

  tags = { Name = "${local.name}-public" }
}

resource "aws_subnet" "private" {
  for_each = { for i, az in sort(data.aws_availability_zones.available.names) : az => i }

  vpc_id            = aws_vpc.runners.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 10 + each.value)
  availability_zone = each.key

  tags = { Name = "${local.name}-private-${each.key}" }
}

resource "aws_eip" "nat" {
  domain = "vpc"

  tags = { Name = "${local.name}-nat" }
}

resource "aws_nat_gateway" "runners" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id

  depends_on = [aws_internet_gateway.runners]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.runners.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.runners.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.runners.id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.runners.id
  }
}

resource "aws_route_table_association" "private" {
  for_each = aws_subnet.private

  subnet_id      = each.value.id
  route_table_id = aws_route_table.private.id
}

resource "aws_vpc_peering_connection" "meta" {
  vpc_id      = aws_vpc.runners.id
  peer_vpc_id = var.meta_vpc_id
  peer_region = var.meta_region
  auto_accept = false

  tags = { Name = "${local.name}-meta" }
}

resource "aws_vpc_peering_connection_accepter" "meta" {
  provider = aws.meta

  vpc_peering_connection_id = aws_vpc_peering_connection.meta.id
  auto_accept               = true
}

resource "aws_route" "to_meta" {
  route_table_id            = aws_route_table.private.id
  destination_cidr_block    = var.meta_vpc_cidr
  vpc_peering_connection_id = aws_vpc_peering_connection.meta.id

  depends_on = [aws_vpc_peering_connection_accepter.meta]
}

# Destroyed with this stack, so the meta stack's route table is left as it was.
resource "aws_route" "from_meta" {
  provider = aws.meta

  route_table_id            = var.meta_route_table_id
  destination_cidr_block    = var.vpc_cidr
  vpc_peering_connection_id = aws_vpc_peering_connection.meta.id

  depends_on = [aws_vpc_peering_connection_accepter.meta]
}
