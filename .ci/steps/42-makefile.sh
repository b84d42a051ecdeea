#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Makefile as a user meets it:
#  - `make help` lists every .PHONY target of the Makefile and mk/*.mk, each
#    with a description;
#  - `make CMAKE_ARGS=-DMEMPIPE_BUILD_TESTS=OFF` with no cmocka around (an
#    empty pkg-config search path) does not ask for libcmocka-dev, and shows
#    the configure summary, adapters not found included;
#  - a second `make` keeps the build's arguments (no reconfigure); new
#    CMAKE_ARGS reconfigure it, quoted values intact;
#  - `make install PREFIX=... DESTDIR=...` installs under DESTDIR/PREFIX;
#  - a test that skips (trace_test without USDT, outside CI) is reported by
#    CTest as skipped, not passed, and make test shows why.
set -euo pipefail
cd "$(dirname "$0")/../.."
sh scripts/deps.sh test
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "makefile: $*" >&2; exit 1; }
b=$tmp/build

echo "== make help"
make -s help >"$tmp/help"
cat "$tmp/help"
! grep -q "no description" "$tmp/help" || fail "a target has no description"
for t in $(sed -n 's/^\.PHONY://p' Makefile mk/*.mk); do
    grep -q "^  make $t " "$tmp/help" || fail "make help does not list $t"
done

echo "== make CMAKE_ARGS=-DMEMPIPE_BUILD_TESTS=OFF, no cmocka"
mkdir -p "$tmp/empty"
PKG_CONFIG_LIBDIR=$tmp/empty make BUILD="$b" CMAKE_ARGS=-DMEMPIPE_BUILD_TESTS=OFF all \
    >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/out" "$tmp/err"; fail "make failed"; }
! grep -q libcmocka "$tmp/err" || { cat "$tmp/err"; fail "scripts/deps.sh asked for cmocka"; }
grep '^mempipe:' "$tmp/out"
grep -q '^mempipe:   tests  *OFF' "$tmp/out" || fail "no configure summary shown"
grep -q '^mempipe:     not built     uv (pkg-config found no libuv' "$tmp/out" ||
    fail "the summary does not say why the libuv adapter was not built"

echo "== make again: the same arguments, no reconfigure"
make BUILD="$b" all >"$tmp/out2"
! grep -q '^cmake -S' "$tmp/out2" || fail "reconfigured without a change"
grep -q '^MEMPIPE_BUILD_TESTS:BOOL=OFF' "$b/CMakeCache.txt" || fail "CMAKE_ARGS forgotten"

echo "== make with other CMAKE_ARGS: reconfigured from a fresh cache"
make BUILD="$b" CMAKE_ARGS='-DMEMPIPE_BUILD_TESTS=OFF -DCMAKE_C_FLAGS="-O1 -g"' all >"$tmp/out3"
grep -q '^cmake -S' "$tmp/out3" || fail "new CMAKE_ARGS did not reconfigure"
grep -q '^CMAKE_C_FLAGS:STRING=-O1 -g$' "$b/CMakeCache.txt" || fail "a quoted CMAKE_ARGS value was split"

echo "== make install PREFIX=/opt/mempipe DESTDIR=..."
make BUILD="$b" install PREFIX=/opt/mempipe DESTDIR="$tmp/dest" >/dev/null
for f in include/mempipe.h lib/pkgconfig/mempipe.pc lib/cmake/mempipe/mempipeConfig.cmake; do
    [ -e "$tmp/dest/opt/mempipe/$f" ] || fail "$f not installed under DESTDIR/PREFIX"
done
find "$tmp/dest/opt/mempipe" -name 'libmempipe.*' | grep -q . || fail "no library installed"
echo "== make test with -DMEMPIPE_USDT=OFF: trace_test is skipped, and says why"
env -u CI make BUILD="$tmp/nousdt" CMAKE_ARGS=-DMEMPIPE_USDT=OFF CTEST_ARGS='-R ^trace_test$' test \
    >"$tmp/out4" 2>&1 || { cat "$tmp/out4"; fail "make test failed"; }
grep -E 'trace_test|skipped' "$tmp/out4"
grep -q 'trace_test \.*\*\*\*Skipped' "$tmp/out4" || fail "CTest did not report trace_test as skipped"
grep -q '^  skipped: trace_test: SKIPPED: built without USDT' "$tmp/out4" || fail "the reason was not shown"
echo "makefile OK"
