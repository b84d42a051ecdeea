#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds a libFuzzer target with clang (gcc has no libFuzzer, so this is
# not part of the default CMake build):
#   sh fuzz/build.sh [OUTDIR] [TARGET]  -> OUTDIR/TARGET from fuzz/TARGET.c
# OUTDIR defaults to build-fuzz, TARGET to mempipe_fuzz (the other one is
# shm_fuzz, the scribbling peer of the shm pipes).
# The library sources are taken from MEMPIPE_SOURCES in the top-level
# CMakeLists.txt, so the target always fuzzes what the library builds.
set -eu
cd "$(dirname "$0")/.."
out=${1:-build-fuzz}
target=${2:-mempipe_fuzz}
mkdir -p "$out"
srcs=$(sed -n '/^set(MEMPIPE_SOURCES/,/^)/p' CMakeLists.txt |
    grep -o 'src/[A-Za-z0-9_]*\.c')
futex=""
[ "$(uname -s)" = Linux ] && futex="-DMEMPIPE_USE_FUTEX=1"
# shellcheck disable=SC2086
${CLANG:-clang} -std=c11 -g -O1 -Wall -Wextra -Wpedantic -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer \
    -D_GNU_SOURCE -DMEMPIPE_STATIC -DMEMPIPE_BUILDING $futex \
    -Iinclude -Isrc $srcs "fuzz/$target.c" -lpthread \
    ${EXTRA_CFLAGS:-} -o "$out/$target"
echo "built $out/$target"
