#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/bridge_tcp: the HTTP/1.0 responder of examples/http10.h, served
# on 127.0.0.1 through a bridge, fetched with curl (loopback only): 200 with
# its body, 404, then the server exits after the connections it was told.
# Uses the build/ tree that `make test` built.
set -euo pipefail
exe="${BUILD:-build}/examples/bridge_tcp"
command -v curl >/dev/null || { echo "curl missing: sh scripts/deps.sh ci"; exit 1; }
[ -x "$exe" ] || { echo "bridge_tcp: $exe was not built" >&2; exit 1; }
out=$(mktemp)
"$exe" 0 3 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
port=$(head -1 "$out")
body=$(curl -sS --max-time 10 "http://127.0.0.1:$port/hello")
[ "$body" = "hello from mempipe" ] || { echo "bridge_tcp: got '$body'"; exit 1; }
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")
[ "$code" = 404 ] || { echo "bridge_tcp: /nope gave $code"; exit 1; }
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --http1.0 "http://127.0.0.1:$port/hello")
[ "$code" = 200 ] || { echo "bridge_tcp: HTTP/1.0 gave $code"; exit 1; }
timeout 10 tail --pid=$pid -f /dev/null
wait $pid
echo "bridge_tcp: 200 'hello from mempipe', 404, 200 over HTTP/1.0, served on 127.0.0.1:$port"
