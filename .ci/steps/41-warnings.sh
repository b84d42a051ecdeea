#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Warnings as errors is this project's CI's business, not its users':
#  1. a plain configure has no -Werror; MEMPIPE_WERROR=ON adds it, and both
#     `cmake --compile-no-warning-as-error` (CMake >= 3.24) and an explicit
#     -DCMAKE_COMPILE_WARNING_AS_ERROR=OFF take it away again;
#  2. the whole tree (library, tests, examples, bench, the adapters that are
#     found) builds with -Werror under gcc and clang, Debug and Release
#     (optimisation levels warn differently: -O3 -Wmaybe-uninitialized).
set -euo pipefail
cd "$(dirname "$0")/../.."
sh scripts/deps.sh ci
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# werror_in DIR: does any compile command of DIR carry -Werror?
werror_in() { grep -q -e '-Werror' "$1/compile_commands.json"; }
check() { # check EXPECT(yes|no) WHAT CMAKE-ARGS...
    local expect=$1 what=$2 got=no
    shift 2
    rm -rf "$tmp/cfg"
    cmake -S . -B "$tmp/cfg" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@" >/dev/null
    werror_in "$tmp/cfg" && got=yes
    echo "-Werror with $what: $got"
    [ "$got" = "$expect" ] || { echo "expected -Werror: $expect" >&2; exit 1; }
}
check no "a plain configure"
check yes "-DMEMPIPE_WERROR=ON" -DMEMPIPE_WERROR=ON
check no "-DMEMPIPE_WERROR=ON -DCMAKE_COMPILE_WARNING_AS_ERROR=OFF" \
    -DMEMPIPE_WERROR=ON -DCMAKE_COMPILE_WARNING_AS_ERROR=OFF
if cmake --help 2>/dev/null | grep -q -e '--compile-no-warning-as-error'; then
    check no "-DMEMPIPE_WERROR=ON --compile-no-warning-as-error" \
        -DMEMPIPE_WERROR=ON --compile-no-warning-as-error
fi

for cc in gcc clang; do
    for type in Debug Release; do
        b=$tmp/$cc-$type
        start=$(date +%s)
        cmake -S . -B "$b" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE="$type" \
            -DMEMPIPE_WERROR=ON >"$b.log" 2>&1 || { cat "$b.log"; exit 1; }
        cmake --build "$b" -j "$jobs" >>"$b.log" 2>&1 || { cat "$b.log"; exit 1; }
        echo "$cc $type: the whole tree builds with -Werror ($(($(date +%s) - start))s)"
    done
done
