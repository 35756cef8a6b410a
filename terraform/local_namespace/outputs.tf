output "namespace_name" {
  value = local.namespace_name
}

output "address" {
  value = var.address
}

output "retention_days" {
  value = var.retention_days
}

output "region" {
  value = var.region
}

output "connection_secret" {
  description = "Derived from api_key so that redaction of sensitive outputs can be tested."
  value       = "temporal://${local.namespace_name}@${var.address}?api_key=${var.api_key}"
  sensitive   = true
}
