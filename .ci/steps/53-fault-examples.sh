#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The testing-features examples: http_faults (a parser under every read
# failure, chunk size and seed; exits non-zero if any run went wrong) and
# tap_hexdump (a tap's dump, checked against the end's statistics).
# Builds them in the build/ tree that `make test` made, then runs each.
set -euo pipefail
build="${BUILD:-build}"
cmake --build "$build" -j 2 --target mempipe_example_http_faults mempipe_example_tap_hexdump
timeout 60 "$build/examples/http_faults"
timeout 60 "$build/examples/tap_hexdump"
