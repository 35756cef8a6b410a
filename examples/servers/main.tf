# An example stack's configuration: a few "servers" (null resources), named after the workspace.
# Replace it with your own Terraform; the runner passes the workspace name as var.workspace.
terraform {
  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "2.1.2"
    }
  }
}

variable "workspace" {
  type = string
}

variable "size" {
  type = number
}

variable "tier" {
  type = string
}

variable "environment" {
  type = string
}

resource "null_resource" "servers" {
  count = var.size
  triggers = {
    name        = "${var.workspace}-${count.index}"
    tier        = var.tier
    environment = var.environment
  }
}

output "servers" {
  value = [for s in null_resource.servers : s.triggers.name]
}
