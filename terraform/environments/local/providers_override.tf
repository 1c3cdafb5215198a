# The local environment only: every API the stack uses answered by an AWS API emulator (moto server),
# which has no real credentials, instance metadata or region list. Terraform merges this into the
# stack's provider "aws" block (files named *_override.tf are merged last); default_tags stay.
provider "aws" {
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    autoscaling = var.aws_endpoint_url
    cloudwatch  = var.aws_endpoint_url
    ec2         = var.aws_endpoint_url
    events      = var.aws_endpoint_url
    iam         = var.aws_endpoint_url
    kms         = var.aws_endpoint_url
    lambda      = var.aws_endpoint_url
    logs        = var.aws_endpoint_url
    sqs         = var.aws_endpoint_url
    ssm         = var.aws_endpoint_url
    sts         = var.aws_endpoint_url
  }
}

# The same emulator for the stack's provider without default tags (the VPC's default security group).
provider "aws" {
  alias = "untagged"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    autoscaling = var.aws_endpoint_url
    cloudwatch  = var.aws_endpoint_url
    ec2         = var.aws_endpoint_url
    events      = var.aws_endpoint_url
    iam         = var.aws_endpoint_url
    kms         = var.aws_endpoint_url
    lambda      = var.aws_endpoint_url
    logs        = var.aws_endpoint_url
    sqs         = var.aws_endpoint_url
    ssm         = var.aws_endpoint_url
    sts         = var.aws_endpoint_url
  }
}
