provider "aws" {
  region = var.region

  # The account is whatever the operator's profile reaches (scripts/bootstrap.sh --profile); pin it
  # with allowed_account_id so that a wrong profile fails before it creates anything.
  allowed_account_ids = var.allowed_account_id == null ? null : [var.allowed_account_id]

  default_tags {
    tags = {
      Project     = "nat-asg-hook"
      Environment = var.environment
      ManagedBy   = "terraform/bootstrap"
    }
  }
}
