// `make size-report`: where the package's bytes go, and how it compares with its peers.
//
// Reads the names-kept optimized module of the main entry that scripts/build-pkg.sh leaves in
// target/wasm-opt.wasm with `twiggy top`, groups its functions by module and by feature, and
// measures the peers the same way as the package: each one's npm release bundled and
// minified by esbuild (as a user's bundler would), gzip -9. The peers and esbuild are
// installed into target/size-peers/ (npm registry), never into the repo's node_modules.
//
//   node scripts/size-report.mjs            print the report
//   node scripts/size-report.mjs --readme   also rewrite README.md's size section
//
// Groups are raw bytes of code from twiggy; their gzip figures are estimates (each group's
// share of the raw code times the measured gzip size of the whole module), marked "≈".
// The cost of OpenID Connect and of DPoP is measured: `wasm-session/oidc` carries both, and a
// build with OpenID Connect alone (target/size-oidc-only, made here) tells them apart.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const at = (...p) => path.join(root, ...p);
const gzip = (b) => gzipSync(b, { level: 9 }).length;
const brotli = (b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const kb = (n) => (n / 1000).toFixed(1);

// The peers, by npm package and the entry a user imports.
const PEERS = [
  ["keycloak-js", "keycloak-js", "import Keycloak from 'keycloak-js'; window.x = Keycloak;"],
  ["oidc-client-ts", "oidc-client-ts", "import { UserManager } from 'oidc-client-ts'; window.x = UserManager;"],
  ["supabase auth-js", "@supabase/auth-js", "import { GoTrueClient } from '@supabase/auth-js'; window.x = GoTrueClient;"],
  ["auth0-spa-js", "@auth0/auth0-spa-js", "import { Auth0Client } from '@auth0/auth0-spa-js'; window.x = Auth0Client;"],
];

// Features of the main entry, by the module paths (and, where a module serves several, the
// function names) their code lives under. The first match wins; the rest of our code is the
// token core.
const FEATURES = [
  ["cookie mode", /machine::cookie|with_cookie|CookieSession|SessionResponse|Cookie>|AuthServer::Cookie/],
  ["timeouts (idle, absolute)", /machine::limits|Machine::activity|idle_at|session_ends_at|idle_logout/],
];

// Crate-level groups for everything that is not our code.
const STACK = [
  ["Rust std (core, alloc, std)", /^(core|alloc|std|__rust|<core|<alloc|<std|<&|<\[|<str|<char|<T|<F|<I|<u\d|<i\d|<f64|<bool|<\(|<usize)/],
  ["serde-wasm-bindgen", /serde_wasm_bindgen/],
  ["serde", /serde/],
  ["wasm-bindgen (incl. futures)", /wasm_bindgen/],
  ["js-sys", /js_sys/],
  ["web-sys", /web_sys/],
  ["dlmalloc (std's allocator)", /dlmalloc/],
  ["base64", /base64/],
  ["hashbrown (std's HashMap)", /hashbrown/],
  ["gloo-timers", /gloo/],
];

function twiggyRows(wasm) {
  const csv = execFileSync("twiggy", ["top", "-n", "1000000", "--format", "csv", wasm], {
    maxBuffer: 64 << 20,
  }).toString();
  return csv
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .map((line) => {
      // Name,ShallowSize,ShallowSizePercent,RetainedSize,RetainedSizePercent; names may be quoted.
      const m = line.match(/^("(?:[^"]|"")*"|[^,]*),(\d+),/);
      return m ? { name: m[1].replace(/^"|"$/g, "").replace(/""/g, '"'), bytes: Number(m[2]) } : null;
    })
    .filter((r) => r && !r.name.includes("function names"));
}

/** Our code by module: `wasm_session::core::machine::refresh` → `core::machine::refresh`. */
function ownModule(name) {
  const m = name.match(/wasm_session::((?:core|web)::\w+(?:::(?:refresh|signin))?)/);
  return m ? m[1] : null;
}

function classify(rows) {
  const byModule = new Map();
  const byFeature = new Map();
  const add = (map, key, bytes) => map.set(key, (map.get(key) || 0) + bytes);
  for (const { name, bytes } of rows) {
    const own = name.includes("wasm_session::") && !/^<?(core|alloc)::ptr::drop_in_place/.test(name);
    let group;
    if (name.startsWith("data segment")) group = "strings and tables (data)";
    else if (own) group = ownModule(name) || "wasm_session (glue-facing)";
    else if (/^(import|export|elem|type|code|table)\b|shim|^"type/.test(name)) group = "imports, exports, shims";
    else group = (STACK.find(([, re]) => re.test(name)) || ["other"])[0];
    add(byModule, group, bytes);
    let feature = "shared stack (Rust std, serde, wasm-bindgen, …)";
    if (group === "strings and tables (data)") feature = "strings and tables (all features)";
    else if (own) feature = (FEATURES.find(([, re]) => re.test(name)) || ["token core (refresh, tabs, storage, fetch)"])[0];
    add(byFeature, feature, bytes);
  }
  return { byModule, byFeature };
}

function peers() {
  const dir = at("target", "size-peers");
  mkdirSync(dir, { recursive: true });
  const pkgs = ["esbuild", ...PEERS.map(([, p]) => p)];
  if (!pkgs.every((p) => existsSync(path.join(dir, "node_modules", p, "package.json")))) {
    writeFileSync(path.join(dir, "package.json"), '{ "private": true }\n');
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", ...pkgs], { cwd: dir, stdio: "inherit" });
  }
  const esbuild = path.join(dir, "node_modules", ".bin", "esbuild");
  const bundle = (entry, cwd) =>
    execFileSync(esbuild, ["--bundle", "--minify", "--format=esm", "--log-level=error", "--platform=browser"], {
      input: entry,
      cwd,
      maxBuffer: 64 << 20,
    });
  const version = (p) => JSON.parse(readFileSync(path.join(dir, "node_modules", p, "package.json"))).version;
  const out = PEERS.map(([label, p, entry]) => ({ label, version: version(p), gzip: gzip(bundle(entry, dir)) }));
  return { out, bundle };
}

const named = at("target", "wasm-opt.wasm");
if (!existsSync(at("pkg", "oidc", "wasm_session_bg.wasm")) || !existsSync(named)) {
  console.error("size-report: build the package first (make build)");
  process.exit(1);
}
const { out: peerSizes, bundle } = peers();
/** An entry's download: the .wasm, and its glue as published and minified by esbuild. */
const entry = (dir) => {
  const wasm = readFileSync(path.join(dir, "wasm_session_bg.wasm"));
  const glue = readFileSync(path.join(dir, "wasm_session.js"));
  const glueMin = bundle(glue.toString(), dir);
  return {
    wasmGz: gzip(wasm),
    wasmBr: brotli(wasm),
    glueGz: gzip(glue),
    glueMinGz: gzip(glueMin),
    glueMinBr: brotli(glueMin),
  };
};
const ours = entry(at("pkg"));
const oidc = entry(at("pkg", "oidc"));
const oidcOnlyDir = at("target", "size-oidc-only");
execFileSync(at("scripts", "build-pkg.sh"), ["--only", oidcOnlyDir, "--no-default-features", "--features", "js,oidc"], {
  cwd: root,
  stdio: "inherit",
});
const oidcOnly = entry(oidcOnlyDir);
const download = (e) => e.wasmGz + e.glueMinGz;
const rows = twiggyRows(named);
const total = rows.reduce((n, r) => n + r.bytes, 0);
const { byModule, byFeature } = classify(rows);
const est = (bytes) => (bytes / total) * ours.wasmGz;

const lines = [];
const p = (s = "") => lines.push(s);
p("| Library | Download, gzip (minified by esbuild) |");
p("|---|---|");
for (const peer of peerSizes) p(`| ${peer.label} ${peer.version} | ${kb(peer.gzip)} KB |`);
for (const [name, e] of [["wasm-session", ours], ["wasm-session/oidc", oidc]]) {
  p(
    `| **${name}** | **${kb(download(e))} KB** (wasm ${kb(e.wasmGz)} + glue ${kb(e.glueMinGz)}; ` +
      `${kb(e.wasmBr + e.glueMinBr)} KB brotli; glue as published ${kb(e.glueGz)} KB) |`,
  );
}
p();
p(`\`wasm-session\` by feature (≈ KB gzip, from ${kb(total)} KB of code and data, raw), and what`);
p("`wasm-session/oidc` adds (measured):");
p();
p("| Feature | ≈ gzip | raw |");
p("|---|---|---|");
for (const [k, v] of [...byFeature].sort((a, b) => b[1] - a[1])) p(`| ${k} | ${kb(est(v))} KB | ${kb(v)} KB |`);
p(`| OpenID Connect (a build with it alone minus \`wasm-session\`) | ${kb(download(oidcOnly) - download(ours))} KB | |`);
p(`| DPoP (\`wasm-session/oidc\` minus that build) | ${kb(download(oidc) - download(oidcOnly))} KB | |`);
p();
p("`wasm-session` by part (≈ KB gzip; our modules, then the crates):");
p();
p("| Part | ≈ gzip | raw |");
p("|---|---|---|");
const sorted = [...byModule].sort((a, b) => b[1] - a[1]);
const mine = sorted.filter(([k]) => /^(core|web)::/.test(k));
const rest = sorted.filter(([k]) => !/^(core|web)::/.test(k));
for (const [k, v] of [...mine, ...rest]) p(`| ${/^(core|web)::/.test(k) ? "`" + k + "`" : k} | ${kb(est(v))} KB | ${kb(v)} KB |`);
const report = lines.join("\n");
console.log(report);

if (process.argv.includes("--readme")) {
  const readme = at("README.md");
  const text = readFileSync(readme, "utf8");
  const start = "<!-- size-report:start (make size-report writes this part) -->";
  const end = "<!-- size-report:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) {
    console.error(`size-report: README.md has no ${start} … ${end} section`);
    process.exit(1);
  }
  writeFileSync(readme, text.slice(0, i + start.length) + "\n" + report + "\n" + text.slice(j));
  console.log("size-report: README.md updated");
}
