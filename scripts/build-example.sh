#!/usr/bin/env bash
# Builds the Leptos example (examples/leptos, README: Rust) into www/leptos/, the module that
# www/leptos.html loads: cargo (release, wasm32), the wasm-bindgen CLI (--target web; the
# version Cargo.lock pins, as for the package), wasm-opt -Oz from npm's binaryen. No tool
# that downloads binaries. EXAMPLE_TARGET_DIR: cargo's target dir (target/example).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
target_dir=${EXAMPLE_TARGET_DIR:-$PWD/target/example}
features="--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue"
# build <out-dir> <cargo arguments...>: the example's module in <out-dir> (app.js, app_bg.wasm).
build() {
  cargo build -q --release --locked --target wasm32-unknown-unknown \
    --manifest-path examples/leptos/Cargo.toml --target-dir "$target_dir" "${@:2}"
  wasm-bindgen --target web --no-typescript --out-name app --out-dir "$1" \
    "$target_dir/wasm32-unknown-unknown/release/wasm-session-leptos-example.wasm"
  node_modules/.bin/wasm-opt -Oz $features "$1/app_bg.wasm" -o "$1/app_bg.wasm"
}
if [ "${1:-}" = "--stub" ]; then
  # The page with the session calls stubbed out (no wasm-session): for scripts/example-size.sh.
  build "$target_dir/stub" --no-default-features
else
  build www/leptos
fi
