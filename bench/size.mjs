// Size of what every user downloads: the optimized .wasm and the JS glue in pkg/, raw,
// gzip -9 and brotli; the glue both as published and minified (terser), as an app's bundler
// ships it. `node bench/size.mjs --budget BYTES` fails when wasm + minified glue, gzipped,
// exceed BYTES. `make size-report` says where the bytes go.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export function sizes() {
  const out = {};
  let gz = 0, br = 0;
  const glue = path.join(root, "pkg/wasm_session.js");
  const minified = execFileSync(path.join(root, "node_modules/.bin/terser"), [glue, "--module", "-c", "-m"]);
  const files = [
    ["wasm", readFileSync(path.join(root, "pkg/wasm_session_bg.wasm")), true],
    ["glue", readFileSync(glue), false],
    ["glue_min", minified, true],
  ];
  for (const [name, bytes, shipped] of files) {
    const g = gzipSync(bytes, { level: 9 }).length;
    const b = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
    out[`size.${name}.raw`] = bytes.length;
    out[`size.${name}.gzip`] = g;
    out[`size.${name}.brotli`] = b;
    if (shipped) { gz += g; br += b; }
  }
  out["size.total.gzip"] = gz;
  out["size.total.brotli"] = br;
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = sizes();
  for (const [k, v] of Object.entries(s)) console.log(`${k} ${v} bytes`);
  const i = process.argv.indexOf("--budget");
  if (i > 0) {
    const budget = Number(process.argv[i + 1]);
    const total = s["size.total.gzip"];
    if (total > budget) {
      console.log(`size budget exceeded: ${total} bytes gzipped (wasm + minified glue) > ${budget}`);
      process.exit(1);
    }
    console.log(`size budget ok: ${total} <= ${budget} bytes gzipped`);
  }
}
