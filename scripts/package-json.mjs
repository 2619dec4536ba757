// Completes pkg/package.json (written by wasm-pack from Cargo.toml): `exports`, the exact
// file list, `sideEffects`, and checks that everything it names exists and that the version
// is Cargo.toml's. Fails loudly if wasm-pack's output changes shape.
import { readFileSync, writeFileSync, existsSync, copyFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkg = path.join(root, "pkg");
const file = path.join(pkg, "package.json");
const json = JSON.parse(readFileSync(file, "utf8"));
const fail = (why) => { console.error(`package-json: ${why}`); process.exit(1); };

const cargoVersion = readFileSync(path.join(root, "Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)?.[1];
if (json.name !== "wasm-session") fail(`unexpected name ${json.name}`);
if (json.version !== cargoVersion) fail(`version ${json.version} is not Cargo.toml's ${cargoVersion}`);
for (const license of ["LICENSE-MIT", "LICENSE-APACHE"]) copyFileSync(path.join(root, license), path.join(pkg, license));

// The main entry has no OpenID Connect; `wasm-session/oidc` is the build with it (the `oidc`
// cargo feature), the same API plus the sign-in methods.
const glue = ["wasm_session_bg.wasm", "wasm_session.js", "wasm_session.d.ts"];
json.files = [...glue, ...glue.map((f) => `oidc/${f}`), "README.md", "LICENSE-MIT", "LICENSE-APACHE"];
json.exports = {
  ".": { types: "./wasm_session.d.ts", default: "./wasm_session.js" },
  "./oidc": { types: "./oidc/wasm_session.d.ts", default: "./oidc/wasm_session.js" },
  "./wasm_session_bg.wasm": "./wasm_session_bg.wasm",
  "./oidc/wasm_session_bg.wasm": "./oidc/wasm_session_bg.wasm",
  "./package.json": "./package.json",
};
json.module = "wasm_session.js";
// The glue runs nothing at import; `init()` does.
json.sideEffects = false;
json.engines = { node: ">=18" };
for (const f of json.files) if (!existsSync(path.join(pkg, f))) fail(`${f} is missing from pkg/`);
for (const k of ["description", "license", "keywords", "types", "main"]) if (!json[k]) fail(`${k} is missing`);
writeFileSync(file, JSON.stringify(json, null, 2) + "\n");
