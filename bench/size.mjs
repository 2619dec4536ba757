// Size of what every user downloads: the optimized .wasm and the JS glue, raw, gzip -9 and
// brotli; the glue both as published and minified (terser), as an app's bundler ships it.
// Two entries: `wasm-session` (pkg/) and `wasm-session/oidc` (pkg/oidc/, with OpenID
// Connect). `node bench/size.mjs --budget BYTES --budget-oidc BYTES` fails when an entry's
// wasm + minified glue, gzipped, exceed its budget. `make size-report` says where the bytes go.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The figures of the entry in `dir` (relative to the repo), named `size.<prefix>…`. */
export function sizes(dir = "pkg", prefix = "") {
  const out = {};
  let gz = 0, br = 0;
  const glue = path.join(root, dir, "wasm_session.js");
  const minified = execFileSync(path.join(root, "node_modules/.bin/terser"), [glue, "--module", "-c", "-m"]);
  const files = [
    ["wasm", readFileSync(path.join(root, dir, "wasm_session_bg.wasm")), true],
    ["glue", readFileSync(glue), false],
    ["glue_min", minified, true],
  ];
  for (const [name, bytes, shipped] of files) {
    const g = gzipSync(bytes, { level: 9 }).length;
    const b = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
    out[`size.${prefix}${name}.raw`] = bytes.length;
    out[`size.${prefix}${name}.gzip`] = g;
    out[`size.${prefix}${name}.brotli`] = b;
    if (shipped) { gz += g; br += b; }
  }
  out[`size.${prefix}total.gzip`] = gz;
  out[`size.${prefix}total.brotli`] = br;
  return out;
}

/** Both entries. */
export const allSizes = () => ({ ...sizes("pkg"), ...sizes("pkg/oidc", "oidc.") });

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = allSizes();
  for (const [k, v] of Object.entries(s)) console.log(`${k} ${v} bytes`);
  let failed = false;
  for (const [flag, prefix, entry] of [["--budget", "", "wasm-session"], ["--budget-oidc", "oidc.", "wasm-session/oidc"]]) {
    const i = process.argv.indexOf(flag);
    if (i < 0) continue;
    const budget = Number(process.argv[i + 1]);
    const total = s[`size.${prefix}total.gzip`];
    const ok = total <= budget;
    failed ||= !ok;
    console.log(`size budget ${ok ? "ok" : "exceeded"}: ${entry} ${total} ${ok ? "<=" : ">"} ${budget} bytes gzipped (wasm + minified glue)`);
  }
  if (failed) process.exit(1);
}
