terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.46" # a lower bound only: the calling stack pins
    }
  }
}
