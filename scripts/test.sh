#!/usr/bin/env bash
# The test command: installs what is missing, then lint, typecheck and every test.
# Tests that need root (namespaces, mounts, cgroups) skip with a message when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
npm test -- "$@"
