#!/usr/bin/env bash
# Builds and runs the console on http://127.0.0.1:3000 (or LEPTOS_SITE_ADDR). With no users yet
# it creates an admin and prints the sign-in on the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --run
source scripts/env.sh
# --precompress: brotli and gzip copies of the assets, served to browsers that take them
exec cargo leptos serve --release --precompress "$@"
