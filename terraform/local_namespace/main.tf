locals {
  # One workspace, one namespace: two workspaces can never manage the same one.
  namespace_name = var.workspace != "" ? var.workspace : "${var.prefix}-${var.name_suffix}"
}

resource "null_resource" "namespace" {
  # Policies read these from the plan; values are strings there whatever their type here.
  triggers = {
    kind           = "temporal_namespace"
    name           = local.namespace_name
    retention_days = tostring(var.retention_days)
    region         = var.region
    address        = var.address
    protected      = tostring(var.protected)
    api_key        = var.api_key
  }

  # Values travel in the environment, never inside the command text, so no input can become shell.
  # An existing namespace is brought to the requested settings instead of failing the apply.
  provisioner "local-exec" {
    command = <<-EOT
      set -u
      if out=$(temporal operator namespace create --address "$TEMPORAL_ADDRESS" \
          --namespace "$NAMESPACE" --retention "$RETENTION" --description "$DESCRIPTION" 2>&1); then
        echo "$out"
        exit 0
      fi
      case "$out" in
        *"already exists"*)
          echo "namespace $NAMESPACE already exists; updating it"
          exec temporal operator namespace update --address "$TEMPORAL_ADDRESS" \
            --namespace "$NAMESPACE" --retention "$RETENTION" --description "$DESCRIPTION"
          ;;
      esac
      echo "$out" >&2
      exit 1
    EOT
    environment = {
      TEMPORAL_ADDRESS = var.address
      NAMESPACE        = local.namespace_name
      RETENTION        = "${var.retention_days * 24}h"
      DESCRIPTION      = "region=${var.region}"
    }
  }

  # Destroy-time provisioners may only use self; a namespace already gone counts as destroyed.
  provisioner "local-exec" {
    when    = destroy
    command = <<-EOT
      set -u
      if out=$(temporal operator namespace delete --yes --address "$TEMPORAL_ADDRESS" \
          --namespace "$NAMESPACE" 2>&1); then
        echo "$out"
        exit 0
      fi
      case "$out" in
        *"not found"*)
          echo "namespace $NAMESPACE is already gone"
          exit 0
          ;;
      esac
      echo "$out" >&2
      exit 1
    EOT
    environment = {
      TEMPORAL_ADDRESS = self.triggers.address
      NAMESPACE        = self.triggers.name
    }
  }
}
