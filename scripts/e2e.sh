#!/usr/bin/env bash
# Browser tests: Playwright drives Debian's Chromium against the debug binary built by
# `cargo leptos build` (Playwright's webServer starts and stops it; see end2end/playwright.config.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
rm -rf target/e2e && mkdir -p target/e2e
cd end2end
npx playwright test
