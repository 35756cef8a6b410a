# Same names and checks as ../local_namespace, so one request shape drives either target.

variable "endpoint" {
  type        = string
  description = "Temporal Cloud operations API."
  default     = "saas-api.tmprl.cloud:443"

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", var.endpoint))
    error_message = "The endpoint must be host:port (^[A-Za-z0-9.-]+:[0-9]{1,5}$)."
  }
}

variable "allow_insecure" {
  type    = bool
  default = false
}

variable "prefix" {
  type        = string
  description = "First part of the namespace name."
  default     = "temporal-sa"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.prefix))
    error_message = "The prefix must match ^[a-z0-9][a-z0-9-]{0,30}$."
  }
}

variable "name_suffix" {
  type        = string
  description = "Second part of the namespace name."
  default     = "terraform-demo"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.name_suffix))
    error_message = "The name_suffix must match ^[a-z0-9][a-z0-9-]{0,30}$."
  }
}

variable "region" {
  type        = string
  description = "Temporal Cloud region, prefixed with the cloud provider (aws-us-west-2)."
  default     = "aws-us-west-2"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.region))
    error_message = "The region must match ^[a-z0-9][a-z0-9-]{0,30}$."
  }
}

variable "retention_days" {
  type        = number
  description = "Retention of closed workflows. Policy, not this check, decides what is acceptable."
  default     = 7

  validation {
    # Modulo, not floor(): terraform 1.0 validates a -var value while it is still a string.
    condition     = var.retention_days % 1 == 0 && var.retention_days >= 0 && var.retention_days <= 3650
    error_message = "The retention_days must be an integer between 0 and 3650."
  }
}

variable "accepted_client_ca" {
  type        = string
  description = "Base64 PEM of the CA for mTLS clients; empty selects API key authentication."
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9+/=]*$", var.accepted_client_ca))
    error_message = "The accepted_client_ca must be base64."
  }
}
