name         = "nat-test"
vpc_cidr     = "10.0.0.0/16"
az_count     = 2
protect_eips = false

tags = {
  Environment = "test"
  Project     = "nat-asg-hook"
}
