#!/bin/sh
# Compiles the native sandbox launcher into dist/native/ukc-sandbox.
# Static, so it runs the same in any rootfs and starts without the dynamic loader.
set -eu
cd "$(dirname "$0")/.."
mkdir -p dist/native
${CC:-cc} -O2 -Wall -Wextra -Werror -static -o dist/native/ukc-sandbox.tmp src/sandbox/native/ukc-sandbox.c
mv dist/native/ukc-sandbox.tmp dist/native/ukc-sandbox
