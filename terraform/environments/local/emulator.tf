# The local environment only: copied next to the stack's files with providers_override.tf and
# backend_override.tf (tools/nat_lab/terraform.py does it for the tests; docs/local-development.md by
# hand). The stack itself knows no emulator.
variable "aws_endpoint_url" {
  description = "Endpoint of the AWS API emulator (moto server) that answers every API the stack uses"
  type        = string

  validation {
    condition     = can(regex("^https?://", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be an http(s) URL, such as http://127.0.0.1:5000."
  }
}
