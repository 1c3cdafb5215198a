################################################################################
# The probe's permissions: exactly the AWS managed policy AmazonSSMManagedInstanceCore, what the SSM
# agent needs to register the instance and take commands (ssm:UpdateInstanceInformation, the
# ssmmessages and ec2messages channels, its documents and associations). AWS maintains it alongside
# the agent, so a new agent release that needs a new call keeps working; a copy written here would
# fall behind it, and could not be narrower (those calls take no resource). No other policy: the
# probe reads nothing and changes nothing in the account, it only runs the commands an operator
# allowed to call ssm:SendCommand sends it.
################################################################################

data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Egress probe ${var.name}: SSM-managed, nothing else"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.permissions_boundary
  tags                 = local.tags
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "this" {
  name = var.name
  role = aws_iam_role.this.name
  tags = local.tags
}
