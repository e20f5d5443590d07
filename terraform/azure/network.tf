# The runner VNet: a runner subnet without public addresses behind a NAT gateway (through
# which runners reach the orchestrator, Docker Hub and rubygems.org), and a jump subnet
# whose host is the only way in over SSH.

resource "azurerm_virtual_network" "run" {
  name                = local.name
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  address_space       = [var.vnet_cidr]
  tags                = local.tags
}

resource "azurerm_subnet" "runners" {
  name                 = "runners"
  resource_group_name  = azurerm_resource_group.run.name
  virtual_network_name = azurerm_virtual_network.run.name
  address_prefixes     = [cidrsubnet(var.vnet_cidr, 8, 10)]
  # Outbound only through the NAT gateway, never Azure's implicit default access.
  default_outbound_access_enabled = false
}

resource "azurerm_subnet" "jump" {
  name                 = "jump"
  resource_group_name  = azurerm_resource_group.run.name
  virtual_network_name = azurerm_virtual_network.run.name
  address_prefixes     = [cidrsubnet(var.vnet_cidr, 8, 0)]
}

resource "azurerm_public_ip" "nat" {
  name                = "${local.name}-nat"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = local.tags
}

resource "azurerm_nat_gateway" "run" {
  name                = local.name
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  sku_name            = "Standard"
  tags                = local.tags
}

resource "azurerm_nat_gateway_public_ip_association" "run" {
  nat_gateway_id       = azurerm_nat_gateway.run.id
  public_ip_address_id = azurerm_public_ip.nat.id
}

resource "azurerm_subnet_nat_gateway_association" "runners" {
  subnet_id      = azurerm_subnet.runners.id
  nat_gateway_id = azurerm_nat_gateway.run.id
}

resource "azurerm_network_security_group" "runners" {
  name                = "${local.name}-runners"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  tags                = local.tags

  security_rule {
    name                       = "ssh-from-jump"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = azurerm_subnet.jump.address_prefixes[0]
    destination_address_prefix = "*"
  }

  # Azure's default rules let the whole VNet in; runners serve nothing.
  security_rule {
    name                       = "deny-other-inbound"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "runners" {
  subnet_id                 = azurerm_subnet.runners.id
  network_security_group_id = azurerm_network_security_group.runners.id
}

resource "azurerm_network_security_group" "jump" {
  name                = "${local.name}-jump"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  tags                = local.tags

  security_rule {
    name                       = "ssh-from-allowed"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = var.allowed_ssh_cidr
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "jump" {
  subnet_id                 = azurerm_subnet.jump.id
  network_security_group_id = azurerm_network_security_group.jump.id
}
