#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Formatting: every C file, tracked or new (not ignored), must match
# .clang-format exactly. Fix with `make format`.
set -euo pipefail
make format-check
