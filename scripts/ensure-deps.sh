#!/usr/bin/env bash
# Installs what ukc needs on a Debian machine, only when it is missing:
# the Debian packages the tests and the demo use, the npm packages (npm ci),
# and a fresh build of the TypeScript sources.
# Usage: scripts/ensure-deps.sh            (as root, or with the packages already there)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: command or file that proves each one is installed.
declare -A NEED=(
  [skopeo]=/usr/bin/skopeo
  [umoci]=/usr/bin/umoci
  [docker-registry]=/usr/bin/docker-registry
  [runc]=/usr/sbin/runc
  [bubblewrap]=/usr/bin/bwrap
  [erofs-utils]=/usr/bin/mkfs.erofs
  [busybox-static]=/bin/busybox
  [cpio]=/bin/cpio
  [iproute2]=/sbin/ip
  [nftables]=/usr/sbin/nft
  [util-linux]=/usr/bin/unshare
  [build-essential]=/usr/bin/cc
  [curl]=/usr/bin/curl
  [openssl]=/usr/bin/openssl
  [zstd]=/usr/bin/zstd
  [xz-utils]=/usr/bin/xz
  [bzip2]=/bin/bzip2
  [libseccomp-dev]=/usr/lib/x86_64-linux-gnu/libseccomp.a
  [pkg-config]=/usr/bin/pkg-config
)
missing=()
for pkg in "${!NEED[@]}"; do
  [ -e "${NEED[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "ensure-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages: reinstall when node_modules is absent or older than the lock file.
# A symlinked node_modules is a shared install (worktrees of one checkout): never
# run `npm ci` through it — npm empties the link's target before replacing it.
if [ -L node_modules ]; then
  [ -d node_modules/ ] || { echo "ensure-deps: node_modules links to a missing directory" >&2; exit 1; }
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: npm ci"
  npm ci --no-audit --no-fund
fi
