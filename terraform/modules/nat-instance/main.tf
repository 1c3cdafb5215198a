locals {
  # The hook's IAM policy allows AssociateAddress and ModifyNetworkInterfaceAttribute only on instances
  # and network interfaces carrying this tag with their group's name (nat-asg-hook module, iam.tf).
  hook_tags = merge(var.tags, {
    Name                 = var.name
    "nat-asg-hook:group" = var.name
  })

  ami_id = coalesce(var.ami_id, try(data.aws_ssm_parameter.al2023_arm64[0].value, null))
}

data "aws_ssm_parameter" "al2023_arm64" {
  count = var.ami_id == null ? 1 : 0

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
# Security group: the VPC in, anything out (a NAT forwards its subnets' egress, whatever it is)
################################################################################

resource "aws_security_group" "this" {
  # checkov:skip=CKV_AWS_382: a NAT instance forwards all egress of its private subnets; its outbound rule cannot be narrower than what those subnets may reach
  name        = var.name
  description = "NAT instance ${var.name}: traffic from the VPC in, any egress out"
  vpc_id      = var.vpc_id

  ingress {
    description = "Everything the VPC sends through the NAT"
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description = "Forwarded egress to the internet"
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = merge(var.tags, { Name = var.name })
}

################################################################################
# Launch template: IMDSv2 only (hop limit 1: containers cannot reach it), encrypted gp3 root volume,
# no key pair (no SSH), no ephemeral public IP (egress leaves through the static EIP only).
################################################################################

resource "aws_launch_template" "this" {
  name                   = var.name
  description            = "NAT instance for ${var.name}, set up by nat-asg-hook"
  image_id               = local.ami_id
  instance_type          = var.instance_type
  update_default_version = true
  ebs_optimized          = true

  user_data = base64encode(templatefile("${path.module}/user-data.sh.tftpl", {
    vpc_cidr_block = var.vpc_cidr_block
  }))

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = true
  }

  network_interfaces {
    device_index                = 0
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
      tags          = local.hook_tags
    }
  }

  tags = merge(var.tags, { Name = var.name })
}

################################################################################
# Single-instance ASG in the AZ's public subnet
################################################################################

resource "aws_autoscaling_group" "this" {
  name                = var.name
  min_size            = 1
  max_size            = 1
  desired_capacity    = 1
  vpc_zone_identifier = [var.subnet_id]
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # Part of the group's creation, so that even the first instance waits for the hook: it stays in
  # Pending:Wait until the Lambda completes the action, and is replaced if it never does (ABANDON).
  initial_lifecycle_hook {
    name                 = "nat-asg-hook-launch"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_LAUNCHING"
    default_result       = var.lifecycle_hook_default_result
    heartbeat_timeout    = var.lifecycle_hook_heartbeat_timeout
  }

  # A new launch template version replaces the instance launch-before-terminate: the group briefly
  # runs two instances (max healthy 200%), the hook moves EIP and routes to the new one, then the old
  # one goes.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
    }
  }

  dynamic "tag" {
    for_each = merge(var.tags, { Name = var.name })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false # the launch template tags the instance, its ENI and its volume
    }
  }

  # Created only once the hook's rule, target, permission and policy exist (create_after carries their
  # IDs). The AZ's static EIP is the static-eip submodule, not this module: the hook needs the EIP and
  # this ASG needs the hook, and Terraform orders a for_each module call as a whole.
  depends_on = [var.create_after]
}
