// Renames the JS glue's side of the wasm imports and exports to the short names that
// `wasm-opt --minify-imports-and-exports-and-modules` gave them (its JSON map on stdin or in
// a file). wasm-bindgen names every import `__wbg_<name>_<16 hex digits>`; those names
// appear twice (wasm and glue), compress badly and were about 2.7 KB of the gzipped package.
//
//   node scripts/minify-names.mjs map.json pkg/wasm_session.js pkg/wasm_session_bg.wasm.d.ts
import { readFileSync, writeFileSync } from "node:fs";

const [mapFile, ...files] = process.argv.slice(2);
const map = JSON.parse(readFileSync(mapFile, "utf8"));
const modules = new Set(map.imports.map(([module]) => module));
if (modules.size !== 1) throw new Error(`expected one import module, found ${[...modules].join(", ")}`);
const [module] = modules;
// The pass renames the single module to "a".
const escape = (s) => s.replace(/[$.*+?^(){}|[\]\\]/g, "\\$&");
const renames = [
  // Import keys (`__wbg_x_0123456789abcdef: function`): the hashed names are unique, so
  // every whole-identifier occurrence is one.
  ...map.imports.map(([, from, to]) => [new RegExp(`(?<![\\w$])${escape(from)}(?![\\w$])`, "g"), to]),
  // Export reads (`wasm.memory`) and .d.ts declarations (`export const memory:`) only:
  // short export names such as `memory` also occur as ordinary words.
  ...map.exports.map(([from, to]) => [new RegExp(`(?<=wasm\\.|export const )${escape(from)}(?![\\w$])`, "g"), to]),
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
