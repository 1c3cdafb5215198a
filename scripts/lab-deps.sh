#!/usr/bin/env bash
# lab-deps.sh: the system tools the data-plane lab (tools/nat_lab/lab) runs, installed when missing:
# ip (iproute2), nft (nftables), unshare and nsenter (util-linux), sysctl (procps), curl, conntrack
# (conntrack: the NATs hand their connections over with it). The NAT
# instances' user data runs them, and the lab builds its namespaces with them. Debian/Ubuntu (apt-get)
# only; needs root, as the lab does. Without root it installs nothing and says so (the lab's tests then
# skip, saying why). Quick when everything is there: `make lab` and `make test` call it every time.
set -euo pipefail

declare -A PACKAGE=([ip]=iproute2 [nft]=nftables [unshare]=util-linux [nsenter]=util-linux [sysctl]=procps [curl]=curl [conntrack]=conntrack)

missing=()
for tool in "${!PACKAGE[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${PACKAGE[$tool]}")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
if ((EUID != 0)); then
  echo "lab-deps.sh: not root: not installing ${packages[*]} (the data-plane lab needs root anyway)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "lab-deps.sh: no apt-get here: install ${packages[*]} with this system's package manager" >&2
  exit 1
fi
echo "lab-deps.sh: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null ||
  { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; }
