#!/usr/bin/env bash
# The branch flow of CONTRIBUTING.md, enforced by GitHub: the repository's merge methods, the
# protection of main and development, the four deployment environments (which branches may deploy,
# who approves, never the one who started the run), and releases from main only (v* tags created,
# moved or deleted by the owner alone; published releases immutable), through the REST API
# (`gh api`). The payloads below are the settings; CONTRIBUTING.md's "Branch protection" and
# "Environments" tables say the same (tests/test_branch_flow.py holds them together).
#
# Prints every request (method, path, JSON body) and changes nothing, unless --apply. It may read
# (the owner's numeric id, an existing tag ruleset's id) when gh is there. Idempotent: the PATCH and
# PUTs set the whole configuration, whatever was there before; a deployment branch policy that
# exists already is answered with it (HTTP 303), and the tag ruleset, once it exists, is updated in
# place.
#
# The owner, whose approval main needs, is written in one place: .github/CODEOWNERS (`* @<owner>`).
# --owner (or REPO_OWNER) names another one: --apply then rewrites that file, to be committed.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/protect-branches.sh [--owner LOGIN] [--repo OWNER/NAME] [--realign-development] [--apply]

Sets the repository's merge methods, protects main and development, configures the environments
demo-test, teardown-test (deployable from main and development), demo-prod, teardown-prod (from main
only), each approved by the owner and never by whoever started the run, and releases: v* tags only
the owner may create, move or delete, and immutable published releases.

  --owner LOGIN          The repository owner: every change into main needs their approval (a code
                         owner review). Default: $REPO_OWNER, else the `*` line of .github/CODEOWNERS.
                         Another login than the file's rewrites .github/CODEOWNERS (with --apply).
  --repo OWNER/NAME      The GitHub repository. Default: $GITHUB_REPOSITORY, else the origin remote,
                         else LOGIN/nat-asg-hook.
  --realign-development  Allow force pushes on development, for the one push that realigns it on
                         main after a hotfix (CONTRIBUTING.md, "Hotfixes"). Run the script again
                         without it right after that push.
  --apply                Send the requests (needs gh, authenticated as an administrator of the
                         repository). Without it the script only prints them.
  -h, --help             This help.
EOF
}

die() {
  printf 'protect-branches: %s\n' "$*" >&2
  exit 2
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
codeowners="$repo_root/.github/CODEOWNERS"

owner="${REPO_OWNER:-}"
repo="${GITHUB_REPOSITORY:-}"
realign=false
apply=false

while (($# > 0)); do
  case "$1" in
    --owner)
      (($# >= 2)) || die "--owner needs a value (a GitHub login)"
      owner="$2"
      shift 2
      ;;
    --owner=*)
      owner="${1#*=}"
      shift
      ;;
    --repo)
      (($# >= 2)) || die "--repo needs a value (OWNER/NAME)"
      repo="$2"
      shift 2
      ;;
    --repo=*)
      repo="${1#*=}"
      shift
      ;;
    --realign-development)
      realign=true
      shift
      ;;
    --apply)
      apply=true
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: $1"
      ;;
  esac
done

# --- the owner and CODEOWNERS ---------------------------------------------------------------------

codeowners_owner() {
  [[ -r "$codeowners" ]] || return 0
  sed -nE 's/^\*[[:space:]]+@([A-Za-z0-9-]+)[[:space:]]*$/\1/p' "$codeowners" | head -n 1
}

render_codeowners() {
  cat <<EOF
# The repository owner reviews every change that reaches main: main's protection requires a code
# owner's approval (CONTRIBUTING.md, "Branch protection"). One owner, one line; change it with
#   scripts/protect-branches.sh --owner LOGIN --apply
# and commit this file (GitHub reads it from the pull request's base branch).
* @$1
EOF
}

if [[ -z "$owner" ]]; then
  owner="$(codeowners_owner)"
  [[ -n "$owner" ]] || die "no owner: pass --owner LOGIN (or set REPO_OWNER); $codeowners has no '* @LOGIN' line"
fi
# GitHub logins: letters, digits and single inner hyphens, at most 39 characters.
[[ "$owner" =~ ^[A-Za-z0-9]([A-Za-z0-9]|-[A-Za-z0-9]){0,38}$ ]] || die "not a GitHub login: '$owner'"

if [[ -z "$repo" ]]; then
  origin="$(git -C "$repo_root" remote get-url origin 2>/dev/null || true)"
  if [[ "$origin" =~ github\.com[:/]([^/]+/[^/]+)$ ]]; then
    repo="${BASH_REMATCH[1]%.git}"
  else
    repo="$owner/nat-asg-hook"
  fi
fi
[[ "$repo" =~ ^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$ ]] || die "not a repository OWNER/NAME: '$repo'"

# --- the settings ---------------------------------------------------------------------------------

# The jobs that must be green on a commit before it reaches main: their `name:`s, which is what GitHub
# calls a job's check. "Branch flow" is .github/workflows/branch-flow.yml; the others are the
# "Prepare for Demo" workflow's.
required_checks='["Branch flow", "Rust (fmt, clippy, test)", "Lambda zip (arm64)", "Terraform (fmt, validate, tflint, checkov)", "Plan (test)"]'

# Squash merging only: features into development and hotfixes into main, one commit each, titled and
# described by the pull request. GitHub's "rebase and merge" writes new commits (new SHAs) even where a
# fast-forward was possible, so it is off with merge commits: a promotion is a push (CONTRIBUTING.md).
repository_settings='{
  "allow_squash_merge": true,
  "allow_rebase_merge": false,
  "allow_merge_commit": false,
  "squash_merge_commit_title": "PR_TITLE",
  "squash_merge_commit_message": "PR_BODY"
}'

# main: production. Only by pull request, approved by a code owner (the owner), approvals dismissed by
# new commits; every required check green on a branch up to date with main; linear; for the owner
# too. `contexts` is the API's required (if deprecated) form of the list: GitHub answers with `checks`.
main_protection="{
  \"required_status_checks\": {
    \"strict\": true,
    \"contexts\": $required_checks
  },
  \"enforce_admins\": true,
  \"required_pull_request_reviews\": {
    \"required_approving_review_count\": 1,
    \"require_code_owner_reviews\": true,
    \"dismiss_stale_reviews\": true
  },
  \"restrictions\": null,
  \"required_linear_history\": true,
  \"allow_force_pushes\": false,
  \"allow_deletions\": false
}"

# development: integration. Small fixes are pushed directly, so no pull request is required, and no
# status check either (GitHub refuses a push whose commit has not passed the required checks yet); CI
# still runs on every push, and main's checks stop a red development at promotion. Linear, for the
# owner too; force pushes only for a realignment after a hotfix (--realign-development).
development_protection="{
  \"required_status_checks\": null,
  \"enforce_admins\": true,
  \"required_pull_request_reviews\": null,
  \"restrictions\": null,
  \"required_linear_history\": true,
  \"allow_force_pushes\": $realign,
  \"allow_deletions\": false
}"

# The environments the demo jobs run in (.github/workflows/prepare-for-demo.yml): the deploy role of
# each account trusts exactly these (terraform/policies/terraform-role-trust.json). Their deployment
# branches: prod from main only, test from main and development (where changes are demonstrated).
environments=(demo-test teardown-test demo-prod teardown-prod)
deployment_branches() {
  case "$1" in
    *-prod) echo main ;;
    *-test) echo main development ;;
  esac
}

# Release tags: only a repository administrator (the owner) creates, moves or deletes a v* tag; the
# Release workflow then refuses a tag that main does not hold.
tag_ruleset_name="release tags: the owner only"
tag_ruleset="{
  \"name\": \"$tag_ruleset_name\",
  \"target\": \"tag\",
  \"enforcement\": \"active\",
  \"conditions\": {
    \"ref_name\": {
      \"include\": [\"refs/tags/v*\"],
      \"exclude\": []
    }
  },
  \"rules\": [
    {\"type\": \"creation\"},
    {\"type\": \"update\"},
    {\"type\": \"deletion\"}
  ],
  \"bypass_actors\": [
    {\"actor_id\": 5, \"actor_type\": \"RepositoryRole\", \"bypass_mode\": \"always\"}
  ]
}"

# --- the requests ---------------------------------------------------------------------------------

if $apply; then
  command -v gh >/dev/null || die "gh (the GitHub CLI, https://cli.github.com) is not on PATH; --apply sends the requests with it (gh auth login first). Without --apply nothing is needed."
fi

# Prints the request; with --apply, sends it and prints GitHub's answer.
request() {
  local method="$1" path="$2" body="$3"
  printf '%s %s\n%s\n\n' "$method" "$path" "$body"
  if $apply; then
    gh api --method "$method" "$path" \
      -H 'Accept: application/vnd.github+json' -H 'X-GitHub-Api-Version: 2022-11-28' \
      --input - <<<"$body"
    printf '\n'
  fi
}

# A read, never a change: only with gh there (a dry run does not need it).
lookup() {
  command -v gh >/dev/null || return 0
  gh api "$1" -H 'Accept: application/vnd.github+json' -H 'X-GitHub-Api-Version: 2022-11-28' --jq "$2" 2>/dev/null || true
}

printf 'protect-branches: %s, owner @%s%s\n\n' "$repo" "$owner" "$($apply && echo "" || echo "; dry run: nothing is sent")" >&2

# Environment reviewers are named by numeric id.
owner_id="$(lookup "users/$owner" .id)"
if [[ ! "$owner_id" =~ ^[0-9]+$ ]]; then
  $apply && die "cannot read the numeric id of @$owner (gh api users/$owner): the environments name their reviewer by it"
  printf 'protect-branches: the id of @%s is unknown without gh: the environments below say null, --apply looks it up.\n' "$owner" >&2
  owner_id=null
fi

request PATCH "repos/$repo" "$repository_settings"
request PUT "repos/$repo/branches/main/protection" "$main_protection"
request PUT "repos/$repo/branches/development/protection" "$development_protection"

# Each environment: the owner approves every run, never the one who started it (prevent_self_review:
# a maintainer starts a demo, the owner approves it), and only the listed branches deploy to it.
for environment in "${environments[@]}"; do
  request PUT "repos/$repo/environments/$environment" "{
  \"wait_timer\": 0,
  \"prevent_self_review\": true,
  \"reviewers\": [{\"type\": \"User\", \"id\": $owner_id}],
  \"deployment_branch_policy\": {
    \"protected_branches\": false,
    \"custom_branch_policies\": true
  }
}"
  for branch in $(deployment_branches "$environment"); do
    request POST "repos/$repo/environments/$environment/deployment-branch-policies" "{\"name\": \"$branch\", \"type\": \"branch\"}"
  done
done

# The tag ruleset, created once and updated in place after.
ruleset_id="$(lookup "repos/$repo/rulesets?includes_parents=false" ".[] | select(.name == \"$tag_ruleset_name\") | .id")"
if [[ "$ruleset_id" =~ ^[0-9]+$ ]]; then
  request PUT "repos/$repo/rulesets/$ruleset_id" "$tag_ruleset"
else
  request POST "repos/$repo/rulesets" "$tag_ruleset"
fi
# A published release's tag and assets never change (a fix is a new version).
request PUT "repos/$repo/immutable-releases" "{}"

wanted_codeowners="$(render_codeowners "$owner")"
if [[ ! -f "$codeowners" || "$(cat "$codeowners")" != "$wanted_codeowners" ]]; then
  if $apply; then
    printf '%s\n' "$wanted_codeowners" >"$codeowners"
    printf 'protect-branches: wrote %s (* @%s): commit it through development and promote it; main reads it from main.\n' "$codeowners" "$owner" >&2
  else
    printf 'protect-branches: would write %s (* @%s) with --apply.\n' "$codeowners" "$owner" >&2
  fi
fi

if ! $apply; then
  printf 'protect-branches: dry run; run again with --apply to send these requests.\n' >&2
elif $realign; then
  printf 'protect-branches: development accepts force pushes now: realign it, then run this again without --realign-development.\n' >&2
fi
