terraform {
  required_version = ">= 1.10" # the stack's S3 backend locks with a lock file (use_lockfile)

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0" # pinned here, in the root; moving it is a deliberate change (plan it)
    }
  }

  # The bootstrap creates the state bucket, so its own state cannot live there: it stays on the
  # operator's disk, one file per environment (scripts/bootstrap.sh passes -backend-config=path=...).
  backend "local" {}
}
