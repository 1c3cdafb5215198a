variable "name" {
  description = "Name of the NAT Auto Scaling group the EIP serves (its Name and `nat-asg-hook:group` tags)"
  type        = string
}

variable "protect" {
  description = "Protect the EIP from `terraform destroy` (lifecycle.prevent_destroy). Choose it at creation: switching later needs a `terraform state mv` between `aws_eip.protected[0]` and `aws_eip.unprotected[0]`"
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the EIP"
  type        = map(string)
  default     = {}
}
