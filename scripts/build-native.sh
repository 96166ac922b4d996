#!/bin/sh
# Compiles the native helpers into dist/native/: ukc-sandbox (the sandbox launcher, from the
# files of src/sandbox/native/ukc-sandbox/) and ukc-netns (builds instance network namespaces
# over rtnetlink). Static, so they run the same in any rootfs and start without the dynamic loader.
# Warnings are errors. UKC_NATIVE_FLAGS replaces -static (e.g. the sanitizer build of the
# launcher test); UKC_NATIVE_OUT changes the output directory.
# The launcher's seccomp profile (ukc-sandbox/seccomp-profile.h) is compiled to BPF first, by
# gen/seccomp-gen.c linked with Debian's libseccomp (libseccomp-dev), run on this machine.
set -eu
cd "$(dirname "$0")/.."
out=${UKC_NATIVE_OUT:-dist/native}
mkdir -p "$out/gen"
${CC:-cc} -O2 -Wall -Wextra -Werror -o "$out/gen/seccomp-gen" src/sandbox/native/ukc-sandbox/gen/seccomp-gen.c -lseccomp
"$out/gen/seccomp-gen" > "$out/gen/seccomp-bpf.gen.h.tmp"
mv "$out/gen/seccomp-bpf.gen.h.tmp" "$out/gen/seccomp-bpf.gen.h"
for tool in ukc-sandbox ukc-netns; do
  if [ -d "src/sandbox/native/$tool" ]; then srcs="src/sandbox/native/$tool/*.c"; else srcs="src/sandbox/native/$tool.c"; fi
  # shellcheck disable=SC2086 # srcs is a glob and the flags a list on purpose
  ${CC:-cc} -O2 -Wall -Wextra -Werror ${UKC_NATIVE_FLAGS:--static} -I"$out/gen" -o "$out/$tool.tmp" $srcs
  mv "$out/$tool.tmp" "$out/$tool"
done
