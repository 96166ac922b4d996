#!/bin/sh
# Compiles the native helpers into dist/native/: ukc-sandbox (the sandbox launcher, from the
# files of src/sandbox/native/ukc-sandbox/) and ukc-netns (builds instance network namespaces
# over rtnetlink). Static, so they run the same in any rootfs and start without the dynamic loader.
# Warnings are errors. UKC_NATIVE_FLAGS adds flags (e.g. the sanitizer build of the launcher
# test); UKC_NATIVE_OUT changes the output directory.
set -eu
cd "$(dirname "$0")/.."
out=${UKC_NATIVE_OUT:-dist/native}
mkdir -p "$out"
for tool in ukc-sandbox ukc-netns; do
  if [ -d "src/sandbox/native/$tool" ]; then srcs="src/sandbox/native/$tool/*.c"; else srcs="src/sandbox/native/$tool.c"; fi
  # shellcheck disable=SC2086 # srcs is a glob on purpose
  ${CC:-cc} -O2 -Wall -Wextra -Werror ${UKC_NATIVE_FLAGS:--static} -o "$out/$tool.tmp" $srcs
  mv "$out/$tool.tmp" "$out/$tool"
done
