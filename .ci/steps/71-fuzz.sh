#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libFuzzer: replays fuzz/regressions/ (every crash ever found) and the seed
# corpus, then fuzzes for FUZZ_SECONDS (60) from the corpus. A new crash
# leaves its input in build-fuzz/artifacts/: add it to fuzz/regressions/.
set -euo pipefail
cd "$(dirname "$0")/../.."
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
