# The local environment keeps its state on disk: copied next to versions.tf, this override file
# replaces the S3 backend (Terraform merges *_override.tf files last).
terraform {
  backend "local" {}
}
