# terraform init -backend-config=environments/test/backend-test.hcl
# The bucket comes from terraform/bootstrap (scripts/bootstrap.sh --env test), which prints this file.
# S3 bucket names are global, hence one per environment. kms_key_id: the state key (the bootstrap's
# alias/<bucket>); the bucket refuses any other encryption of the state.
bucket       = "nat-asg-hook-tfstate-test"
key          = "nat-asg-hook/test.tfstate"
region       = "us-east-1"
encrypt      = true
kms_key_id   = "alias/nat-asg-hook-tfstate-test"
use_lockfile = true
