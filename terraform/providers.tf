locals {
  # The local environment points every API the stack uses at an emulator (moto server).
  emulated = var.aws_endpoint_url != null
}

provider "aws" {
  region = var.region

  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated
  s3_use_path_style           = local.emulated

  dynamic "endpoints" {
    for_each = local.emulated ? [var.aws_endpoint_url] : []

    content {
      autoscaling = endpoints.value
      cloudwatch  = endpoints.value
      ec2         = endpoints.value
      events      = endpoints.value
      iam         = endpoints.value
      kms         = endpoints.value
      lambda      = endpoints.value
      logs        = endpoints.value
      sqs         = endpoints.value
      ssm         = endpoints.value
      sts         = endpoints.value
    }
  }

  default_tags {
    tags = var.tags
  }
}
