output "account_id" {
  description = "Account the bootstrap ran in"
  value       = local.account_id
}

output "state_bucket" {
  description = "Name of the state bucket"
  value       = aws_s3_bucket.state.bucket
}

output "state_kms_key_arn" {
  description = "ARN of the key that encrypts the state"
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "The environment's backend file (terraform/environments/<env>/backend-<env>.hcl) for this bucket; kms_key_id (the key's alias) makes the state objects SSE-KMS with the state key (without it, encrypt = true asks for SSE-S3, which the bucket refuses)"
  value       = <<-EOT
    bucket       = "${aws_s3_bucket.state.bucket}"
    key          = "${var.state_key}"
    region       = "${var.region}"
    encrypt      = true
    kms_key_id   = "${aws_kms_alias.state.name}"
    use_lockfile = true
  EOT
}

output "deploy_role_arn" {
  description = "ARN of the deploy role: the AWS_ROLE_ARN variable of the demo-<env> and teardown-<env> GitHub environments"
  value       = try(aws_iam_role.deploy[0].arn, null)
}

output "plan_role_arn" {
  description = "ARN of the read-only plan role: the repository's AWS_PLAN_ROLE_ARN variable (test account)"
  value       = try(aws_iam_role.plan[0].arn, null)
}
