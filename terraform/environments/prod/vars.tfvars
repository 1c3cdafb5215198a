name         = "nat-prod"
vpc_cidr     = "10.1.0.0/16"
az_count     = 3
protect_eips = true

# No egress probes in prod: turn them on for as long as scripts/verify_nat.sh should check the
# zones' egress from them (about 4 USD a month per zone).
egress_probe = false

# The NAT instances' image, pinned (it is region-specific: this one is us-east-1's). Rolling to a
# newer Amazon Linux is a deliberate step: `make ami-latest` prints the change (docs/runbook.md).
nat_ami_id = "ami-065b1b834d2a83a7a" # al2023-ami-2023.12.20260930.0-kernel-6.18-arm64

# On-demand NATs in production (test runs Spot).
nat_capacity = "on-demand"

# Every role the stack creates carries the bootstrap's boundary: the deploy role may create none without it.
permissions_boundary_name = "stack-role-boundary-prod"

tags = {
  Environment = "prod"
  Project     = "nat-asg-hook"
}
