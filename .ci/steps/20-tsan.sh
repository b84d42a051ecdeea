#!/usr/bin/env bash
# The whole suite under ThreadSanitizer.
set -euo pipefail
make tsan
