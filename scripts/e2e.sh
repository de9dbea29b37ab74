#!/usr/bin/env bash
# Browser tests: Playwright drives Debian's Chromium against the debug binary built by
# `cargo leptos build` (Playwright's webServer starts and stops it; see end2end/playwright.config.ts).
# The suite runs twice: the console on SQLite, then on an empty PostgreSQL database of a scratch
# cluster (E2E_PG_PORT picks its port).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
rm -rf target/e2e && mkdir -p target/e2e
(cd end2end && npx playwright test)

export PG_DEV_PORT="${E2E_PG_PORT:-55435}"
trap 'scripts/pg-dev.sh stop' EXIT
url=$(scripts/pg-dev.sh empty e2e_console)
rm -rf target/e2e && mkdir -p target/e2e
(cd end2end && E2E_DATABASE_URL="$url" npx playwright test)
