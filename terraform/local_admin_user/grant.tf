# The namespace files here are copies of ../local_namespace; this file adds the user grant.

variable "admin_email" {
  type        = string
  description = "The user who gets the grant."
  default     = "admin@example.com"

  validation {
    condition     = can(regex("^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\\.[A-Za-z]{2,24}$", var.admin_email))
    error_message = "The admin_email must be a plain email address."
  }
}

variable "account_owner" {
  type        = bool
  description = "Make the user an account owner instead of a namespace admin (policy blocks it)."
  default     = false
}

resource "null_resource" "admin_grant" {
  # A local server has no users, so the grant is only recorded; the policies judge its shape.
  triggers = merge(
    {
      email     = var.admin_email
      namespace = local.namespace_name
    },
    var.account_owner
    ? tomap({ kind = "account_access", role = "owner" })
    : tomap({ kind = "namespace_access", permission = "admin" }),
  )

  provisioner "local-exec" {
    command = "echo \"recorded $GRANT for $EMAIL on namespace $NAMESPACE\""
    environment = {
      GRANT     = var.account_owner ? "account owner" : "namespace admin"
      EMAIL     = var.admin_email
      NAMESPACE = local.namespace_name
    }
  }

  depends_on = [null_resource.namespace]
}

output "admin_email" {
  value = var.admin_email
}

output "admin_role" {
  value = var.account_owner ? "account_owner" : "namespace_admin"
}
