# terraform init -backend-config=environments/prod/backend-prod.hcl
# The bucket comes from terraform/bootstrap (scripts/bootstrap.sh --env prod), which prints this file.
# S3 bucket names are global, hence one per environment. kms_key_id: the state key (the bootstrap's
# alias/<bucket>); the bucket refuses any other encryption of the state.
bucket       = "nat-asg-hook-tfstate-prod"
key          = "nat-asg-hook/prod.tfstate"
region       = "us-east-1"
encrypt      = true
kms_key_id   = "alias/nat-asg-hook-tfstate-prod"
use_lockfile = true
