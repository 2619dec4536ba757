// Empties the function-table slots of code that can never be called, so that wasm-opt can
// drop that code. The linker puts every function whose address was taken into the table,
// and wasm-opt keeps whatever is in it. Two kinds of slot are dead in our module:
//
// - js-sys's JSPI task waker. Its only root is the `__wbg_jspi_task_poll` export, which
//   wasm-bindgen deletes from modules without `#[wasm_bindgen(jspi)]` exports (ours).
// - `core::fmt` trait impls (`Display`/`Debug`). They are called only by the formatting
//   engine, and the browser build never formats: panics trap (`panic-trap`) and nothing
//   uses `format!` or `to_string` on numbers. Their slots held about 1 KB gzip of
//   formatting code in every user's download.
// - wasm-bindgen's closure `invoke` shims. Only their type descriptors take their address,
//   for the wasm-bindgen CLI, which exports the ones in use; the JS glue calls those
//   exports, and nothing reads the table from JS, since it is not exported (checked).
//
// Dead slots point to one function that traps, as calling them would be a bug.
//
//   node scripts/prune-table.mjs FILE.wasm      rewrites the table of FILE (names needed)
//   node scripts/prune-table.mjs --check FILE   after wasm-opt (names kept): fails if the
//                                               formatting engine or JSPI code is still
//                                               reachable, i.e. a pruned slot could be used
import binaryen from "binaryen";
import { readFileSync, writeFileSync } from "node:fs";

const args = process.argv.slice(2);
const check = args[0] === "--check";
const file = check ? args[1] : args[0];
const DEAD = /^js_sys::futures::jspi::|fmt::(Display|Debug)>::fmt$|^wasm_bindgen::convert::closures::_::invoke::/;
// What would call a pruned slot: the formatting engine, or the JSPI poll loop.
const CALLERS = /core\[?\w*\]?::fmt::write|::write_fmt|jspi/;

binaryen.setDebugInfo(true);
const mod = binaryen.readBinary(readFileSync(file));
mod.setFeatures(
  binaryen.Features.MVP | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt | binaryen.Features.NontrappingFPToInt |
    binaryen.Features.SignExt | binaryen.Features.MutableGlobals | binaryen.Features.ReferenceTypes |
    binaryen.Features.Multivalue,
);
const functions = [];
for (let i = 0; i < mod.getNumFunctions(); i++) {
  functions.push(binaryen.getFunctionInfo(mod.getFunctionByIndex(i)).name);
}
if (!functions.some((n) => n.includes("::"))) throw new Error(`${file}: no function names; run on a module with its name section`);

if (check) {
  const left = functions.filter((n) => CALLERS.test(n));
  if (left.length) {
    throw new Error(`${file}: a pruned table slot may be called (${left.join(", ")}); ` +
      "formatting (format!, to_string on numbers) or JSPI must not be used in the browser build");
  }
  console.log(`prune-table: ${file}: no formatting engine or JSPI code left`);
} else {
  const exports = [];
  for (let i = 0; i < mod.getNumExports(); i++) exports.push(binaryen.getExportInfo(mod.getExportByIndex(i)).name);
  if (exports.some((n) => n.includes("jspi"))) throw new Error(`${file}: JSPI export present; not pruning`);
  for (let i = 0; i < mod.getNumExports(); i++) {
    const e = binaryen.getExportInfo(mod.getExportByIndex(i));
    const table = e.kind === binaryen.ExternalTable && binaryen.getTableInfo(mod.getTable(e.value));
    if (table && mod.getNumElementSegments() && table.name === binaryen.getElementSegmentInfo(mod.getElementSegmentByIndex(0)).table) {
      throw new Error(`${file}: the function table is exported (${e.name}); JS could call any slot, not pruning`);
    }
  }
  mod.addFunction("__ws_dead_slot", binaryen.none, binaryen.none, [], mod.unreachable());
  let pruned = 0;
  for (let i = mod.getNumElementSegments() - 1; i >= 0; i--) {
    const info = binaryen.getElementSegmentInfo(mod.getElementSegmentByIndex(i));
    if (!info.offset || !info.data.some((n) => DEAD.test(n))) continue;
    const offset = binaryen.getExpressionInfo(info.offset);
    if (offset.id !== binaryen.ConstId) throw new Error(`${file}: element segment ${info.name} has a computed offset`);
    const data = info.data.map((n) => (DEAD.test(n) ? (pruned++, "__ws_dead_slot") : n));
    mod.removeElementSegment(info.name);
    mod.addActiveElementSegment(info.table, info.name, data, mod.i32.const(offset.value));
  }
  if (!mod.validate()) throw new Error(`${file}: invalid after pruning`);
  writeFileSync(file, mod.emitBinary());
  console.log(`prune-table: ${file}: ${pruned} dead slot(s) emptied`);
}
