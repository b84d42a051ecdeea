#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/h2_client_server: an HTTP/2 client (a waker loop) and server (a
# blocking thread) over one duplex through the nghttp2 pump; GET /hello and
# POST /echo must come back as sent. Builds it in the build/ tree that
# `make test` made (where libnghttp2 was found), then runs it.
set -euo pipefail
build="${BUILD:-build}"
if ! pkg-config --exists libnghttp2; then
    if [ -n "${CI:-}" ]; then
        echo "h2_client_server: libnghttp2 not found (scripts/deps.sh ci installs libnghttp2-dev)" >&2
        exit 1
    fi
    echo "h2_client_server: skipped, libnghttp2 not found"
    exit 0
fi
cmake --build "$build" -j 2 --target mempipe_example_h2_client_server
out=$(timeout 60 "$build/adapters/h2_client_server")
echo "$out"
grep -q "HTTP/2 over mempipe: ok" <<<"$out"
