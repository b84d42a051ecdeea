#!/usr/bin/env bash
# The suite again with pollable fds made by the pipe(2) fallback, not eventfd.
set -euo pipefail
make fdpipe
