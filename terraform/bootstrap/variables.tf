variable "environment" {
  description = "Environment this account serves (terraform/environments/<environment>)"
  type        = string
  default     = null

  validation {
    condition     = contains(["test", "prod"], coalesce(var.environment, "unset"))
    error_message = "environment must be test or prod."
  }
}

variable "region" {
  description = "Region of the state bucket and of the stack (the backend file's region)"
  type        = string
  default     = "us-east-1"
}

variable "state_bucket" {
  description = "Name of the state bucket (the backend file's bucket)"
  type        = string
  default     = null

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.state_bucket, "-")))
    error_message = "state_bucket must be a valid S3 bucket name."
  }
}

variable "state_key" {
  description = "Key of the environment's state in the bucket (the backend file's key); the deploy role may write it and its lock file only"
  type        = string
  default     = null

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+$", coalesce(var.state_key, "/"))) && !startswith(coalesce(var.state_key, "/"), "/")
    error_message = "state_key must be an S3 key that does not start with '/'."
  }
}

variable "stack_name" {
  description = "The stack's name (the environment's `name` variable): every resource it creates is named <stack_name>-..., and the deploy role's policies are scoped to that prefix"
  type        = string
  default     = null

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", coalesce(var.stack_name, "-")))
    error_message = "stack_name must be 1-24 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "manage_iam" {
  description = "Create the GitHub OIDC provider and the deploy and plan roles; false (--skip-iam) where another team owns IAM"
  type        = bool
  default     = true
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflow may assume the roles"
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub Actions OIDC identity provider; false when the account already has one (there is one per URL and account)"
  type        = bool
  default     = true
}

variable "deploy_role_name" {
  description = "Name of the role the workflow's demo jobs assume to plan, apply and destroy; never <stack_name>-*, the names the deploy role may create and write"
  type        = string
  default     = "terraform-role"

  # The deploy role may create and write roles named <stack_name>-*: a name there would let it
  # rewrite this role. IAM's ARN patterns match case-sensitively, role names are unique ignoring case.
  validation {
    condition     = !startswith(lower(var.deploy_role_name), "${lower(coalesce(var.stack_name, "-"))}-")
    error_message = "deploy_role_name must not start with \"<stack_name>-\": the deploy role may create and write those roles."
  }
}

variable "plan_role_name" {
  description = "Name of the read-only role the workflow's plan job (pull requests, pushes) assumes; never <stack_name>-*, the names the deploy role may create and write"
  type        = string
  default     = "terraform-plan-role"

  # The deploy role may create and write roles named <stack_name>-*: a name there would let it
  # rewrite this role. IAM's ARN patterns match case-sensitively, role names are unique ignoring case.
  validation {
    condition     = !startswith(lower(var.plan_role_name), "${lower(coalesce(var.stack_name, "-"))}-")
    error_message = "plan_role_name must not start with \"<stack_name>-\": the deploy role may create and write those roles."
  }
}

variable "max_session_duration" {
  description = "Longest session of the roles, seconds (an apply that waits for the NAT groups takes minutes)"
  type        = number
  default     = 3600
}

variable "noncurrent_state_days" {
  description = "Days a replaced state version is kept before it expires"
  type        = number
  default     = 90
}

variable "allowed_account_id" {
  description = "Refuse to run in any other account than this one (null: no check)"
  type        = string
  default     = null
}
