#!/usr/bin/env bash
# Every check the project has: formatting, lints, the sqlx query caches, unit and integration
# tests (the integration suite once per database engine), then the browser tests against the
# real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
packages=(-p pinpoint-hibob-core -p app -p server -p pinpoint-hibob-store-postgres)

step cargo fmt --all -- --check
step cargo clippy "${packages[@]}" --all-targets -- -D warnings
step scripts/sqlx-prepare.sh --check
# One test at a time: each integration test runs a console on its own tokio runtime, and with
# several runtimes in one process a page's server rendering now and then waited out the 30 s
# request timeout (about one full run in two; never with one test at a time, and never in the
# real binary, which has one runtime). About 45 s slower.
step cargo test "${packages[@]}" -- --test-threads=1
# the same test binary again, its consoles on PostgreSQL (a throwaway cluster the tests start)
step env TEST_DATABASE=postgres cargo test "${packages[@]}" --test integration -- --test-threads=1
step cargo leptos build
step scripts/e2e.sh
