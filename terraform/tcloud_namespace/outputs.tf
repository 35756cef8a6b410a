output "namespace_id" {
  value = temporalcloud_namespace.namespace.id
}

output "namespace_name" {
  value = temporalcloud_namespace.namespace.name
}

output "namespace_endpoints" {
  value = temporalcloud_namespace.namespace.endpoints
}
