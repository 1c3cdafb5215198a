# terraform init -backend-config=environments/prod/backend-prod.hcl
# The bucket comes from terraform/bootstrap (scripts/bootstrap.sh --env prod), which prints this file
# with the state key's kms_key_id added. S3 bucket names are global, hence one per environment.
bucket       = "nat-asg-hook-tfstate-prod"
key          = "nat-asg-hook/prod.tfstate"
region       = "us-east-1"
encrypt      = true
use_lockfile = true
