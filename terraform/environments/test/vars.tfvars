name         = "nat-test"
vpc_cidr     = "10.0.0.0/16"
az_count     = 2
protect_eips = false

# Per zone an SSM-managed probe in the private subnet: scripts/verify_nat.sh proves from it that the
# zone's traffic leaves through the zone's own EIP (about 4 USD a month per zone).
egress_probe = true

# The NAT instances' image, pinned (it is region-specific: this one is us-east-1's). Rolling to a
# newer Amazon Linux is a deliberate step: `make ami-latest` prints the change (docs/runbook.md).
nat_ami_id = "ami-065b1b834d2a83a7a" # al2023-ami-2023.12.20260930.0-kernel-6.18-arm64

# Spot NATs: the hook acts on EC2's two-minute interruption warning, and launches on-demand while
# Spot is short (docs/design.md); test runs both.
nat_capacity = "spot-with-fallback"

# Every role the stack creates carries the bootstrap's boundary: the deploy role may create none without it.
permissions_boundary_name = "stack-role-boundary-test"

tags = {
  Environment = "test"
  Project     = "nat-asg-hook"
}
