resource "temporalcloud_namespace" "namespace" {
  name           = "${var.prefix}-${var.name_suffix}"
  regions        = [var.region]
  retention_days = var.retention_days

  # Exactly one authentication method: mTLS when a CA is given, API keys otherwise.
  accepted_client_ca = var.accepted_client_ca == "" ? null : var.accepted_client_ca
  api_key_auth       = var.accepted_client_ca == "" ? true : null
}
