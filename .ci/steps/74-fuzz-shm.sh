#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The shm pipes' scribbling peer (fuzz/shm_fuzz.c, docs/shm.md's test
# plan): replays fuzz/shm-corpus/ (and fuzz/shm-regressions/), then fuzzes
# for FUZZ_SECONDS (60) from the corpus. A crash, a failed check or a hang
# (20 s) leaves its input in build-fuzz/shm-artifacts/. gcc has no
# libFuzzer: the target is checked to compile warning-free with it too.
set -euo pipefail
cd "$(dirname "$0")/../.."
gcc -std=c11 -fsyntax-only -Wall -Wextra -Wpedantic -Werror -D_GNU_SOURCE \
    -DMEMPIPE_STATIC -DMEMPIPE_BUILDING -Iinclude -Isrc fuzz/shm_fuzz.c
make fuzz-shm FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
