#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
make asan
