#!/usr/bin/env bash
# Which branches may open a pull request into main (CONTRIBUTING.md, "Branches"): `development` (a
# promotion) and `hotfix/<ticket>` (an emergency fix branched off main), both of this repository. Any
# other source fails, saying what to do instead. A pull request into any other branch passes: the rule
# is about main.
#
# Reads a pull_request event payload: the file given as the only argument, else $GITHUB_EVENT_PATH
# (what the "Branch flow" workflow passes). Exit 0: allowed; 1: not allowed; 2: cannot tell.
set -euo pipefail

die() {
  printf 'check-pr-source: %s\n' "$*" >&2
  exit 2
}

(($# <= 1)) || die "usage: scripts/check-pr-source.sh [EVENT_JSON] (default: \$GITHUB_EVENT_PATH)"
event="${1:-${GITHUB_EVENT_PATH:-}}"
[[ -n "$event" ]] || die "no event payload: pass a pull_request event file or set GITHUB_EVENT_PATH"
[[ -r "$event" ]] || die "cannot read the event payload $event"
command -v jq >/dev/null || die "jq is not on PATH"

# Git forbids tabs (and every control character) in branch names, so a tab-separated line is safe.
# A fork that has since been deleted has no head repository: it reads as another repository.
fields="$(jq -r '.pull_request // empty | [.number, .base.ref, .head.ref, .base.repo.full_name, (.head.repo.full_name // "")] | @tsv' "$event")" ||
  die "$event is not JSON"
[[ -n "$fields" ]] || die "$event is not a pull_request event (no .pull_request)"
IFS=$'\t' read -r number base head base_repo head_repo <<<"$fields"
[[ -n "$base" && -n "$head" ]] || die "$event names no base or head branch"

if [[ "$base" != main ]]; then
  printf 'Pull request #%s: %s into %s. Only pull requests into main are restricted: nothing to check.\n' "$number" "$head" "$base"
  exit 0
fi

refuse() {
  # A workflow-command annotation: the pull request's checks show it; a terminal shows it as it is.
  printf '::error title=Branch flow::%s\n' "$1"
  exit 1
}

if [[ "$head_repo" != "$base_repo" ]]; then
  refuse "Pull request #$number comes from ${head_repo:-a deleted fork} ($head), not from $base_repo. Only this repository's development (a promotion) and hotfix/<ticket> branches may open pull requests into main: open yours into development (see CONTRIBUTING.md, Branches)."
fi

case "$head" in
  development)
    echo "Pull request #$number: development into main, a promotion. Allowed (it still needs the owner's approval and green checks; land it by fast-forward)."
    ;;
  hotfix/?*)
    echo "Pull request #$number: $head into main, a hotfix. Allowed (it still needs the owner's approval and green checks; then bring it back into development)."
    ;;
  *)
    refuse "Pull request #$number comes from $head. Only development (a promotion) and hotfix/<ticket> (an emergency fix branched off main) may open pull requests into main. Change its base to development (gh pr edit $number --base development, or Edit next to the title); if this is an emergency fix of production, branch hotfix/<ticket> off main instead (see CONTRIBUTING.md, Branches)."
    ;;
esac
