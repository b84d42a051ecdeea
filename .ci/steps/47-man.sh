#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Man pages (cmake/man.cmake, tools/mangen.c), in the build `make test` made:
#   - every generated page renders with no warning (scripts/man-check.sh);
#   - `cmake --install` into a temporary prefix puts one man3 page per public
#     function of each installed header (counted here with grep, not by the
#     generator) and mempipe.7 plus one page per adapter into man7 (the
#     scripted peer's mempipe/script.h is the core's: no man7 page);
#   - the generator fails on a public function without a comment, and copes
#     with a multi-line prototype with a function-pointer parameter.
set -euo pipefail
cd "$(dirname "$0")/../.."
sh scripts/deps.sh ci
build=${BUILD:-build}
if [ ! -f "$build/CMakeCache.txt" ]; then
    make BUILD="$build" all JOBS=2
fi
cmake --build "$build" -j 2 >/dev/null
test -d "$build/man" || { echo "no $build/man: is MEMPIPE_BUILD_MAN off?" >&2; exit 1; }

echo "== render"
sh scripts/man-check.sh "$build/man"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
man3=$prefix/share/man/man3
man7=$prefix/share/man/man7

echo "== one page per public function of each installed header"
# The names declared MEMPIPE_EXTERN, however the prototype is laid out.
names() {
    grep -v '^[[:space:]]*#' "$1" | tr '\n' ' ' | grep -o 'MEMPIPE_EXTERN[^;(]*(' | sed 's/ *($//; s/.*[ *]//'
}
want3=0
want7=1 # mempipe.7
for h in "$prefix"/include/mempipe.h "$prefix"/include/mempipe/*.h; do
    [ -e "$h" ] || continue
    n=0
    for f in $(names "$h"); do
        test -s "$man3/$f.3" || { echo "no man page for $f ($h)" >&2; exit 1; }
        n=$((n + 1))
    done
    test "$n" -gt 0 || { echo "no MEMPIPE_EXTERN function found in $h" >&2; exit 1; }
    echo "  ${h#"$prefix"/include/}: $n functions"
    want3=$((want3 + n))
    case $h in
    */mempipe/script.h) ;; # part of the core library: no man7 page
    */mempipe/*.h)
        a=$(basename "$h" .h)
        test -s "$man7/mempipe_$a.7" || { echo "no mempipe_$a.7" >&2; exit 1; }
        want7=$((want7 + 1))
        ;;
    esac
done
test -s "$man7/mempipe.7" || { echo "mempipe.7 not installed" >&2; exit 1; }
got3=$(find "$man3" -name '*.3' | wc -l)
got7=$(find "$man7" -name '*.7' | wc -l)
echo "  man3: $got3 pages (want $want3), man7: $got7 pages (want $want7)"
test "$got3" -eq "$want3" && test "$got7" -eq "$want7"
# mempipe(7) lists every function.
for p in "$man3"/*.3; do
    grep -q "^\.BR $(basename "$p" .3) (3)\$" "$man7/mempipe.7" ||
        { echo "mempipe.7 does not list $(basename "$p" .3)" >&2; exit 1; }
done

echo "== the generator on a made-up header"
gen=$build/mempipe_mangen
mkdir -p "$tmp/include" "$tmp/out"
cat >"$tmp/include/t.h" <<'H'
#define T_VERSION_MAJOR 1
#define T_VERSION_MINOR 2
#define T_VERSION_PATCH 3
/*
 * Calls fn for every chunk. See t_other().
 * Returns 0.
 * Errors: -EINVAL if end is NULL; -EBADF for a reader end.
 */
MEMPIPE_EXTERN int t_tap(void *end,
                         void (*fn)(void *ctx, int dir, const void *data,
                                    size_t len),
                         void *ctx);
/* Another one. */
MEMPIPE_EXTERN const char *t_other(void);
H
"$gen" -o "$tmp/out" "$tmp/include/t.h"
grep -q 'void (\*fn)(void \*ctx, int dir, const void \*data, size_t len),' "$tmp/out/t_tap.3"
grep -q '^\.B "\\-EBADF"' "$tmp/out/t_tap.3"
grep -q '^\.BR t_other (3),' "$tmp/out/t_tap.3"
grep -q '"mempipe 1\.2\.3"' "$tmp/out/t_other.3"
sh scripts/man-check.sh "$tmp/out"
# The same header with one function undocumented must fail, naming it.
sed '/Another one/d' "$tmp/include/t.h" >"$tmp/include/u.h"
if "$gen" -o "$tmp/out" "$tmp/include/u.h" 2>"$tmp/err"; then
    echo "mangen accepted an undocumented function" >&2
    exit 1
fi
grep -q 't_other has no comment' "$tmp/err"
echo "  undocumented function rejected: $(cat "$tmp/err")"
echo "man pages OK"
