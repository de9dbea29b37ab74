#!/usr/bin/env bash
# Page-load benchmark (results in BENCHMARKS.md): builds the release console with precompressed
# assets as scripts/run.sh does, starts it in sandbox mode on a scratch database, and loads the
# dashboard and the mappings editor cold and warm in Chromium at 10 Mbit/s and 40 ms.
#   scripts/page-load-bench.sh            (RUNS=5 by default; ALSO_UNCOMPRESSED=1 adds a baseline)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo leptos build --release --precompress
dir=$(mktemp -d)
port=${BENCH_PORT:-3998}
password="page load bench password"
DATABASE_URL="sqlite://$dir/bench.db" LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT=target/site \
  ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD="$password" RUST_LOG=warn \
  target/release/pinpoint-hibob >"$dir/console.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 60); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 1
done
BASE_URL="http://127.0.0.1:$port" EMAIL=admin@example.com PASSWORD="$password" \
  NODE_PATH=end2end/node_modules node end2end/bench/page-load.mjs
