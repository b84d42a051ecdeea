#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark still builds and runs every workload (--quick: small sizes,
# one run). Nothing is asserted about speed; a hang or a wrong byte fails.
set -euo pipefail
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMEMPIPE_WERROR=ON -DMEMPIPE_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j 2 --target mempipe_bench
timeout 60 build-bench/bench/mempipe_bench --quick
