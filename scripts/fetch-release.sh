#!/usr/bin/env bash
# Deploying and operating without a Rust toolchain: download what the release workflow built for a tag
# (.github/workflows/release.yml), prove it is that file, and print its absolute path. By default the
# Lambda zip, the value of the nat-asg-hook module's lambda_zip_path; with --cli the operator's
# binary (nat-asg-hook verify / replay / reconcile) for the machine the script runs on (Linux x86_64
# or arm64, macOS arm64 or x86_64), saved as an executable `nat-asg-hook`:
#
#   scripts/fetch-release.sh v0.1.0                       # into dist/v0.1.0/
#   scripts/fetch-release.sh v0.1.0 --dest /srv/nat-asg-hook --repo my-org/nat-asg-hook
#   terraform -chdir=terraform apply -var-file=environments/test/vars.tfvars \
#     -var="lambda_zip_path=$(scripts/fetch-release.sh v0.1.0)"
#   "$(scripts/fetch-release.sh v0.1.0 --cli)" verify --config hook.json
#
# Proof: the file's SHA-256 must be the one published beside it (<asset>.sha256), and
# `gh attestation verify` must find the build provenance that this repository's release workflow
# signed for it, built from this very tag (--source-ref refs/tags/<tag>: a tag created on main only,
# by the owner only, see CONTRIBUTING.md) on a GitHub-hosted runner. That needs the GitHub CLI,
# logged in; without it the script fails before it downloads anything, unless --checksum-only says
# that the checksum alone will do (it proves only that the download matches what the release
# publishes, not who built it). A file that fails a check is deleted: only a verified file is ever
# left at the printed path.
#
# Options:
#   --cli                    the operator's binary for this machine, not the Lambda zip
#   --target TARGET          with --cli: another machine's binary (x86_64-unknown-linux-musl,
#                            aarch64-unknown-linux-musl, aarch64-apple-darwin, x86_64-apple-darwin)
#   --dest DIR               where the file and its .sha256 go (default: dist/<tag>)
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
cli=false
target=""

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
    --cli)
      cli=true
      shift
      ;;
    --target)
      [ $# -ge 2 ] || die "--target needs a target, e.g. x86_64-unknown-linux-musl"
      target="$2"
      shift 2
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

# What to fetch: the Lambda zip, or the CLI built for this machine (uname), saved as nat-asg-hook.
if $cli; then
  if [ -z "$target" ]; then
    os=$(uname -s)
    arch=$(uname -m)
    case "$os/$arch" in
      Linux/x86_64 | Linux/amd64) target=x86_64-unknown-linux-musl ;;
      Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-musl ;;
      Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
      Darwin/x86_64) target=x86_64-apple-darwin ;;
      *) die "no release binary for $os $arch: build it from source (cargo build --release --package nat-asg-hook), or pick one with --target" ;;
    esac
  fi
  case "$target" in
    x86_64-unknown-linux-musl | aarch64-unknown-linux-musl | aarch64-apple-darwin | x86_64-apple-darwin) ;;
    *) die "'$target' is not a target the release builds: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, aarch64-apple-darwin, x86_64-apple-darwin" ;;
  esac
  asset="nat-asg-hook-$target"
  saved_as=nat-asg-hook
else
  [ -z "$target" ] || die "--target is for --cli (the Lambda zip is arm64 Linux only)"
  asset=bootstrap.zip
  saved_as=bootstrap.zip
fi

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

note "downloading $asset and $asset.sha256 of $repo $tag"
if $gh_ready; then
  gh release download "$tag" --repo "$repo" --dir "$work" --pattern "$asset" --pattern "$asset.sha256" >&2 \
    || die "gh could not download the assets of release $tag from $repo (does the release exist? gh release view $tag --repo $repo)"
else
  command -v curl >/dev/null 2>&1 || die "neither a logged-in gh nor curl is installed: one of them downloads the release"
  for file in "$asset" "$asset.sha256"; do
    curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \
      --output "$work/$file" "https://github.com/$repo/releases/download/$tag/$file" \
      || die "could not download $file of release $tag from https://github.com/$repo (a private repository needs gh auth login; a release before the CLI was published has no $asset)"
  done
fi
[ -s "$work/$asset" ] && [ -s "$work/$asset.sha256" ] || die "release $tag of $repo lacks $asset or $asset.sha256"

# The checksum file is sha256sum's own line: "<64 hex digits>  <asset>".
read -r expected name _ < "$work/$asset.sha256" || true
[[ "${expected:-}" =~ ^[0-9a-f]{64}$ ]] && [ "${name#\*}" = "$asset" ] \
  || die "$asset.sha256 of $tag is not a SHA-256 line for $asset"
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum "$work/$asset" | cut -d' ' -f1)
elif command -v shasum >/dev/null 2>&1; then
  actual=$(shasum -a 256 "$work/$asset" | cut -d' ' -f1)
else
  die "neither sha256sum nor shasum is installed: the checksum cannot be checked"
fi
[ "$actual" = "$expected" ] || die "$asset of $tag has SHA-256 $actual, the release publishes $expected: not using it"
note "SHA-256 matches: $actual"

if $checksum_only; then
  note "warning: build provenance NOT verified (--checksum-only); the checksum only proves the download matches the release: gh attestation verify $dest/$saved_as --repo $repo --source-ref refs/tags/$tag"
else
  # Signed by this repository's release workflow (not merely by some workflow of the repository),
  # running for this tag, on a runner GitHub hosts.
  gh attestation verify "$work/$asset" --repo "$repo" \
    --signer-workflow "$repo/.github/workflows/release.yml" \
    --source-ref "refs/tags/$tag" \
    --deny-self-hosted-runners >&2 \
    || die "$asset of $tag has no valid build provenance attestation from $repo's release workflow for refs/tags/$tag: not using it"
  note "build provenance verified (gh attestation verify, source ref refs/tags/$tag)"
fi

if $cli; then
  chmod 755 "$work/$asset"
fi
mv -f "$work/$asset.sha256" "$dest/$asset.sha256"
mv -f "$work/$asset" "$dest/$saved_as"
echo "$dest/$saved_as"
