locals {
  # What an operator sees on every resource of the probe, and what the deploy role's policy
  # conditions on: it may terminate an instance only if it carries this purpose (never a NAT). The
  # probe carries no `nat-asg-hook:group` tag: the hook must never take it for a NAT.
  tags = merge(var.tags, {
    Name                   = var.name
    "nat-asg-hook:purpose" = "egress-probe"
  })

  # Pinned (an AMI ID), or following AWS's public parameter for the latest Amazon Linux 2023 arm64
  # AMI only when asked to, as the nat-instance module does.
  follow_latest_ami = var.ami_id == "ssm:latest"
  ami_id            = local.follow_latest_ami ? one(data.aws_ssm_parameter.al2023_arm64[*].value) : var.ami_id
}

data "aws_ssm_parameter" "al2023_arm64" {
  count = local.follow_latest_ami ? 1 : 0

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

# The root device name differs between AMIs: the launch template must name the AMI's own root device
# to encrypt it (another name would add a second volume and leave the root as the AMI has it).
data "aws_ami" "this" {
  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

################################################################################
# Security group: nothing in; out only HTTPS and HTTP. The SSM agent reaches the SSM endpoints over
# 443, the check-IP request is 443 or 80, all of it through the zone's NAT. DNS (the VPC resolver)
# and the instance metadata service are not subject to security groups.
################################################################################

resource "aws_security_group" "this" {
  name        = var.name
  description = "Egress probe ${var.name}: no ingress; HTTPS and HTTP out (SSM, the check-IP URL)"
  vpc_id      = var.vpc_id

  # No ingress rule, declared: Terraform removes any that someone adds by hand.
  ingress = []

  egress {
    description = "HTTPS: the SSM endpoints and an https check-IP URL, through the zone NAT"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "HTTP: an http check-IP URL, through the zone NAT"
    protocol    = "tcp"
    from_port   = 80
    to_port     = 80
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = local.tags
}

################################################################################
# Launch template: the instance's whole shape (the deploy role launches instances only from a launch
# template). The zone's private subnet, no public IP, IMDSv2 only, encrypted root volume, no key pair
# (no SSH: SSM is the only way in), no user data (Amazon Linux 2023 ships the SSM agent and curl).
################################################################################

resource "aws_launch_template" "this" {
  name          = var.name
  description   = "Egress probe ${var.name}: scripts/verify_nat.sh asks it over SSM which address its zone leaves with"
  image_id      = local.ami_id
  instance_type = var.instance_type
  ebs_optimized = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  network_interfaces {
    device_index                = 0
    subnet_id                   = var.subnet_id
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = [aws_security_group.this.id]
  }

  block_device_mappings {
    device_name = data.aws_ami.this.root_device_name

    ebs {
      volume_type           = "gp3"
      volume_size           = var.root_volume_size
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  dynamic "tag_specifications" {
    for_each = toset(["instance", "network-interface", "volume"])

    content {
      resource_type = tag_specifications.value
      tags          = local.tags
    }
  }

  tags = local.tags
}

################################################################################
# The probe: one instance from the template's latest version. A new version (another image, another
# type) replaces it (the provider replaces an instance whose template version changes): the probe
# holds nothing worth keeping.
################################################################################

resource "aws_instance" "this" {
  # checkov:skip=CKV_AWS_79: IMDSv2 is required (http_tokens required, hop limit 1) by the launch template this instance launches from; checkov does not follow launch_template
  # checkov:skip=CKV_AWS_135: EBS optimized is set by the launch template this instance launches from; checkov does not follow launch_template
  # checkov:skip=CKV_AWS_8: the root volume is encrypted by the launch template's block device mapping; checkov does not follow launch_template
  # checkov:skip=CKV2_AWS_41: the instance profile (AmazonSSMManagedInstanceCore only) is the launch template's; checkov does not follow launch_template
  # checkov:skip=CKV_AWS_126: a probe that only answers SSM commands; detailed monitoring would add about half its cost for metrics no alarm watches
  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  tags = local.tags

  # The SSM policy is attached before the agent first starts; the zone's NAT, when given, is in
  # service (create_after).
  depends_on = [var.create_after, aws_iam_role_policy_attachment.ssm_core]
}
