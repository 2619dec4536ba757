#!/usr/bin/env bash
# Builds the npm package in pkg/: wasm-pack (release, --target web), dead function-table
# slots emptied (scripts/prune-table.mjs), then wasm-opt -Oz from the npm binaryen package
# (wasm-pack's own wasm-opt download is disabled in Cargo.toml), which also shortens the
# import and export names (the glue is renamed to match), then terser on the JS glue.
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
# Optimize with names kept, so that the table pruning can be checked; then strip.
node scripts/prune-table.mjs pkg/wasm_session_bg.wasm >/dev/null
node_modules/.bin/wasm-opt -Oz --debuginfo $features pkg/wasm_session_bg.wasm -o target/wasm-opt.wasm
node scripts/prune-table.mjs --check target/wasm-opt.wasm >/dev/null
node_modules/.bin/wasm-opt --strip-debug --strip-producers --strip-target-features $features \
  --minify-imports-and-exports-and-modules \
  target/wasm-opt.wasm -o pkg/wasm_session_bg.wasm > target/wasm-names.json
node scripts/minify-names.mjs target/wasm-names.json pkg/wasm_session_bg.wasm \
  pkg/wasm_session.js pkg/wasm_session.d.ts pkg/wasm_session_bg.wasm.d.ts
node scripts/fold-snippets.mjs pkg >/dev/null
# Ship the JS glue minified (the .d.ts keeps the documentation).
node_modules/.bin/terser pkg/wasm_session.js --module --compress passes=2 --mangle -o pkg/wasm_session.js
echo "pkg: $(wc -c < pkg/wasm_session_bg.wasm) bytes wasm, $(gzip -9 -c pkg/wasm_session_bg.wasm | wc -c) gzipped; glue $(gzip -9 -c pkg/wasm_session.js | wc -c) gzipped"
