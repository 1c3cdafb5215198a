terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0" # pinned exactly, like the stack's root: an example is a root too
    }
  }
}
