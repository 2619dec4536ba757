// Renames the JS glue's side of the wasm imports and exports to the short names that
// `wasm-opt --minify-imports-and-exports-and-modules` gave them (its JSON map). wasm-bindgen
// names every import `__wbg_<name>_<16 hex digits>` in module "./wasm_session_bg.js"; those
// strings appear in both files, compress badly and were about 4 KB of the gzipped package.
// The `memory` export keeps its name (apps and tools read `(await init()).memory`).
//
//   node scripts/minify-names.mjs map.json pkg/wasm_session_bg.wasm pkg/*.js pkg/*.d.ts
import { readFileSync, writeFileSync } from "node:fs";

const [mapFile, wasmFile, ...files] = process.argv.slice(2);
const map = JSON.parse(readFileSync(mapFile, "utf8"));
const modules = new Set(map.imports.map(([module]) => module));
if (modules.size !== 1) throw new Error(`expected one import module, found ${[...modules].join(", ")}`);
const [module] = modules; // the pass renames it to "a"
const memory = map.exports.find(([from]) => from === "memory")?.[1];
if (!memory) throw new Error("no memory export in the map");

writeFileSync(wasmFile, renameExport(readFileSync(wasmFile), memory, "memory"));

const escape = (s) => s.replace(/[$.*+?^(){}|[\]\\]/g, "\\$&");
const renames = [
  // Import keys (`__wbg_x_0123456789abcdef: function`): the hashed names are unique, so
  // every whole-identifier occurrence is one.
  ...map.imports.map(([, from, to]) => [new RegExp(`(?<![\\w$])${escape(from)}(?![\\w$])`, "g"), to]),
  // Export reads (`wasm.name`) and declarations (`export const name:`, `readonly name:`)
  // only: export names such as `memory` also occur as ordinary words.
  ...map.exports
    .filter(([from]) => from !== "memory")
    .map(([from, to]) => [new RegExp(`(?<=wasm\\.|export const |readonly )${escape(from)}(?![\\w$])`, "g"), to]),
];

for (const file of files) {
  let text = readFileSync(file, "utf8");
  const before = text;
  text = text.replaceAll(JSON.stringify(module), '"a"');
  for (const [pattern, to] of renames) text = text.replace(pattern, to);
  const left = file.endsWith(".js") && text.match(/__wbg_\w+_[0-9a-f]{16}\b/);
  if (text === before || left) throw new Error(`${file}: names left unrenamed (${left}); has wasm-bindgen's output changed?`);
  writeFileSync(file, text);
}

/** The module with export `from` renamed to `to` (the export section rebuilt). */
function renameExport(bytes, from, to) {
  const leb = (n) => {
    const out = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return out;
  };
  let pos = 8; // magic + version
  const readLeb = () => {
    let n = 0, shift = 0, b;
    do {
      b = bytes[pos++];
      n |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return n >>> 0;
  };
  while (pos < bytes.length) {
    const start = pos;
    const id = bytes[pos++];
    const size = readLeb();
    const body = pos;
    if (id !== 7) {
      pos = body + size;
      continue;
    }
    const out = [];
    const count = readLeb();
    out.push(...leb(count));
    let found = false;
    for (let i = 0; i < count; i++) {
      const len = readLeb();
      let name = Buffer.from(bytes.subarray(pos, pos + len)).toString("utf8");
      pos += len;
      const kind = bytes[pos++];
      const indexStart = pos;
      readLeb();
      if (name === from) [name, found] = [to, true];
      const encoded = Buffer.from(name, "utf8");
      out.push(...leb(encoded.length), ...encoded, kind, ...bytes.subarray(indexStart, pos));
    }
    if (!found || pos !== body + size) throw new Error(`export section: ${found ? "bad size" : `no export ${from}`}`);
    const section = Buffer.from([7, ...leb(out.length), ...out]);
    return Buffer.concat([bytes.subarray(0, start), section, bytes.subarray(body + size)]);
  }
  throw new Error("no export section");
}
