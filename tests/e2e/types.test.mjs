// The generated TypeScript declarations: correct use compiles, mistakes do not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { root } from "./harness.mjs";

test("the .d.ts of both entries type config, events, errors, token state and sign-in (tsc --strict)", () => {
  const tsc = path.join(root, "node_modules/.bin/tsc");
  const args = ["--strict", "--noEmit", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler",
    "--lib", "esnext,dom", path.join(root, "tests/types/usage.ts"), path.join(root, "tests/types/usage-oidc.ts")];
  let out = "";
  try { execFileSync(tsc, args, { encoding: "utf8" }); } catch (e) { out = e.stdout + e.stderr; }
  assert.equal(out, "", out);
  const dts = execFileSync("grep", ["-c", ": any", path.join(root, "pkg/wasm_session.d.ts")], { encoding: "utf8" }).trim();
  console.log(`lines with ': any' in the .d.ts (wasm-bindgen's raw export table only): ${dts}`);
});
