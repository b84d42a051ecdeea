#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/bridge_epoll: a thread-less bridge (mempipe_bridge_new/_step/
# _pollfds/_join) driven by one epoll loop between a mempipe end and a
# socketpair with an echo server on its other side; 4 MiB out and back,
# then EOF both ways. The program checks every byte and exits non-zero on
# any failure (or after 5 s with nothing moving); its last line must say ok.
# Uses the build/ tree that `make test` built.
set -euo pipefail
exe="${BUILD:-build}/examples/bridge_epoll"
if [ ! -x "$exe" ]; then
    echo "bridge_epoll: $exe was not built (not Linux?)" >&2
    exit 1
fi
out=$(timeout 60 "$exe" $((4 << 20)))
echo "$out"
grep -q 'then EOF, bridge closed cleanly: ok$' <<<"$out"
