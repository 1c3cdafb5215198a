# terraform init -backend-config=environments/test/backend-test.hcl
# The bucket comes from terraform/bootstrap (scripts/bootstrap.sh --env test), which prints this file
# with the state key's kms_key_id added. S3 bucket names are global, hence one per environment.
bucket       = "nat-asg-hook-tfstate-test"
key          = "nat-asg-hook/test.tfstate"
region       = "us-east-1"
encrypt      = true
use_lockfile = true
