# Every value that reaches a shell command is validated here and again by the Python caller.

variable "prefix" {
  type        = string
  description = "First part of the namespace name."
  default     = "demo"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.prefix))
    error_message = "The prefix must match ^[a-z0-9][a-z0-9-]{0,30}$."
  }
}

variable "name_suffix" {
  type        = string
  description = "Second part of the namespace name."
  default     = "namespace"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.name_suffix))
    error_message = "The name_suffix must match ^[a-z0-9][a-z0-9-]{0,30}$."
  }
}

variable "workspace" {
  type        = string
  description = "The workspace this state belongs to; the namespace is named after it when set."
  default     = ""

  validation {
    condition     = var.workspace == "" || can(regex("^[a-z0-9][a-z0-9-]{0,62}$", var.workspace))
    error_message = "The workspace must match ^[a-z0-9][a-z0-9-]{0,62}$."
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

variable "region" {
  type        = string
  description = "A label only: a local server has no regions, so it goes into the description."
  default     = "local"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.region))
    error_message = "The region must match ^[a-z0-9][a-z0-9-]{0,30}$."
  }
}

variable "address" {
  type        = string
  description = "host:port of the Temporal frontend."
  default     = "127.0.0.1:7233"

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", var.address))
    error_message = "The address must be host:port (^[A-Za-z0-9.-]+:[0-9]{1,5}$)."
  }
}

variable "protected" {
  type        = bool
  description = "Marks the namespace so that policy asks for approval before it is destroyed."
  default     = false
}

variable "api_key" {
  type        = string
  description = "Never used by a command: it exists to prove that sensitive values get redacted."
  default     = ""
  sensitive   = true
}
