#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The differential test against socketpair over a second, larger range of
# seeds than make test's 10,000 (seeds 1..10000). Deterministic: a failure
# prints its seed; replay it with MEMPIPE_DIFF_SEED=<seed> build/tests/diff_test.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
[ -x "$B/tests/diff_test" ] || make test
MEMPIPE_DIFF_BASE=1000001 MEMPIPE_DIFF_COUNT=40000 "$B/tests/diff_test"
