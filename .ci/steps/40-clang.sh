#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole tree again with clang instead of gcc, warnings as errors: library,
# tests, examples, benchmarks and any adapter whose dependency is found.
set -euo pipefail
dir=build-ci-clang
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DMEMPIPE_WERROR=ON >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)"
cd "$dir" && ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)"
