################################################################################
# GitHub Actions assumes the roles through OIDC: no long-lived keys anywhere. The roles' policies are
# the JSON files in terraform/policies/, rendered with this account's names (templatefile).
################################################################################

locals {
  github_oidc_host = "token.actions.githubusercontent.com"

  # One provider per URL and account: created here, or the one the account already has.
  github_oidc_provider_arn = (var.manage_iam && var.create_github_oidc_provider
    ? one(aws_iam_openid_connect_provider.github[*].arn)
    : "arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.github_oidc_host}"
  )

  policy_dir = "${path.module}/../policies"

  policy_vars = {
    partition         = local.partition
    account_id        = local.account_id
    region            = var.region
    environment       = var.environment
    stack_name        = var.stack_name
    state_bucket      = aws_s3_bucket.state.bucket
    state_key         = var.state_key
    state_kms_key_arn = aws_kms_key.state.arn
    github_repository = coalesce(var.github_repository, "unset/unset")
    oidc_provider_arn = local.github_oidc_provider_arn
    deploy_role_name  = var.deploy_role_name
    plan_role_name    = var.plan_role_name
    # Its ARN is known before it exists: the deploy role's policies name it, and it is created here.
    boundary_policy_arn = "arn:${local.partition}:iam::${local.account_id}:policy/${local.boundary_policy_name}"
  }

  # The permissions boundary of every role the stack creates (terraform/policies/stack-role-boundary.json):
  # the most any of them can ever do, whatever policy the deploy role writes into it. A managed policy
  # the deploy role may not write (terraform-guardrails.json): its name is outside <stack_name>-*, and
  # no managed policy is the deploy role's to change.
  boundary_policy_name = "stack-role-boundary-${var.environment}"

  # Managed policies by file name (terraform/policies/<name>.json), and which role gets which.
  policies = var.manage_iam ? toset([
    "terraform-state",
    "terraform-state-read",
    "terraform-read",
    "terraform-network",
    "terraform-compute",
    "terraform-hook",
    "terraform-guardrails",
  ]) : toset([])

  # The deploy role plans, applies and destroys the stack; the plan role only reads it (pull requests
  # run code that is not reviewed yet: they get no write access to anything).
  role_policies = {
    deploy = ["terraform-state", "terraform-read", "terraform-network", "terraform-compute", "terraform-hook", "terraform-guardrails"]
    plan   = ["terraform-state-read", "terraform-read"]
  }

  attachments = var.manage_iam ? merge([
    for role, names in local.role_policies : { for name in names : "${role}/${name}" => { role = role, policy = name } }
  ]...) : {}
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.manage_iam && var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: IAM trusts GitHub's OIDC endpoint through its own root CAs.

  lifecycle {
    precondition {
      condition     = var.github_repository != null
      error_message = "github_repository (owner/name) is required to create the roles."
    }
  }
}

resource "aws_iam_role" "deploy" {
  count = var.manage_iam ? 1 : 0

  name                 = var.deploy_role_name
  description          = "GitHub Actions (demo-${var.environment} and teardown-${var.environment} environments): plans, applies and destroys the nat-asg-hook ${var.environment} stack"
  assume_role_policy   = templatefile("${local.policy_dir}/terraform-role-trust.json", local.policy_vars)
  max_session_duration = var.max_session_duration

  lifecycle {
    precondition {
      condition     = var.github_repository != null
      error_message = "github_repository (owner/name) is required to create the roles."
    }
  }
}

resource "aws_iam_role" "plan" {
  count = var.manage_iam ? 1 : 0

  name                 = var.plan_role_name
  description          = "GitHub Actions (pull requests, main, development): reads the nat-asg-hook ${var.environment} stack and its state to plan it"
  assume_role_policy   = templatefile("${local.policy_dir}/terraform-plan-role-trust.json", local.policy_vars)
  max_session_duration = var.max_session_duration
}

resource "aws_iam_policy" "this" {
  for_each = local.policies

  name        = "${each.key}-${var.environment}"
  description = "nat-asg-hook ${var.environment}: terraform/policies/${each.key}.json"
  policy      = templatefile("${local.policy_dir}/${each.key}.json", local.policy_vars)
}

resource "aws_iam_policy" "boundary" {
  count = var.manage_iam ? 1 : 0

  name        = local.boundary_policy_name
  description = "nat-asg-hook ${var.environment}: the permissions boundary of every role the stack creates (terraform/policies/stack-role-boundary.json)"
  policy      = templatefile("${local.policy_dir}/stack-role-boundary.json", local.policy_vars)
}

resource "aws_iam_role_policy_attachment" "this" {
  for_each = local.attachments

  role       = each.value.role == "deploy" ? aws_iam_role.deploy[0].name : aws_iam_role.plan[0].name
  policy_arn = aws_iam_policy.this[each.value.policy].arn
}
