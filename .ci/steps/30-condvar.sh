#!/usr/bin/env bash
# The suite again with the pthread mutex+condvar parker instead of futex.
set -euo pipefail
make condvar
