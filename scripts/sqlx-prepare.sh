#!/usr/bin/env bash
# Regenerates the committed sqlx query caches from the migrations, without sqlx-cli: the query
# macros write their data to SQLX_OFFLINE_DIR while checking against a scratch database. One cache
# per engine crate, each checked against its own engine:
#   .sqlx/                  the core's SQLite queries (migrations/)
#   stores/postgres/.sqlx/  the PostgreSQL store's queries (stores/postgres/migrations/)
#   scripts/sqlx-prepare.sh          rewrite both
#   scripts/sqlx-prepare.sh --check  fail if either is stale
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
work=target/sqlx-prepare
mkdir -p "$work"
# A target dir of its own, cleaned of each checked crate so its macros run again, leaves the
# main build's artifacts untouched. Every build has the same sqlx features, so checking one
# crate online does not rebuild the other.
export CARGO_TARGET_DIR=$work/target

# the generated cache in $2 against the committed one in $3, or copied over it
settle() {
  local name=$1 out=$2 committed=$3
  if [ "$mode" = --check ]; then
    if ! diff -r "$out" "$committed" >/dev/null 2>&1; then
      echo "the $name query cache $committed is stale: run scripts/sqlx-prepare.sh and commit it" >&2
      diff -r "$out" "$committed" >&2 || true
      exit 1
    fi
    echo "$name query cache is current"
  else
    rm -rf "$committed" && cp -r "$out" "$committed"
    echo "wrote $(ls "$committed" | wc -l) $name queries to $committed/"
  fi
}
mode="${1:-}"

schema=$work/schema.db
out=$work/queries
rm -rf "$schema" "$out" && mkdir -p "$out"
cat migrations/*.sql | sqlite3 "$schema"
cargo clean -q -p pinpoint-hibob-core
SQLX_OFFLINE=false DATABASE_URL="sqlite://$PWD/$schema" SQLX_OFFLINE_DIR="$PWD/$out" \
  cargo check -q -p pinpoint-hibob-core --all-targets
settle SQLite "$out" .sqlx

# a cluster of its own (SQLX_PREPARE_PG_PORT picks its port), stopped however this ends
export PG_DEV_PORT="${SQLX_PREPARE_PG_PORT:-55433}"
trap 'scripts/pg-dev.sh stop' EXIT
url=$(scripts/pg-dev.sh url prepare)
out=$work/queries-pg
rm -rf "$out" && mkdir -p "$out"
# the core first, offline from its cache and with the features this crate's tests unify to, so
# the online check below does not rebuild it against PostgreSQL (this check fails on the
# store's own queries until its cache exists, and that is expected)
cargo check -q -p pinpoint-hibob-store-postgres --all-targets >/dev/null 2>&1 || true
cargo clean -q -p pinpoint-hibob-store-postgres
SQLX_OFFLINE=false DATABASE_URL="$url" SQLX_OFFLINE_DIR="$PWD/$out" \
  cargo check -q -p pinpoint-hibob-store-postgres --all-targets
settle PostgreSQL "$out" stores/postgres/.sqlx
