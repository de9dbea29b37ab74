#!/usr/bin/env bash
# Installs what building, running and testing the console needs, skipping what is already there.
# Nothing here downloads a prebuilt binary: tools come from Debian, crates.io and npm.
#   scripts/setup.sh          everything (for tests: adds Chromium)
#   scripts/setup.sh --run    only what running the console needs
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

CARGO_LEPTOS_VERSION=0.3.10 # 0.3.11 needs a newer rustc than this machine's
WASM_BINDGEN_VERSION=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock)

apt_packages=(sqlite3)
[ "${1:-}" = "--run" ] || apt_packages+=(chromium)
missing=()
for p in "${apt_packages[@]}"; do command -v "$p" >/dev/null || missing+=("$p"); done
# the PostgreSQL tests start a throwaway server (stores/postgres/src/testing.rs); Debian keeps its
# programs off PATH, in /usr/lib/postgresql/<version>/bin
if [ "${1:-}" != "--run" ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  step $sudo apt-get update -qq
  step env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
  step rustup target add wasm32-unknown-unknown

# the tools are built without the project's own compiler flags (.cargo/config.toml)
tools=(cargo --config 'build.rustflags=[]')
cargo leptos --version 2>/dev/null | grep -qx "cargo-leptos $CARGO_LEPTOS_VERSION" ||
  step "${tools[@]}" install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
# must equal the wasm-bindgen in Cargo.lock; not --locked: its lockfile pins a webpki-roots the
# registry does not serve
wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $WASM_BINDGEN_VERSION" ||
  step "${tools[@]}" install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"

# Playwright and binaryen's wasm-opt (the npm build: Debian's older one breaks hydration)
if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -x end2end/node_modules/.bin/playwright ] ||
   [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  step npm ci --prefix end2end --no-audit --no-fund --loglevel=error
fi
