#!/usr/bin/env bash
# Every check the project has: formatting, lints, the sqlx query cache, unit and integration
# tests, then the browser tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
packages=(-p pinpoint-hibob-core -p app -p server)

step cargo fmt --all -- --check
step cargo clippy "${packages[@]}" --all-targets -- -D warnings
step scripts/sqlx-prepare.sh --check
step cargo test "${packages[@]}"
step cargo leptos build
step scripts/e2e.sh
