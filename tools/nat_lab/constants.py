"""The names every part of the laboratory shares: the emulator's region and account, the zones a
seeded world uses, the NAT groups' lifecycle hooks (as terraform/modules/nat-instance names them),
the route the hook owns, and the EC2 states that make an instance leave (the hook's state-change
rule). Defined here once; everything else imports them."""

from __future__ import annotations

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
LAUNCH_HOOK = "nat-asg-hook-launch"
TERMINATE_HOOK = "nat-asg-hook-terminate"
FUNCTION = "nat-asg-hook"
DESTINATION = "0.0.0.0/0"
LEAVING_STATES = ("stopping", "stopped", "shutting-down", "terminated")
