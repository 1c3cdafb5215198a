name         = "nat-prod"
vpc_cidr     = "10.1.0.0/16"
az_count     = 3
protect_eips = true

tags = {
  Environment = "prod"
  Project     = "nat-asg-hook"
}
