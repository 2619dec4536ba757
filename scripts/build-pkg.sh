#!/usr/bin/env bash
# Builds the npm package in pkg/ (and its `wasm-session/oidc` entry in pkg/oidc/): wasm-pack
# (release, --target web), then wasm-opt -O2 from the npm binaryen package (wasm-pack's own
# wasm-opt download is disabled in Cargo.toml).
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
features="--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue"
# Two builds: the package's main entry without OpenID Connect and DPoP (pkg/), and
# `wasm-session/oidc` with both (pkg/oidc/). The wasm-opt flags: README, Performance, Size.
# Ordering functions by name needs the names, so they are kept until the strip (that copy
# serves size-report).
#   scripts/build-pkg.sh --only DIR CARGO-ARGS...   one more build into DIR, the same way
#                                                    (size-report: OpenID Connect alone)
build() { # out-dir, names-kept copy, cargo arguments...
  wasm-pack --quiet build --release --target web --out-dir "$1" -- "${@:3}" >/dev/null
  node_modules/.bin/wasm-opt -O2 --one-caller-inline-max-function-size=0 --converge \
    --reorder-functions-by-name --debuginfo $features "$1/wasm_session_bg.wasm" -o "$2"
  node_modules/.bin/wasm-opt --strip-debug --strip-producers $features "$2" -o "$1/wasm_session_bg.wasm"
}
if [ "${1:-}" = --only ]; then
  build "$2" "$2/named.wasm" "${@:3}"
  exit
fi
build pkg target/wasm-opt.wasm --no-default-features --features js
build target/pkg-oidc target/wasm-opt-oidc.wasm --no-default-features --features js,oidc,dpop
rm -rf pkg/oidc && mkdir pkg/oidc
cp target/pkg-oidc/wasm_session_bg.wasm target/pkg-oidc/wasm_session.js target/pkg-oidc/wasm_session.d.ts pkg/oidc/
node scripts/package-json.mjs
for d in pkg pkg/oidc; do
  echo "$d: $(wc -c < $d/wasm_session_bg.wasm) bytes wasm, $(gzip -9 -c $d/wasm_session_bg.wasm | wc -c) gzipped; glue $(gzip -9 -c $d/wasm_session.js | wc -c) gzipped"
done
