#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The adapters' examples, each a complete program that exits non-zero if
# its exchange went wrong: tls_echo (OpenSSL), gnutls_echo, mbedtls_echo,
# uv_echo, event_echo, h2_client_server (nghttp2), glib_echo. Builds them in
# the build/ tree that `make test` made, then runs each. An example whose
# source is not in the tree yet is skipped; one whose adapter was not built
# is skipped too, except under CI (scripts/deps.sh ci installs every
# adapter's library).
set -euo pipefail
build="${BUILD:-build}"
targets=$(cmake --build "$build" --target help)
ran=0
for ex in tls_echo gnutls_echo mbedtls_echo uv_echo event_echo h2_client_server glib_echo; do
    if [ ! -e "examples/$ex.c" ]; then
        echo "$ex: no examples/$ex.c yet, skipped"
        continue
    fi
    if ! grep -q "mempipe_example_$ex\$" <<<"$targets"; then
        if [ -n "${CI:-}" ]; then
            echo "$ex: its adapter was not built (scripts/deps.sh ci installs its library)" >&2
            exit 1
        fi
        echo "$ex: its adapter was not built here, skipped"
        continue
    fi
    cmake --build "$build" -j 2 --target "mempipe_example_$ex" >/dev/null
    exe=$(find "$build" -name "$ex" -type f -perm -u+x | head -n 1)
    echo "== $ex"
    timeout 60 "$exe"
    ran=$((ran + 1))
done
echo "adapter examples: $ran ran"
