#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs mempipe into a temporary prefix with `cmake --install`, then builds
# examples/consumer against that install twice, as a user's project would:
# once through pkg-config (its Makefile), once through find_package (its
# CMakeLists.txt, shared and static targets). Every binary must run.
set -euo pipefail
cd "$(dirname "$0")/../.."
sh scripts/deps.sh test

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake -S . -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DMEMPIPE_BUILD_TESTS=OFF \
    -DMEMPIPE_BUILD_EXAMPLES=OFF -DMEMPIPE_BUILD_BENCH=OFF >/dev/null
cmake --build "$tmp/build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
# --prefix at install time: the .pc files and the CMake package must work
# wherever the tree lands, not only at the configured prefix.
cmake --install "$tmp/build" --prefix "$prefix" >/dev/null

echo "installed:"
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')
pcfile=$(find "$prefix" -name mempipe.pc | head -n 1)
test -n "$pcfile" || { echo "mempipe.pc not installed" >&2; exit 1; }
pc=$(dirname "$pcfile")
libdir=$(dirname "$pc")
test -e "$prefix/include/mempipe.h" || { echo "mempipe.h not installed" >&2; exit 1; }
# The scripted peer's header is the core's, installed with or without adapters.
test -e "$prefix/include/mempipe/script.h" || { echo "mempipe/script.h not installed" >&2; exit 1; }
test -e "$libdir/libmempipe.a" || { echo "libmempipe.a not installed" >&2; exit 1; }
soname=$(objdump -p "$libdir/libmempipe.so" | awk '/SONAME/ {print $2}')
echo "SONAME: $soname"
test "$soname" = "libmempipe.so.0" || { echo "unexpected SONAME" >&2; exit 1; }

echo "== consumer through pkg-config"
PKG_CONFIG_PATH=$pc make -s -C examples/consumer OUT="$tmp"
LD_LIBRARY_PATH=$libdir "$tmp/consumer-pc"
# It must really use the installed shared library.
# (ldd's output is kept first: grep -q exiting early under pipefail would
# fail the pipe with SIGPIPE.)
deps=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer-pc")
grep -q "$libdir/libmempipe.so.0" <<<"$deps"

echo "== consumer through find_package(mempipe)"
cmake -S examples/consumer -B "$tmp/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/consumer-build" >/dev/null
"$tmp/consumer-build/consumer"        # the installed .so, found by RPATH
"$tmp/consumer-build/consumer_static" # libmempipe.a linked in
deps=$(ldd "$tmp/consumer-build/consumer_static")
if grep -q libmempipe <<<"$deps"; then
    echo "consumer_static links libmempipe dynamically" >&2
    exit 1
fi

# The OpenSSL adapter through find_package(mempipe COMPONENTS openssl).
if [ -e "$tmp/consumer-build/consumer_tls" ]; then
    "$tmp/consumer-build/consumer_tls"
fi

# Each installed adapter's pkg-config file must resolve too.
for a in openssl uv event; do
    if [ -e "$pc/mempipe-$a.pc" ]; then
        PKG_CONFIG_PATH=$pc pkg-config --exists --print-errors "mempipe-$a"
        echo "mempipe-$a.pc: $(PKG_CONFIG_PATH=$pc pkg-config --libs "mempipe-$a")"
    fi
done
echo "install OK"
