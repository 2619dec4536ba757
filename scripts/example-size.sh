#!/usr/bin/env bash
# What a Rust app pays for wasm-session: the Leptos example's .wasm (wasm-opt -Oz, then
# gzip -9 and brotli) with the session, and with the session calls stubbed out (the same
# page without wasm-session), and the difference. Figures in README, Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${EXAMPLE_TARGET_DIR:-$PWD/target/example}
scripts/build-example.sh
scripts/build-example.sh --stub
node - www/leptos/app_bg.wasm "$target_dir/stub/app_bg.wasm" <<'JS'
const fs = require("node:fs");
const zlib = require("node:zlib");
const measure = (file) => {
  const raw = fs.readFileSync(file);
  const gzip = zlib.gzipSync(raw, { level: 9 }).length;
  const brotli = zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  return { raw: raw.length, gzip, brotli };
};
const [withSession, stub] = process.argv.slice(2).map(measure);
const row = (name, m) => console.log(`${name.padEnd(28)} ${String(m.raw).padStart(8)} ${String(m.gzip).padStart(8)} ${String(m.brotli).padStart(8)}`);
console.log(`${"Leptos example .wasm (-Oz)".padEnd(28)} ${"raw".padStart(8)} ${"gzip -9".padStart(8)} ${"brotli".padStart(8)}`);
row("with wasm-session", withSession);
row("session calls stubbed out", stub);
row("wasm-session's share", { raw: withSession.raw - stub.raw, gzip: withSession.gzip - stub.gzip, brotli: withSession.brotli - stub.brotli });
JS
