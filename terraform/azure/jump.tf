# The SSH jump host: the only way into the runner VNet, from allowed_ssh_cidr alone.

resource "azurerm_public_ip" "jump" {
  name                = "${local.name}-jump"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = local.tags
}

resource "azurerm_network_interface" "jump" {
  name                = "${local.name}-jump"
  location            = azurerm_resource_group.run.location
  resource_group_name = azurerm_resource_group.run.name
  tags                = local.tags

  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.jump.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.jump.id
  }
}

resource "azurerm_linux_virtual_machine" "jump" {
  name                            = "${local.name}-jump"
  location                        = azurerm_resource_group.run.location
  resource_group_name             = azurerm_resource_group.run.name
  size                            = var.jump_vm_size
  admin_username                  = "ubuntu"
  disable_password_authentication = true
  network_interface_ids           = [azurerm_network_interface.jump.id]
  tags                            = local.tags

  admin_ssh_key {
    username   = "ubuntu"
    public_key = var.ssh_public_key
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }

  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "server"
    version   = "latest"
  }
}
