terraform {
  required_version = ">= 1.0.0"

  required_providers {
    temporalcloud = {
      source  = "temporalio/temporalcloud"
      version = ">= 0.0.6"
    }
  }
}

# The API key comes from TEMPORAL_CLOUD_API_KEY in the environment, never from a variable.
provider "temporalcloud" {
  endpoint       = var.endpoint
  allow_insecure = var.allow_insecure
}
