#!/usr/bin/env bash
# Builds the npm package in pkg/: wasm-pack (release, --target web), then wasm-opt -O2 from
# the npm binaryen package (wasm-pack's own wasm-opt download is disabled in Cargo.toml).
# The JS glue ships as wasm-bindgen writes it; bundlers minify it in the app's build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# Panic locations keep source paths in the binary: make them short.
RUSTFLAGS="--remap-path-prefix=$PWD="
for registry in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=${registry%/}="
done
export RUSTFLAGS
wasm-pack --quiet build --release --target web --out-dir pkg >/dev/null
features="--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue"
# -O2 with single-caller inlining off measured smallest after gzip of the safe flag sets
# (README, Performance: Size). Keep an optimized copy with names for `make size-report`, then strip.
node_modules/.bin/wasm-opt -O2 --one-caller-inline-max-function-size=0 --debuginfo $features pkg/wasm_session_bg.wasm -o target/wasm-opt.wasm
node_modules/.bin/wasm-opt --strip-debug --strip-producers $features target/wasm-opt.wasm -o pkg/wasm_session_bg.wasm
node scripts/package-json.mjs
echo "pkg: $(wc -c < pkg/wasm_session_bg.wasm) bytes wasm, $(gzip -9 -c pkg/wasm_session_bg.wasm | wc -c) gzipped; glue $(gzip -9 -c pkg/wasm_session.js | wc -c) gzipped"
