#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/script_http: a tiny HTTP client against a scripted server; the
# first request follows the script, the second must be caught as a mismatch.
# Uses the build/ tree that `make test` built.
set -euo pipefail
exe="${BUILD:-build}/examples/script_http"
if [ ! -x "$exe" ]; then
    echo "script_http: $exe was not built" >&2
    exit 1
fi
out=$("$exe")
echo "$out"
grep -q "all steps matched" <<<"$out"
grep -q "mismatch at byte 6 of the step" <<<"$out"
