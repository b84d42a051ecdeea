#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/consumer, a project with a program named hello of its own, gets
# mempipe the three ways CMake offers: find_package from an install prefix,
# add_subdirectory and FetchContent (SOURCE_DIR of this checkout). pkg-config
# finds nothing (cmocka included): inside a parent, mempipe must build
# without its tests' dependencies. Checked each time: the parent's build type
# stays its own (none stays empty, Debug stays Debug), both programs run, and
# an embedded mempipe installs nothing into the parent's install tree. Then:
# every optional part switched on inside the parent (no target collides with
# its hello; each adapter's program of the parent builds and runs), and
# BUILD_SHARED_LIBS=OFF (only the static library is built).
set -euo pipefail
cd "$(dirname "$0")/../.."
sh scripts/deps.sh test
src=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "subproject: $*" >&2; exit 1; }
# cached BUILD-DIR VAR: the value of VAR in BUILD-DIR's CMakeCache.txt.
cached() { sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt"; }
build() { # build DIR CMAKE-ARGS...: configure the consumer, build it
    local dir=$1
    shift
    cmake -S examples/consumer -B "$dir" "$@" >"$dir.log" 2>&1 || { cat "$dir.log"; fail "configure failed: $*"; }
    cmake --build "$dir" -j "$jobs" >>"$dir.log" 2>&1 || { cat "$dir.log"; fail "build failed: $*"; }
}
check_parent() { # check_parent DIR WANT-BUILD-TYPE: the parent's cache, its programs
    local dir=$1 want=$2 got
    got=$(cached "$dir" CMAKE_BUILD_TYPE)
    [ "$got" = "$want" ] || fail "$dir: CMAKE_BUILD_TYPE is '$got', the parent set '$want'"
    "$dir/hello" | grep -q "project that uses mempipe" || fail "$dir/hello is not the parent's"
    "$dir/consumer"
}
check_installs_nothing() { # check_installs_nothing DIR
    cmake --install "$1" --prefix "$1-inst" >/dev/null
    [ -x "$1-inst/bin/hello" ] || fail "$1: the parent's own install rule did not run"
    if find "$1-inst" | grep -q mempipe; then
        find "$1-inst" | grep mempipe >&2
        fail "$1: an embedded mempipe installed itself into the parent's prefix"
    fi
}

(
    export PKG_CONFIG_LIBDIR=$tmp/empty PKG_CONFIG_PATH=
    mkdir -p "$PKG_CONFIG_LIBDIR"
    ! pkg-config --exists cmocka || fail "pkg-config still finds cmocka"

    echo "== find_package(mempipe) from an install prefix"
    cmake -S . -B "$tmp/lib" -DCMAKE_BUILD_TYPE=Release -DMEMPIPE_WERROR=ON \
        -DMEMPIPE_BUILD_TESTS=OFF -DMEMPIPE_BUILD_EXAMPLES=OFF -DMEMPIPE_BUILD_BENCH=OFF >/dev/null
    cmake --build "$tmp/lib" -j "$jobs" >/dev/null
    cmake --install "$tmp/lib" --prefix "$tmp/prefix" >/dev/null
    build "$tmp/pkg" -DCMAKE_PREFIX_PATH="$tmp/prefix"
    check_parent "$tmp/pkg" ""
    "$tmp/pkg/consumer_static"

    echo "== add_subdirectory(mempipe), parent without a build type"
    build "$tmp/sub" -DMEMPIPE_FROM=subdirectory -DMEMPIPE_SOURCE_DIR="$src"
    check_parent "$tmp/sub" ""
    "$tmp/sub/consumer_static"
    for part in tests examples bench adapters; do
        [ ! -e "$tmp/sub/mempipe/$part" ] || fail "mempipe's $part were built inside the parent"
    done
    check_installs_nothing "$tmp/sub"

    echo "== FetchContent(mempipe SOURCE_DIR), parent with Debug"
    build "$tmp/fetch" -DMEMPIPE_FROM=fetchcontent -DMEMPIPE_SOURCE_DIR="$src" \
        -DCMAKE_BUILD_TYPE=Debug
    check_parent "$tmp/fetch" Debug
    check_installs_nothing "$tmp/fetch"

    echo "== FetchContent with BUILD_SHARED_LIBS=OFF: the static library only"
    build "$tmp/static" -DMEMPIPE_FROM=fetchcontent -DMEMPIPE_SOURCE_DIR="$src" \
        -DBUILD_SHARED_LIBS=OFF
    check_parent "$tmp/static" ""
    ! find "$tmp/static" -name 'libmempipe.so*' | grep -q . || fail "libmempipe.so was built"
    ! ldd "$tmp/static/consumer" | grep -q libmempipe || fail "consumer links libmempipe.so"
)

echo "== add_subdirectory with every optional part on (pkg-config as usual)"
# Every mempipe target next to the parent's own hello: the configure fails
# on any name collision. Then the parent's hello and mempipe's own run.
cmake -S examples/consumer -B "$tmp/all" -DMEMPIPE_FROM=subdirectory -DMEMPIPE_SOURCE_DIR="$src" \
    -DMEMPIPE_BUILD_TESTS=ON -DMEMPIPE_BUILD_EXAMPLES=ON -DMEMPIPE_BUILD_BENCH=ON \
    -DMEMPIPE_BUILD_ADAPTERS=ON >"$tmp/all.log" 2>&1 || { cat "$tmp/all.log"; fail "configure failed"; }
cmake --build "$tmp/all" -j "$jobs" --target hello mempipe_example_hello >/dev/null
"$tmp/all/hello" | grep -q "project that uses mempipe" || fail "the parent's hello was replaced"
"$tmp/all/mempipe/examples/hello" >/dev/null
# The adapters embedded: the parent's program for each adapter mempipe built
# there (examples/consumer/<adapter>.c, linking mempipe::mempipe_<adapter>
# only). Under CI, every adapter with such a program must have been built.
made=$(cmake --build "$tmp/all" --target help | sed -n 's/^\.\.\. consumer_\([a-z0-9]*\)$/\1/p')
for f in examples/consumer/*.c; do
    a=$(basename "$f" .c)
    case $a in main | hello) continue ;; esac
    if ! grep -qx "$a" <<<"$made"; then
        [ -z "${CI:-}" ] || fail "the $a adapter was not built inside the parent (scripts/deps.sh ci)"
        echo "adapter $a: not built here, skipped"
        continue
    fi
    cmake --build "$tmp/all" -j "$jobs" --target "consumer_$a" >/dev/null
    "$tmp/all/consumer_$a"
done
echo "subproject OK"
