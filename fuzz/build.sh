#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer target with clang (gcc has no libFuzzer, so this is
# not part of the default CMake build):
#   sh fuzz/build.sh [OUTDIR]      -> OUTDIR/mempipe_fuzz (default build-fuzz)
# The library sources are taken from MEMPIPE_SOURCES in the top-level
# CMakeLists.txt, so the target always fuzzes what the library builds.
set -eu
cd "$(dirname "$0")/.."
out=${1:-build-fuzz}
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
    -Iinclude -Isrc $srcs fuzz/mempipe_fuzz.c -lpthread \
    ${EXTRA_CFLAGS:-} -o "$out/mempipe_fuzz"
echo "built $out/mempipe_fuzz"
