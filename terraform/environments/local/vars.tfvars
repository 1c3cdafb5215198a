# The whole stack on an AWS API emulator (moto server). The tests start moto on a free port and pass
# -var aws_endpoint_url=... after this file; by hand: `python -m moto.server -p 5000`.
aws_endpoint_url = "http://127.0.0.1:5000"

name         = "nat-local"
vpc_cidr     = "10.2.0.0/16"
az_count     = 3
protect_eips = false

# No egress probes: the emulator runs no SSM agent to ask them, and the demo stays fast (the
# data-plane lab asks from its own private hosts). -var egress_probe=true creates them in the
# emulator all the same (tests/terraform/test_terraform_iam.py does).
egress_probe               = false
egress_probe_instance_type = "t3.nano" # x86_64, as the image below

# ami-760aaa0f is in moto's built-in image catalogue (every moto 5 release); the emulator boots
# nothing, so any image does. x86_64 throughout: the test binary is a host build.
nat_ami_id                   = "ami-760aaa0f"
nat_instance_type            = "t3.nano"
nat_alternate_instance_types = ["t3.micro"] # x86_64 too
lambda_architecture          = "x86_64"

tags = {
  Environment = "local"
  Project     = "nat-asg-hook"
}
