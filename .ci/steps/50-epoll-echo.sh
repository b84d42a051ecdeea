#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One thread, one epoll set: 1,000 echo pairs over mempipe's pollable fds,
# then over 1,000 socketpairs; checks every echoed byte, prints both rates.
# Uses the build/ tree that `make test` built.
set -euo pipefail
exe="${BUILD:-build}/examples/epoll_echo"
if [ ! -x "$exe" ]; then
    echo "epoll_echo: $exe was not built (not Linux?)" >&2
    exit 1
fi
"$exe" 1000 1.5
