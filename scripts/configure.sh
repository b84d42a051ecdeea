#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Makefile's configure step (the `configure` macro):
#
#   scripts/configure.sh BUILD-DIR DEPS-LEVEL GIVEN [USER-ARGS...] -- [TARGET-ARGS...]
#
# USER-ARGS are make's CMAKE_ARGS, GIVEN is non-empty when the user gave
# CMAKE_ARGS (command line or environment), TARGET-ARGS the make target's
# own CMake arguments. The arguments are those of the last configure of
# BUILD-DIR ($BUILD-DIR/.mempipe-cmake-args) when CMAKE_ARGS is not given,
# so `make CMAKE_ARGS=... && sudo make install` installs what was built.
#
# It checks the Debian packages that the arguments need (scripts/deps.sh;
# -DMEMPIPE_BUILD_TESTS=OFF drops cmocka), then configures BUILD-DIR when it
# has never been configured or its arguments changed, from a fresh cache (so
# that an argument left out is also gone from the build), with warnings as
# errors (-DMEMPIPE_WERROR=ON, which CMAKE_ARGS may turn off), and prints
# CMake's configure summary. The whole output is in BUILD-DIR/configure.log.
set -euo pipefail
dir=$1 level=$2 given=$3
shift 3
user=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    user+=("$1")
    shift
done
[ $# -gt 0 ] && shift
stamp=$dir/.mempipe-cmake-args
if [ -z "$given" ] && [ -f "$stamp" ]; then
    eval "user=($(sed -n 1p "$stamp"))"
fi
args=(-DMEMPIPE_WERROR=ON "${user[@]}" "$@")
sh scripts/deps.sh "$level" "${args[@]}"

# Line 1: the user's arguments, line 2: all of them, shell-quoted.
want=$(printf '%q ' "${user[@]}"; echo; printf '%q ' "${args[@]}")
if [ -f "$dir/CMakeCache.txt" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
mkdir -p "$dir"
rm -f "$dir/CMakeCache.txt" "$stamp"
echo "cmake -S . -B $dir ${args[*]}"
if ! cmake -S . -B "$dir" "${args[@]}" >"$dir/configure.log"; then
    cat "$dir/configure.log"
    exit 1
fi
printf '%s\n' "$want" >"$stamp"
sed -n 's/^-- \(mempipe:\)/\1/p' "$dir/configure.log"
