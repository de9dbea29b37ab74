#!/usr/bin/env bash
# A PostgreSQL cluster for working on the PostgreSQL store: the query macros check its queries
# against a database with the schema (online), and scripts/sqlx-prepare.sh writes their cache.
#   scripts/pg-dev.sh url NAME   start the cluster if needed, (re)create database NAME with the
#                                baseline schema, print its URL
#   scripts/pg-dev.sh empty NAME the same with an empty database (for a console to migrate)
#   scripts/pg-dev.sh stop       stop the cluster and remove its folder
# The cluster listens on 127.0.0.1 only, runs as the postgres user when started by root, and
# keeps its data in memory when /dev/shm has room (fsync off: it is scratch). PG_DEV_DURABLE=1
# makes it a durable cluster on disk instead (fsync and synchronous_commit on), for benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PG_DEV_PORT:-55432}"
if [ -n "${PG_DEV_DURABLE:-}" ]; then
  DIR="${PG_DEV_DIR:-/var/tmp/pinpoint-hibob-pg-dev-$PORT}"
  SETTINGS="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
else
  # memory when it has room (a container's /dev/shm may be 64 MB), else /tmp; not the checkout,
  # whose folders the postgres user may not be allowed to enter
  shm_free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
  if [ "${shm_free_kb:-0}" -ge 1048576 ]; then base=/dev/shm; else base=/tmp; fi
  DIR="${PG_DEV_DIR:-$base/pinpoint-hibob-pg-dev-$PORT}"
  SETTINGS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -x "$BIN/initdb" ] || { echo "no PostgreSQL binaries: run scripts/setup.sh or set PG_BIN" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_() { PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }

case "${1:-}" in
  url|empty)
    name="${2:?a database name}"
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "database names are [a-z_][a-z0-9_]*" >&2; exit 1; }
    if ! psql_ -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
      rm -rf "$DIR" && mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
      as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --locale=C.UTF-8 >/dev/null
      as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start -o \
        "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR $SETTINGS -c max_connections=200" >/dev/null
    fi
    # "postgres", the maintenance database, is only named (a benchmark creates its own beside it)
    if [ "$name" != postgres ]; then
      psql_ -d postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
      if [ "$1" = url ]; then
        for f in stores/postgres/migrations/*.sql; do psql_ -d "$name" -f "$f" >/dev/null; done
      fi
    fi
    echo "postgres://postgres@127.0.0.1:$PORT/$name"
    ;;
  stop)
    [ -d "$DIR/data" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 url NAME | empty NAME | stop" >&2; exit 2 ;;
esac
