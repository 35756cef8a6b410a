# The namespace files here are copies of ../tcloud_namespace; this file adds the user.

variable "admin_email" {
  type        = string
  description = "The user who gets the grant."

  validation {
    condition     = can(regex("^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\\.[A-Za-z]{2,24}$", var.admin_email))
    error_message = "The admin_email must be a plain email address."
  }
}

variable "account_owner" {
  type        = bool
  description = "Make the user an account owner instead of a developer (policy blocks it)."
  default     = false
}

resource "temporalcloud_user" "namespace_admin" {
  email          = var.admin_email
  account_access = var.account_owner ? "owner" : "developer"

  namespace_accesses = [
    {
      namespace_id = temporalcloud_namespace.namespace.id
      permission   = "admin"
    }
  ]
}

output "admin_user_id" {
  value = temporalcloud_user.namespace_admin.id
}

output "admin_user_state" {
  value = temporalcloud_user.namespace_admin.state
}
