# AWS itself. The local environment points this provider at an AWS API emulator with its own files
# (environments/local: providers_override.tf, emulator.tf), copied next to this one only there.
provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }

  # An operator's `nat-asg-hook drain` marks a NAT group with the first tag (the zone stays on a
  # sibling until `undrain`); the hook's Spot fallback with the second (since when Spot is short).
  # Without this, the next apply would see them as drift and delete them, silently undraining the
  # zone mid-maintenance (provider 5 manages a group's tags exhaustively).
  ignore_tags {
    keys = ["nat-asg-hook:drained", "nat-asg-hook:spot-unavailable"]
  }
}

# Without default tags, for the one thing the stack did not create: the VPC's default security group
# (AWS makes it with the VPC). The deploy role may set the Project tag, which is what lets it change
# a resource, only while creating one (ec2:CreateAction), never on an existing group; it may only
# revoke that group's rules, which is all emptying it takes.
provider "aws" {
  alias  = "untagged"
  region = var.region
}
