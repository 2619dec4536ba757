// Folds the JS modules that `#[wasm_bindgen(module = ...)]` imports (src/browser.js, copied
// by wasm-bindgen to pkg/snippets/...) into the glue module, so that the package stays two files: one request fewer at start-up, and
// the size figures count everything.
//
//   node scripts/fold-snippets.mjs pkg
import { readFileSync, writeFileSync, rmSync, existsSync } from "node:fs";
import path from "node:path";

const dir = process.argv[2];
const gluePath = path.join(dir, "wasm_session.js");
let glue = readFileSync(gluePath, "utf8");
const importLine = /^import \{([^}]*)\} from '(\.\/snippets\/[^']+)';\n/gm;
const folded = [];
glue = glue.replace(importLine, (_, names, file) => {
  for (const name of names.split(",").map((n) => n.trim())) {
    // Snippet functions are named ws_*; a clash with a glue name would be a silent bug.
    if (!name.startsWith("ws_") || new RegExp(`\\b(function|const|let|var) ${name}\\b`).test(glue)) {
      throw new Error(`snippet name ${name}: must start with ws_ and not clash with the glue`);
    }
  }
  folded.push(file);
  return readFileSync(path.join(dir, file), "utf8").replace(/^export /gm, "") + "\n";
});
if (/from '\.\/snippets\//.test(glue)) throw new Error("a snippet import was left unfolded");
writeFileSync(gluePath, glue);
if (existsSync(path.join(dir, "snippets"))) rmSync(path.join(dir, "snippets"), { recursive: true });
// wasm-pack lists the snippets directory among the package files.
const pkgJson = path.join(dir, "package.json");
const pkg = JSON.parse(readFileSync(pkgJson, "utf8"));
if (Array.isArray(pkg.files)) pkg.files = pkg.files.filter((f) => !f.startsWith("snippets"));
writeFileSync(pkgJson, JSON.stringify(pkg, null, 2) + "\n");
console.log(`folded ${folded.length} snippet(s) into ${gluePath}`);
