#!/usr/bin/env bash
# Regenerates the committed sqlx query cache (.sqlx/) from the migrations, without sqlx-cli:
# the query macros write their data to SQLX_OFFLINE_DIR while checking against a scratch database.
#   scripts/sqlx-prepare.sh          rewrite .sqlx/
#   scripts/sqlx-prepare.sh --check  fail if .sqlx/ is stale
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
mkdir -p target/sqlx-prepare
schema=target/sqlx-prepare/schema.db
out=target/sqlx-prepare/queries
rm -rf "$schema" "$out" && mkdir -p "$out"
cat migrations/*.sql | sqlite3 "$schema"
# A target dir of its own, cleaned of the core crate so its macros run again, leaves the main
# build's artifacts untouched.
export CARGO_TARGET_DIR=target/sqlx-prepare/target
cargo clean -q -p pinpoint-hibob-core
SQLX_OFFLINE=false DATABASE_URL="sqlite://$PWD/$schema" SQLX_OFFLINE_DIR="$PWD/$out" \
  cargo check -q -p pinpoint-hibob-core --all-targets
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$out" .sqlx >/dev/null; then
    echo "the .sqlx/ query cache is stale: run scripts/sqlx-prepare.sh and commit .sqlx/" >&2
    diff -r "$out" .sqlx >&2 || true
    exit 1
  fi
  echo "sqlx query cache is current"
else
  rm -rf .sqlx && cp -r "$out" .sqlx
  echo "wrote $(ls .sqlx | wc -l) queries to .sqlx/"
fi
