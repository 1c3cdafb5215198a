# AWS itself. The local environment points this provider at an AWS API emulator with its own files
# (environments/local: providers_override.tf, emulator.tf), copied next to this one only there.
provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}
