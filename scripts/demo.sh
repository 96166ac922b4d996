#!/usr/bin/env bash
# The main demo: installs what is missing, builds, starts ukc's registry
# (`ukcd registry`) on a free loopback port with a temporary data directory,
# pushes a small Unikraft-style image with ukc's registry client, pulls it
# back, prints the digests, and stops the registry.
# DEMO_REGISTRY=distribution uses the CNCF registry instead (for comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
npm run build --silent

data=$(mktemp -d "${TMPDIR:-/tmp}/ukc-demo-XXXXXX")
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

if [ "${DEMO_REGISTRY:-ukc}" = distribution ]; then
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s/store}, delete: {enabled: true}}\nhttp: {addr: "127.0.0.1:%s"}\n' \
    "$data" "$port" >"$data/config.yml"
  docker-registry serve "$data/config.yml" &
else
  node bin/ukcd.js registry --listen "127.0.0.1:$port" --data "$data" &
fi
pid=$!

for _ in $(seq 1 100); do
  if curl -fs -o /dev/null "http://127.0.0.1:$port/v2/"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "demo: the registry exited" >&2; exit 1; fi
  sleep 0.1
done
echo "registry listening on 127.0.0.1:$port (data in $data)"
node dist/src/client/demo.js "127.0.0.1:$port" demo/hello:latest
