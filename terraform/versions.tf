terraform {
  required_version = ">= 1.10" # S3 backend use_lockfile

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0" # pinned here, in the root; moving it is a deliberate change (plan it)
    }
  }

  # Per environment: terraform init -backend-config=environments/<env>/backend-<env>.hcl
  # The local environment replaces it with a local backend (environments/local/backend_override.tf).
  backend "s3" {}
}
