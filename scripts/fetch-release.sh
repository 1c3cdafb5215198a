#!/usr/bin/env bash
# Deploying without a Rust toolchain: download the Lambda zip that the release workflow built for a tag
# (.github/workflows/release.yml), prove it is that zip, and print its absolute path, the value of the
# nat-asg-hook module's lambda_zip_path:
#
#   scripts/fetch-release.sh v0.1.0                       # into dist/v0.1.0/
#   scripts/fetch-release.sh v0.1.0 --dest /srv/nat-asg-hook --repo my-org/nat-asg-hook
#   terraform -chdir=terraform apply -var-file=environments/test/vars.tfvars \
#     -var="lambda_zip_path=$(scripts/fetch-release.sh v0.1.0)"
#
# Proof: the zip's SHA-256 must be the one published beside it (bootstrap.zip.sha256), and
# `gh attestation verify` must find the build provenance that this repository's release workflow
# signed for it, built from this very tag (--source-ref refs/tags/<tag>: a tag created on main only,
# by the owner only, see CONTRIBUTING.md) on a GitHub-hosted runner. That needs the GitHub CLI,
# logged in; without it the script fails before it downloads anything, unless --checksum-only says
# that the checksum alone will do (it proves only that the download matches what the release
# publishes, not who built it). A zip that fails a check is deleted: only a verified zip is ever left
# at the printed path.
#
# Options:
#   --dest DIR               where bootstrap.zip and bootstrap.zip.sha256 go (default: dist/<tag>)
#   --repo OWNER/NAME        the GitHub repository (default: $GH_REPO, else this clone's origin)
#   --checksum-only          no provenance check: the published checksum alone (warned about)
#   --require-attestation    the default, accepted for scripts written before it was
#
# Downloads use gh when it is logged in (private repositories too), curl otherwise (public ones).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

die() {
  echo "fetch-release: $*" >&2
  exit 1
}

note() {
  echo "fetch-release: $*" >&2
}

tag=""
dest=""
repo="${GH_REPO:-}"
checksum_only=false

while [ $# -gt 0 ]; do
  case "$1" in
    --dest)
      [ $# -ge 2 ] || die "--dest needs a directory"
      dest="$2"
      shift 2
      ;;
    --repo)
      [ $# -ge 2 ] || die "--repo needs OWNER/NAME"
      repo="$2"
      shift 2
      ;;
    --checksum-only)
      checksum_only=true
      shift
      ;;
    --require-attestation)
      checksum_only=false
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*)
      die "unknown option $1 (see --help)"
      ;;
    *)
      [ -z "$tag" ] || die "one tag only, got $tag and $1"
      tag="$1"
      shift
      ;;
  esac
done

[ -n "$tag" ] || die "which release? scripts/fetch-release.sh <tag> [--dest DIR] (e.g. v0.1.0; --help)"
[[ "$tag" =~ ^v[0-9A-Za-z][0-9A-Za-z.+-]*$ ]] || die "'$tag' is not a release tag: they are v<version>, e.g. v0.1.0"

# The repository: --repo, $GH_REPO, or the GitHub remote this script was cloned with.
if [ -z "$repo" ]; then
  origin=$(git -C "$(dirname "$0")" remote get-url origin 2>/dev/null || true)
  if [[ "$origin" =~ github\.com[:/]([^/]+/[^/]+)$ ]]; then
    repo="${BASH_REMATCH[1]%.git}"
  fi
fi
[ -n "$repo" ] || die "which repository? --repo OWNER/NAME (or GH_REPO=OWNER/NAME): this clone has no GitHub origin"
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "'$repo' is not OWNER/NAME"

dest="${dest:-dist/$tag}"
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

# Everything is fetched into a scratch directory beside the target and moved there once verified.
work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

gh_ready=false
if command -v gh >/dev/null 2>&1 && gh auth status >/dev/null 2>&1; then
  gh_ready=true
fi
# Fail closed, before any download: without gh nothing can tell who built the zip.
if ! $gh_ready && ! $checksum_only; then
  die "the build provenance can only be verified with the GitHub CLI, logged in (gh auth login); --checksum-only to rely on the published checksum alone"
fi

note "downloading bootstrap.zip and bootstrap.zip.sha256 of $repo $tag"
if $gh_ready; then
  gh release download "$tag" --repo "$repo" --dir "$work" --pattern bootstrap.zip --pattern bootstrap.zip.sha256 >&2 \
    || die "gh could not download the assets of release $tag from $repo (does the release exist? gh release view $tag --repo $repo)"
else
  command -v curl >/dev/null 2>&1 || die "neither a logged-in gh nor curl is installed: one of them downloads the release"
  for asset in bootstrap.zip bootstrap.zip.sha256; do
    curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \
      --output "$work/$asset" "https://github.com/$repo/releases/download/$tag/$asset" \
      || die "could not download $asset of release $tag from https://github.com/$repo (a private repository needs gh auth login)"
  done
fi
[ -s "$work/bootstrap.zip" ] && [ -s "$work/bootstrap.zip.sha256" ] || die "release $tag of $repo lacks bootstrap.zip or bootstrap.zip.sha256"

# The checksum file is sha256sum's own line: "<64 hex digits>  bootstrap.zip".
read -r expected name _ < "$work/bootstrap.zip.sha256" || true
[[ "${expected:-}" =~ ^[0-9a-f]{64}$ ]] && [ "${name#\*}" = "bootstrap.zip" ] \
  || die "bootstrap.zip.sha256 of $tag is not a SHA-256 line for bootstrap.zip"
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum "$work/bootstrap.zip" | cut -d' ' -f1)
elif command -v shasum >/dev/null 2>&1; then
  actual=$(shasum -a 256 "$work/bootstrap.zip" | cut -d' ' -f1)
else
  die "neither sha256sum nor shasum is installed: the checksum cannot be checked"
fi
[ "$actual" = "$expected" ] || die "bootstrap.zip of $tag has SHA-256 $actual, the release publishes $expected: not using it"
note "SHA-256 matches: $actual"

if $checksum_only; then
  note "warning: build provenance NOT verified (--checksum-only); the checksum only proves the download matches the release: gh attestation verify $dest/bootstrap.zip --repo $repo --source-ref refs/tags/$tag"
else
  # Signed by this repository's release workflow (not merely by some workflow of the repository),
  # running for this tag, on a runner GitHub hosts.
  gh attestation verify "$work/bootstrap.zip" --repo "$repo" \
    --signer-workflow "$repo/.github/workflows/release.yml" \
    --source-ref "refs/tags/$tag" \
    --deny-self-hosted-runners >&2 \
    || die "bootstrap.zip of $tag has no valid build provenance attestation from $repo's release workflow for refs/tags/$tag: not using it"
  note "build provenance verified (gh attestation verify, source ref refs/tags/$tag)"
fi

mv -f "$work/bootstrap.zip.sha256" "$dest/bootstrap.zip.sha256"
mv -f "$work/bootstrap.zip" "$dest/bootstrap.zip"
echo "$dest/bootstrap.zip"
