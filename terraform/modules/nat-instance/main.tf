locals {
  # The hook's IAM policy allows AssociateAddress and ModifyNetworkInterfaceAttribute only on instances
  # and network interfaces carrying this tag with their group's name (nat-asg-hook module, iam.tf).
  hook_tags = merge(var.tags, {
    Name                 = var.name
    "nat-asg-hook:group" = var.name
  })

  # Pinned (an AMI ID), or following AWS's public parameter for the latest Amazon Linux 2023 arm64
  # AMI only when asked to: then every Amazon Linux release replaces the instances at the next apply.
  follow_latest_ami = var.ami_id == "ssm:latest"
  ami_id            = local.follow_latest_ami ? one(data.aws_ssm_parameter.al2023_arm64[*].value) : var.ami_id

  # The group's two lifecycle hooks, by purpose. Their names are a contract: the instance completes
  # the launch hook itself (user data), and the nat-asg-hook module's terminate rule matches the
  # terminate hook's name (its `terminate_hook_name`; a test holds the two equal).
  lifecycle_hooks = {
    launch = {
      name = "nat-asg-hook-launch"
      # Completed by the instance once it proved itself (CONTINUE), or ABANDON when its self-check
      # keeps failing. If nothing completes it, ABANDON: an instance that never proved itself
      # never takes traffic.
      lifecycle_transition = "autoscaling:EC2_INSTANCE_LAUNCHING"
      default_result       = "ABANDON"
      heartbeat_timeout    = var.launch_hook_heartbeat_timeout
    }
    terminate = {
      name = "nat-asg-hook-terminate"
      # Completed by the Lambda once it handed the zone over (CONTINUE). If the Lambda is late or
      # down, the instance still goes when the short heartbeat runs out: CONTINUE.
      lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
      default_result       = "CONTINUE"
      heartbeat_timeout    = var.terminate_hook_heartbeat_timeout
    }
  }

  # The group's ARN, built from its name: the instance profile's policy needs it before the group
  # exists (the group launches from the template that carries the profile). The region's name is
  # aws_region's `id` with provider 5 and 6 alike (`name` is deprecated from 6).
  autoscaling_group_arn = "arn:${data.aws_partition.current.partition}:autoscaling:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/${var.name}"

  # The launch template's user data: templatefile() with exactly the variables the data-plane lab
  # and the tests rely on, the self-check inserted from its own shellcheck-clean file.
  user_data = templatefile("${path.module}/user-data.sh.tftpl", {
    vpc_cidr_block              = var.vpc_cidr_block
    auto_scaling_group_name     = var.name
    launch_hook_name            = local.lifecycle_hooks.launch.name
    check_ip_urls               = join(" ", var.check_ip_urls) # one shell word list
    metric_namespace            = var.metric_namespace
    forward_probe_address       = local.forward_probe_address
    log_group_name              = local.log_group_name
    self_check_interval_seconds = var.self_check_interval_seconds
    unhealthy_after             = var.unhealthy_after
    # The scripts without their comment lines (their documentation stays in the module): EC2's
    # 16 KiB hold the gzipped user data, and the comments are half of it.
    self_check_script = replace(file("${path.module}/nat-self-check.sh"), "/(?m)^[ \\t]*#([^!\\n].*)?\\n/", "")
    # nat-metrics and the kernel's tuning (section 3b).
    metrics_script                    = replace(file("${path.module}/nat-metrics.sh"), "/(?m)^[ \\t]*#([^!\\n].*)?\\n/", "")
    metrics_interval_seconds          = var.metrics_interval_seconds
    conntrack_tcp_established_timeout = var.conntrack_tcp_established_timeout
    # Connections across a refresh (section 4b): the zone's EIP says which NAT serves the zone now.
    conntrack_sync_script       = replace(file("${path.module}/nat-conntrack-sync.py"), "/(?m)^[ \t]*#([^!\n].*)?\n/", "")
    conntrack_sync_port         = local.conntrack_sync_port
    conntrack_sync_wait_seconds = 5
    eip_allocation_id           = var.eip_allocation_id == null ? "" : var.eip_allocation_id
  })

  # nat-conntrack-sync's port: a NAT of the group reads another's established flows on it.
  conntrack_sync_port = 3780

  # The types the group may launch: instance_type first, then the alternates (duplicates dropped).
  instance_types = distinct(concat([var.instance_type], var.alternate_instance_types))

  # The NAT's log group: a name, not the resource's attribute, so that the instance's policy and the
  # user data need not wait for it (the group is created with them all the same).
  log_group_name = coalesce(var.log_group_name, "/nat-asg-hook/nat/${var.name}")

  # The self-check's forwarding probe: a namespace on the instance whose address the user data
  # masquerades like the VPC's, so that the instance tests its own forwarding path. Link-local: it
  # never meets an address of the VPC.
  forward_probe_address = "169.254.254.2"

  # The group's health check grace period, seconds. It starts once the launch hook is complete, i.e.
  # once the instance has booted and proved itself; a minute covers EC2's first status checks.
  health_check_grace_period = 60
}

################################################################################
# The NATs' log: the user data's output and the self-check's lines, shipped by the instance itself
# (nat-self-check, `aws logs put-log-events`), one stream per instance and source. One group per NAT
# group, made here and not in the root stack: the module stays whole (the instance profile's policy
# names exactly this group), and a replaced NAT's story is where its group's is.
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts at rest by default; a customer managed key is optional (log_kms_key_arn)
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

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
# Security group: the VPC in, anything out (a NAT forwards its subnets' egress, whatever it is)
################################################################################

resource "aws_security_group" "this" {
  # checkov:skip=CKV_AWS_382: a NAT instance forwards all egress of its private subnets; its outbound rule cannot be narrower than what those subnets may reach
  name        = var.name
  description = "NAT instance ${var.name}: traffic from the VPC in, any egress out"
  vpc_id      = var.vpc_id

  ingress {
    description = "Everything the private subnets send through the NAT"
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = coalesce(var.ingress_cidr_blocks, [var.vpc_cidr_block])
  }

  ingress {
    description = "nat-conntrack-sync: the NATs of this group read each other established flows (a planned refresh keeps them)"
    protocol    = "tcp"
    from_port   = local.conntrack_sync_port
    to_port     = local.conntrack_sync_port
    self        = true
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
# no key pair (no SSH), the instance profile that completes its own launch and sets its own health.
################################################################################

resource "aws_launch_template" "this" {
  # checkov:skip=CKV_AWS_88: a NAT instance sits in a public subnet by definition; its temporary public IP lets it reach the AWS APIs and repositories and prove its egress before it holds the zone's EIP, which replaces it
  name                   = var.name
  description            = "NAT instance for ${var.name}, set up by nat-asg-hook"
  image_id               = local.ami_id
  instance_type          = var.instance_type
  update_default_version = true
  ebs_optimized          = true

  # Gzipped: EC2 takes at most 16 KiB of user data; cloud-init unpacks it.
  user_data = base64gzip(local.user_data)

  lifecycle {
    # EC2 refuses more than 16 KiB of user data only when an instance launches: say so at plan time
    # (long names or check URLs use the margin that the self-check and the nftables rules leave).
    precondition {
      # EC2 counts the raw bytes (here gzip's), before base64: 3 bytes per 4 characters.
      condition     = length(base64gzip(local.user_data)) * 3 / 4 < 16384
      error_message = "The gzipped user data has about ${floor(length(base64gzip(local.user_data)) * 3 / 4)} bytes; EC2 takes at most 16 KiB: shorten name, log_group_name or check_ip_urls."
    }
  }

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

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
    device_index = 0
    # A temporary public IP: before it holds the zone's EIP, the instance must reach the AWS APIs
    # (to complete its own launch lifecycle action) and the package repositories, and its self-check
    # proves egress through its own public address. AWS releases this address when the hook
    # associates the EIP; from then on the instance leaves through the static EIP only.
    associate_public_ip_address = true
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
  name = var.name
  # One NAT; max 2 so that an instance refresh launches the new one before it terminates the old.
  min_size                  = 1
  max_size                  = 2
  desired_capacity          = 1
  vpc_zone_identifier       = [var.subnet_id]
  health_check_type         = "EC2"
  health_check_grace_period = local.health_check_grace_period
  default_instance_warmup   = var.instance_warmup_seconds

  # On-demand or Spot, over several instance types of similar size (a Spot pool or an AZ short of one
  # type does not stop a replacement): one code path for both, the mixed instances policy. On-demand
  # takes the types in the order given; Spot the pools least likely to be interrupted, then cheapest.
  mixed_instances_policy {
    instances_distribution {
      # The Spot fallback's switch: the hook sets it to 1 (on-demand) when Spot is short and back to
      # 0 later; Terraform leaves it where the hook put it (ignore_changes below).
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = var.capacity == "on-demand" ? 100 : 0
      on_demand_allocation_strategy            = "prioritized"
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.this.id
        version            = aws_launch_template.this.latest_version
      }

      dynamic "override" {
        for_each = local.instance_types

        content {
          instance_type = override.value
        }
      }
    }
  }

  # Spot: when EC2 signals that a Spot NAT is at elevated risk, the group launches its replacement
  # first; its launch takes the zone (the hook does not act on the recommendation itself). The
  # two-minute interruption warning goes to the hook, which hands the zone over at once.
  capacity_rebalance = var.capacity != "on-demand"

  # Every replacement launches before it terminates: a health replacement (the NAT marked itself
  # Unhealthy, or EC2's status checks failed), a rebalance and a refresh all bring the new NAT in
  # service first; its Launch Successful event moves the zone to it, and only then does the old one
  # enter its terminate hook (max 2 above makes the room).
  instance_maintenance_policy {
    min_healthy_percentage = 100
    max_healthy_percentage = 200
  }

  # Both hooks are part of the group's creation, so that even the first instance waits in
  # Pending:Wait until it proved itself (a hook added after the group would miss the instance the
  # group launches at once). The provider applies initial_lifecycle_hook only when it creates the
  # group: later changes to a hook are applied by aws_autoscaling_lifecycle_hook.this below, which
  # declares the same hooks by name (PutLifecycleHook creates or updates).
  dynamic "initial_lifecycle_hook" {
    for_each = local.lifecycle_hooks

    content {
      name                 = initial_lifecycle_hook.value.name
      lifecycle_transition = initial_lifecycle_hook.value.lifecycle_transition
      default_result       = initial_lifecycle_hook.value.default_result
      heartbeat_timeout    = initial_lifecycle_hook.value.heartbeat_timeout
    }
  }

  # A new launch template version replaces the instance launch-before-terminate: the group runs two
  # instances for a while (max healthy 200 %). The new one proves itself and completes its launch
  # hook; its Launch Successful event moves the EIP and the routes to it; the warm-up keeps the old
  # one until well after that cutover, and the terminate hook lets the hook hand over anything the
  # old one still held before it goes.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = var.instance_warmup_seconds
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

  # Created only once the hook's rules, targets, permissions and policy exist (create_after carries
  # their IDs), and the instance's own policy: the first instance completes its launch with it. The
  # AZ's static EIP is the static-eip submodule, not this module: the hook needs the EIP and this ASG
  # needs the hook, and Terraform orders a for_each module call as a whole.
  depends_on = [var.create_after, aws_iam_role_policy.instance, aws_cloudwatch_log_group.this]

  lifecycle {
    # Spot with an on-demand fallback: a group the hook switched to on-demand stays so until the hook
    # switches it back; an apply meanwhile (a new AMI, say) keeps the hook's value.
    ignore_changes = [mixed_instances_policy[0].instances_distribution[0].on_demand_base_capacity]
  }
}

# The same hooks as the group's initial_lifecycle_hook blocks, as resources: a changed heartbeat or
# default result reaches the existing group.
resource "aws_autoscaling_lifecycle_hook" "this" {
  for_each = local.lifecycle_hooks

  autoscaling_group_name = aws_autoscaling_group.this.name
  name                   = each.value.name
  lifecycle_transition   = each.value.lifecycle_transition
  default_result         = each.value.default_result
  heartbeat_timeout      = each.value.heartbeat_timeout
}
