// The package as users get it: `npm pack` holds exactly what it should, the versions agree,
// and an app that installs the tarball and builds with Vite signs in in a real browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, cpSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, startServer, launch, chromiumTest } from "./harness.mjs";

const pkg = path.join(root, "pkg");
const npm = (args, cwd) => execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

test("npm pack: each entry's .wasm, JS and .d.ts, README and licenses, nothing else; versions agree", () => {
  const [info] = JSON.parse(npm(["pack", "--dry-run", "--json", "--ignore-scripts"], pkg));
  const files = info.files.map((f) => f.path).sort();
  assert.deepEqual(files, ["LICENSE-APACHE", "LICENSE-MIT", "README.md", "oidc/wasm_session.d.ts",
    "oidc/wasm_session.js", "oidc/wasm_session_bg.wasm", "package.json",
    "wasm_session.d.ts", "wasm_session.js", "wasm_session_bg.wasm"]);
  const json = JSON.parse(readFileSync(path.join(pkg, "package.json"), "utf8"));
  const cargo = readFileSync(path.join(root, "Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)[1];
  assert.equal(json.version, cargo, "the npm package and the crate carry the same version");
  assert.equal(json.name, "wasm-session");
  assert.equal(json.license, "MIT OR Apache-2.0");
  for (const k of ["description", "keywords", "exports", "types", "sideEffects"]) assert.ok(k in json, k);
  assert.equal(json.exports["."].types, "./wasm_session.d.ts");
  assert.deepEqual(json.exports["./oidc"], { types: "./oidc/wasm_session.d.ts", default: "./oidc/wasm_session.js" });
  const changelog = readFileSync(path.join(root, "CHANGELOG.md"), "utf8");
  assert.ok(changelog.split("\n").some((l) => l.startsWith(`## ${cargo} `)), "CHANGELOG.md has an entry for this version");
});

chromiumTest("an app that installs the tarball and builds with Vite signs in; wasm-session/oidc has the sign-in methods", async () => {
  const work = mkdtempSync(path.join(tmpdir(), "ws-bundler-"));
  const tarball = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", work], pkg))[0].filename;
  const app = path.join(work, "app");
  cpSync(path.join(root, "tests/bundler"), app, { recursive: true });
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "scratch-app", private: true, type: "module" }));
  // A local tarball without dependencies: no registry involved.
  npm(["install", "--no-audit", "--no-fund", "--offline", path.join(work, tarball)], app);
  execFileSync(path.join(root, "node_modules/.bin/vite"), ["build", "--logLevel", "warn", "--outDir", "dist", "--emptyOutDir"],
    { cwd: app, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  assert.ok(existsSync(path.join(app, "dist/index.html")));
  const server = await startServer({ WWW_DIR: path.join(app, "dist") });
  const browser = await launch();
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(server.main + "/");
    const result = await (await page.waitForFunction(() => window.result)).jsonValue();
    assert.deepEqual(result, { signedIn: true, sub: "demo", claims: "demo", oidc: ["function", "undefined"] });
  } finally {
    await browser.close();
    await server.stop();
  }
});
