#!/bin/sh
# Compiles the native helpers into dist/native/: ukc-sandbox (the sandbox launcher) and
# ukc-netns (builds instance network namespaces over rtnetlink).
# Static, so they run the same in any rootfs and start without the dynamic loader.
set -eu
cd "$(dirname "$0")/.."
mkdir -p dist/native
for tool in ukc-sandbox ukc-netns; do
  ${CC:-cc} -O2 -Wall -Wextra -Werror -static -o "dist/native/$tool.tmp" "src/sandbox/native/$tool.c"
  mv "dist/native/$tool.tmp" "dist/native/$tool"
done
