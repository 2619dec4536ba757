// `make bench` (bench/run.mjs startup runs it): the peers' npm releases bundled for the
// start-up figures (www/bench-peer.html).
//
// Installs the peers and esbuild into target/size-peers/ from the npm registry, as
// scripts/size-report.mjs does (once: nothing is installed when they are there), and bundles
// each peer's entry with esbuild (minified ESM, as a user's bundler would) into
// www/bench-peers/<name>.js, which the demo server serves (git-ignored), beside a one-line
// module (empty-module.js: what fetching any module costs). Also writes
// www/bench-peers/versions.json, so that the figures can name what they measured.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = path.join(root, "target", "size-peers");
const out = path.join(root, "www", "bench-peers");

// Name in the figures, npm package, what the page imports from the bundle.
export const PEERS = [
  ["keycloak-js", "keycloak-js", "export { default as Keycloak } from 'keycloak-js';"],
  ["oidc-client-ts", "oidc-client-ts", "export { UserManager } from 'oidc-client-ts';"],
  ["supabase-auth-js", "@supabase/auth-js", "export { GoTrueClient } from '@supabase/auth-js';"],
  ["auth0-spa-js", "@auth0/auth0-spa-js", "export { Auth0Client } from '@auth0/auth0-spa-js';"],
];

const pkgs = ["esbuild", ...PEERS.map(([, p]) => p)];
mkdirSync(dir, { recursive: true });
if (!pkgs.every((p) => existsSync(path.join(dir, "node_modules", p, "package.json")))) {
  if (!existsSync(path.join(dir, "package.json"))) writeFileSync(path.join(dir, "package.json"), '{ "private": true }\n');
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", ...pkgs], { cwd: dir, stdio: "inherit" });
}
mkdirSync(out, { recursive: true });
const esbuild = path.join(dir, "node_modules", ".bin", "esbuild");
const versions = {};
for (const [name, pkg, entry] of PEERS) {
  execFileSync(esbuild, ["--bundle", "--minify", "--format=esm", "--log-level=error", "--platform=browser",
    `--outfile=${path.join(out, name + ".js")}`], { input: entry, cwd: dir });
  versions[name] = JSON.parse(readFileSync(path.join(dir, "node_modules", pkg, "package.json"))).version;
}
// The floor under every figure: a one-line module fetched from the same server.
writeFileSync(path.join(out, "empty-module.js"), "export const empty = true;\n");
writeFileSync(path.join(out, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`bench peers: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(", ")} (www/bench-peers/)`);
