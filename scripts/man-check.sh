#!/bin/sh
# SPDX-License-Identifier: MIT
# Renders every man page given (files, or directories of *.[37] pages) with
# man --warnings and groff -ww; any warning, from either, fails.
#   scripts/man-check.sh build/man
set -eu
[ $# -gt 0 ] || { echo "usage: $0 DIR|PAGE..." >&2; exit 2; }
pages=""
for a in "$@"; do
    if [ -d "$a" ]; then
        pages="$pages $(find "$a" -name '*.[37]' | sort | tr '\n' ' ')"
    else
        pages="$pages $a"
    fi
done
err=$(mktemp)
trap 'rm -f "$err"' EXIT
n=0
bad=0
for p in $pages; do
    n=$((n + 1))
    MANWIDTH=80 man --warnings -E UTF-8 -l "$p" >/dev/null 2>"$err" || bad=1
    groff -man -ww -z "$p" 2>>"$err" || bad=1
    if [ -s "$err" ]; then
        sed "s|^|$p: |" "$err" >&2
        bad=1
    fi
done
[ "$n" -gt 0 ] || { echo "man-check: no pages in $*" >&2; exit 1; }
if [ "$bad" != 0 ]; then
    echo "man-check: warnings (above) in the pages" >&2
    exit 1
fi
echo "man-check: $n pages, no warnings"
