#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The suite again with the pthread mutex+condvar parker instead of futex.
set -euo pipefail
make condvar
