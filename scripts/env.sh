# Sourced by the other scripts: the environment every build and test shares.
# cargo-leptos compiles with LEPTOS_OUTPUT_NAME set and leptos reads it at compile time, so plain
# cargo must see the same value or the two keep rebuilding each other's artifacts.
export LEPTOS_OUTPUT_NAME=pinpoint-hibob
# sqlx query macros are checked against the committed .sqlx/ cache (scripts/sqlx-prepare.sh).
export SQLX_OFFLINE=true
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PWD/end2end/node_modules/.bin:$PATH"
step() { local s=$SECONDS; echo "::: $*" >&2; "$@"; echo "::: $((SECONDS - s))s  $*" >&2; }
# CI builds once from a clean clone: incremental state would only cost disk (about 13 GB here)
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi
