#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks, skipping what is there (idempotent):
# the wasm32 target, wasm-bindgen-cli at exactly the Cargo.lock version, wasm-pack,
# geckodriver, Debian's chromium + chromium-driver and firefox-esr, WebKitGTK's WebDriver
# (webkit2gtk-driver, which brings MiniBrowser) and Xvfb for it, and the npm packages from
# package-lock.json. `scripts/setup.sh twiggy` also installs twiggy (make size-report).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

say() { echo "setup: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

rustup target list --installed | grep -qx wasm32-unknown-unknown || {
  say "adding rustup target wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown; }

[ -f Cargo.lock ] || cargo generate-lockfile
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (have: ${have:-none}); takes a few minutes"
  # --locked first; its lockfile can name a since-yanked crate, so fall back to a fresh resolve.
  cargo install --locked wasm-bindgen-cli --version "$want" || cargo install --force wasm-bindgen-cli --version "$want"
fi

command -v wasm-pack >/dev/null || { say "installing wasm-pack"; cargo install --locked wasm-pack; }

command -v geckodriver >/dev/null || { say "installing geckodriver"; cargo install --locked geckodriver; }

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/firefox-esr ]; then
  say "installing Debian chromium, chromium-driver and firefox-esr"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver firefox-esr
fi

# MiniBrowser has no headless mode: the end-to-end harness runs it under its own Xvfb.
if ! command -v WebKitWebDriver >/dev/null || ! command -v Xvfb >/dev/null; then
  say "installing Debian webkit2gtk-driver and xvfb"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends webkit2gtk-driver xvfb
fi

if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then
  say "npm ci"; npm ci --no-audit --no-fund; touch node_modules/.installed
fi

if [ "${1:-}" = twiggy ] && ! command -v twiggy >/dev/null; then
  say "installing twiggy (size by function)"; cargo install --locked twiggy
fi
