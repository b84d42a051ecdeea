#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole suite under ThreadSanitizer.
set -euo pipefail
make tsan
