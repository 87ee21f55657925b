#!/usr/bin/env bash
# Gateway throughput with wrk (Debian's `wrk`): authenticated GET /api/inventory/ (10 products;
# each request validates the token with auth and lists through inventory) against GET /healthz
# (a trivial axum handler behind the same middleware), in one run on the release stack. Prints
# both and their ratio. Loopback only; about 30 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}

data=$(mktemp -d)
cargo build --release --quiet
DATA_DIR=$data THROTTLE_AUTH_RATE=off RUST_LOG=warn target/release/stack >"$data/stack.log" 2>&1 &
stack=$!
trap 'kill -INT $stack 2>/dev/null; wait $stack 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf localhost:8000/readyz >/dev/null && break; sleep 0.2; done

DATA_DIR=$data AUTH_SUPERUSER_PASSWORD=Bench12345 target/release/stack createsuperuser --username bench >/dev/null
token=$(curl -sf -X POST localhost:8000/api/login/ -H 'Content-Type: application/json' \
  -d '{"username": "bench", "password": "Bench12345"}' | sed -E 's/.*"token":"([0-9a-f]+)".*/\1/')
for i in $(seq 1 10); do
  curl -sf -o /dev/null -X POST localhost:8000/api/products/ -H "Authorization: Token $token" \
    -H 'Content-Type: application/json' -d "{\"name\": \"Item $i\", \"price\": \"$i.99\", \"quantity\": $i}"
done

# Requests per second; a run with any non-2xx answer is no figure at all.
rate() {
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$@")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw failed requests:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
trivial=$(rate http://127.0.0.1:8000/healthz)
inventory=$(rate -H "Authorization: Token $token" http://127.0.0.1:8000/api/inventory/)
echo "gateway: GET /healthz (trivial axum handler): $trivial req/s"
echo "gateway: authenticated GET /api/inventory/ (10 products): $inventory req/s"
awk -v a="$inventory" -v b="$trivial" 'BEGIN { printf "gateway: ratio %.3f (%d connections, %s each)\n", a / b, '"$CONNECTIONS"', "'"$DURATION"'" }'
