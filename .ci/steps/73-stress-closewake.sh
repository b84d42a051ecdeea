#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 15, R32: tests/closewake_test.c, whose randomized part has wakers
# close ends (their own, the peer, both) at random moments while the other
# threads keep calling, run for CLOSEWAKE_SECONDS (default 30) under
# ASan+UBSan and then under TSan. It reuses the trees of make asan and make
# tsan (steps 10 and 20 built them, so nothing is rebuilt) and runs only
# closewake_test there: about 35 s each.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MEMPIPE_CLOSEWAKE_SECONDS="${CLOSEWAKE_SECONDS:-30}"
make asan CTEST_ARGS="-R closewake"
make tsan CTEST_ARGS="-R closewake"
