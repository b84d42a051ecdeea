#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The suite again with pollable fds made by the pipe(2) fallback, not eventfd.
set -euo pipefail
make fdpipe
