#!/usr/bin/env bash
# The main demo: the Unikraft Cloud docs' first workflow on this machine.
#
#   scripts/demo.sh          (as root, from a fresh clone; nothing else to type)
#   scripts/demo.sh --stop   stops the platform a previous run left running
#
# 1. installs what is missing (scripts/ensure-deps.sh) and builds (npm run build);
# 2. starts `ukcd dev` (control plane + central registry, one node, HTTPS gateway)
#    in the background with its data in $UKC_DEMO_HOME (default ~/.local/share/ukc-demo)
#    and its own CLI config ($UKC_DEMO_HOME/config.yaml), and waits until it is ready;
# 3. makes the python:3.12 base offline from Debian's python3 packages
#    (scripts/make-python-base.sh; the .debs are cached) and pushes it to the
#    central registry, which builds use as their mirror for Docker Hub names;
# 4. runs the docs' deployment:
#      unikraft run examples/python-base-compat -m 512M -p 443:8080 --scale-to-zero policy=on,cooldown-time=1000
#    (build, push and start in one step), prints the URL and the boot time;
# 5. fetches the URL with curl, verifying the gateway's certificate with the dev CA;
# 6. shows `unikraft instances list` and `unikraft images list`.
#
# Choice: the platform is LEFT RUNNING so you can keep using it (the script prints
# the environment to export for `node bin/unikraft.js ...`). Stop it with
# `scripts/demo.sh --stop` (deletes the demo instance, stops ukcd dev and releases
# its mounts). Idempotent: a second run
# stops the previous platform first, reuses its data, cache and CLI profile, and
# replaces the demo instance.
# Environment: UKC_DEMO_HOME (data), UKC_DEMO_PORT_OFFSET (gateway: public port P
# is served on P+offset, default 8000, so 443 → 8443).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"

DEMO_HOME="${UKC_DEMO_HOME:-${HOME}/.local/share/ukc-demo}"
OFFSET="${UKC_DEMO_PORT_OFFSET:-8000}"
PIDFILE="$DEMO_HOME/ukcd-dev.pid"
LOG="$DEMO_HOME/ukcd-dev.log"
export UNIKRAFT_CONFIG="$DEMO_HOME/config.yaml"
export UKC_CACHE_DIR="${UKC_CACHE_DIR:-${HOME}/.cache/ukc}"
APP_NAME=hello-python

stop_platform() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      # Instances outlive a stopped node (it re-adopts them on start): delete the demo's first.
      node "$REPO/bin/unikraft.js" instances delete "$APP_NAME" >/dev/null 2>&1 || true
      echo "demo: stopping ukcd dev (pid $pid)"
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$PIDFILE"
  fi
  # Root filesystems the node mounted from images stay mounted as its cache; release ours.
  if [ -d "$DEMO_HOME/node/rootfs" ]; then
    findmnt -rn -o TARGET | grep -F "$DEMO_HOME/node/rootfs/" | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
  fi
}

if [ "${1:-}" = "--stop" ]; then
  stop_platform
  echo "demo: stopped (data kept in $DEMO_HOME; remove it to start from scratch)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "demo: run me as root (instances are Linux sandboxes: namespaces, cgroups, a bridge)" >&2
  exit 1
fi

step() { printf '\n==> %s\n' "$*"; }
unikraft() { node "$REPO/bin/unikraft.js" "$@"; }

step "dependencies and build"
scripts/ensure-deps.sh
npm run build --silent

step "starting ukcd dev (data in $DEMO_HOME)"
stop_platform
mkdir -p "$DEMO_HOME"
: >"$LOG"
setsid node "$REPO/bin/ukcd.js" dev --home "$DEMO_HOME" --gateway-port-offset "$OFFSET" >"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 600); do
  if grep -qx ready "$LOG"; then break; fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "demo: ukcd dev exited:" >&2; cat "$LOG" >&2; exit 1; fi
  sleep 0.1
done
grep -qx ready "$LOG" || { echo "demo: ukcd dev did not become ready in 60 s:" >&2; cat "$LOG" >&2; exit 1; }
grep -v '^published ' "$LOG" | grep -vx ready || true
REGISTRY="$(sed -n 's/.*(central registry \([^)]*\)).*/\1/p' "$LOG" | head -n1)"
CA="$(sed -n 's/^gateway CA *\([^ ]*\).*/\1/p' "$LOG" | head -n1)"
ROOT_TOKEN="$(cat "$DEMO_HOME/controlplane/root-token")"

step "python:3.12 base (Debian's python3 packages, offline) → $REGISTRY/library/python:3.12"
UKC_TOKEN="$ROOT_TOKEN" scripts/make-python-base.sh "$REGISTRY/library/python:3.12"

step "unikraft run examples/python-base-compat -m 512M -p 443:8080 --scale-to-zero policy=on,cooldown-time=1000"
unikraft instances delete "$APP_NAME" >/dev/null 2>&1 || true
unikraft services delete "$APP_NAME" >/dev/null 2>&1 || true
OUT="$(unikraft run examples/python-base-compat -n "$APP_NAME" -m 512M -p 443:8080 --scale-to-zero policy=on,cooldown-time=1000)"
echo "$OUT"
FQDN="$(unikraft instances get "$APP_NAME" -o json | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const i=JSON.parse(s)[0];process.stdout.write(((i.service&&i.service.domains)||[])[0]||"")})')"
BOOT="$(echo "$OUT" | sed -n 's/^ *boot_time: //p' | head -n1)"
PORT=$((443 + OFFSET))
URL="https://$FQDN:$PORT/"
echo
echo "URL:        $URL"
echo "boot time:  ${BOOT:-unknown}"

step "curl --cacert $CA $URL"
# *.localhost resolves to loopback in curl itself; --resolve makes sure of it everywhere.
ANSWER=""
for _ in $(seq 1 50); do
  if ANSWER="$(curl -sS --fail --cacert "$CA" --resolve "$FQDN:$PORT:127.0.0.1" "$URL" 2>&1)"; then break; fi
  sleep 0.2
done
echo "$ANSWER"
[ "$ANSWER" = "Hello, World!" ] || { echo "demo: unexpected answer" >&2; exit 1; }

step "unikraft instances list"
unikraft instances list
step "unikraft images list"
unikraft images list

cat <<EOF

The platform is still running (pid $(cat "$PIDFILE"), log $LOG).
Use it:   export UNIKRAFT_CONFIG=$UNIKRAFT_CONFIG; node bin/unikraft.js instances list
After $((1000))ms idle the instance scales to zero; the next request wakes it:
          curl --cacert $CA --resolve $FQDN:$PORT:127.0.0.1 $URL
Stop it:  scripts/demo.sh --stop
EOF
