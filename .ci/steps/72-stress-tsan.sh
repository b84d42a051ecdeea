#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# stress/stress.c for 60 s under ThreadSanitizer (its own build directory):
# threads, pipes, blocking and poll calls, re-entrant wakers, racing closes.
set -euo pipefail
cd "$(dirname "$0")/../.."
make stress-tsan STRESS_SECONDS="${STRESS_SECONDS:-60}"
