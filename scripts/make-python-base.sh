#!/usr/bin/env bash
# Builds a real Python 3 root filesystem from this machine's Debian packages and
# imports it as a plain OCI image usable in a Dockerfile's FROM, without Docker
# Hub: `FROM <registry>/library/python:3.12`.
#
# Honest note: the content is Debian bookworm's Python 3.11 (the distribution's
# python3 package); the tag 3.12 is the name the Unikraft Cloud docs use. The
# image's labels say which Python it really holds.
#
# usage: scripts/make-python-base.sh [--rootfs-only] OUTPUT
#   OUTPUT  a registry reference (localhost:5000/library/python:3.12), an OCI
#           layout directory, or a file ending in .oci.tar
#   --rootfs-only  OUTPUT is a directory that receives the root filesystem itself
# env: UKC_CACHE_DIR (default ~/.cache/ukc): downloaded .debs are kept under
#      $UKC_CACHE_DIR/debs so reruns do not download again.
#      SOURCE_DATE_EPOCH (default 0): timestamps in the image.
set -euo pipefail

ROOTFS_ONLY=0
if [ "${1:-}" = "--rootfs-only" ]; then ROOTFS_ONLY=1; shift; fi
OUTPUT="${1:?usage: make-python-base.sh [--rootfs-only] OUTPUT}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${UKC_CACHE_DIR:-$HOME/.cache/ukc}"
DEBS="$CACHE/debs"
mkdir -p "$DEBS"

# The interpreter, its standard library and the shared libraries the
# interpreter and the stdlib's extension modules link (ssl, zlib, ctypes, lzma,
# bz2, sqlite3, readline, curses, uuid, decimal, crypt, dbm).
PACKAGES=(
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3.11
  libc6 libgcc-s1 zlib1g libssl3 libexpat1 libffi8 libbz2-1.0 liblzma5
  libsqlite3-0 libuuid1 libcrypt1 libreadline8 libtinfo6 libncursesw6
  libdb5.3 media-types
  # A shell and the core utilities, so RUN steps in a python stage work.
  dash coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0
)

fetch() { # pkg -> path of its .deb in the cache
  local pkg="$1" f
  f="$(ls "$DEBS/${pkg}"_*.deb 2>/dev/null | head -n1 || true)"
  if [ -n "$f" ]; then echo "$f"; return; fi
  # apt's own cache first (no network), then apt-get download.
  f="$(ls /var/cache/apt/archives/"${pkg}"_*_amd64.deb /var/cache/apt/archives/"${pkg}"_*_all.deb 2>/dev/null | head -n1 || true)"
  if [ -n "$f" ]; then cp "$f" "$DEBS/"; echo "$DEBS/$(basename "$f")"; return; fi
  (cd "$DEBS" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "make-python-base: cannot download $pkg (apt-get download failed)" >&2; exit 3; }
  ls "$DEBS/${pkg}"_*.deb | head -n1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ukc-pybase.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/stage"
ROOT="$WORK/rootfs"
mkdir -p "$STAGE" "$ROOT"
for p in "${PACKAGES[@]}"; do
  deb="$(fetch "$p")"
  dpkg -x "$deb" "$STAGE"
done

# Lay the packages out the way a Debian bookworm image is: merged /usr, with
# /bin, /sbin, /lib and /lib64 as links into it.
mkdir -p "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/usr/lib" "$ROOT/usr/lib64"
for d in bin sbin lib lib64; do
  if [ -d "$STAGE/$d" ] && [ ! -L "$STAGE/$d" ]; then cp -a "$STAGE/$d/." "$ROOT/usr/$d/"; fi
  ln -s "usr/$d" "$ROOT/$d"
done
cp -a "$STAGE/usr/." "$ROOT/usr/"
for d in "$STAGE"/*; do
  name="$(basename "$d")"
  case "$name" in bin|sbin|lib|lib64|usr) ;; *) cp -a "$d" "$ROOT/" ;; esac
done
rm -rf "$ROOT/usr/share/doc" "$ROOT/usr/share/man" "$ROOT/usr/share/lintian"
ln -sf python3.11 "$ROOT/usr/bin/python3"
ln -sf python3 "$ROOT/usr/bin/python"
ln -sf dash "$ROOT/usr/bin/sh"

mkdir -p "$ROOT/etc" "$ROOT/tmp" "$ROOT/root" "$ROOT/proc" "$ROOT/dev" "$ROOT/var/tmp"
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
chmod 700 "$ROOT/root"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOT/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$ROOT/etc/nsswitch.conf"
printf 'include /etc/ld.so.conf.d/*.conf\n' > "$ROOT/etc/ld.so.conf"
# The loader's cache, as the docs' Dockerfile copies it (/etc/ld.so.cache).
ldconfig -r "$ROOT"

# Prove the interpreter runs from this tree before publishing it.
got="$(chroot "$ROOT" /usr/bin/python3 -c 'import ssl, zlib, json, http.server; print(1)')"
chroot "$ROOT" /bin/sh -c 'ls / >/dev/null' || { echo "make-python-base: /bin/sh in the new rootfs does not run" >&2; exit 4; }
[ "$got" = "1" ] || { echo "make-python-base: python3 in the new rootfs does not run" >&2; exit 4; }
version="$(chroot "$ROOT" /usr/bin/python3 -c 'import sys; print(sys.version.split()[0])')"

if [ "$ROOTFS_ONLY" = 1 ]; then
  mkdir -p "$OUTPUT"
  cp -a "$ROOT/." "$OUTPUT/"
  echo "python $version root filesystem written to $OUTPUT"
  exit 0
fi

node "$HERE/bin/unikraft.js" images import "$ROOT" --output "$OUTPUT" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --cmd python3 \
  --label "org.opencontainers.image.title=python" \
  --label "org.opencontainers.image.description=Debian bookworm python3.11 packages (not CPython 3.12), built offline by ukc's make-python-base.sh" \
  --label "org.ukc.python.version=$version" \
  ${UKC_IMPORT_FLAGS:-}
