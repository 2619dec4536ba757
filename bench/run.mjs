// `make bench`: prints one line per figure (name value unit) and writes bench/results.json.
// Figures, not tests: nothing here fails on a slow machine. Headless Chromium against the
// local server (release build), as in the end-to-end tests.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startServer, startProvider, launch, openTab, median, root, until } from "../tests/e2e/harness.mjs";
import { allSizes } from "./size.mjs";

const results = [];
function figure(name, value, unit) {
  const v = typeof value === "number" ? Math.round(value * 1000) / 1000 : value;
  results.push({ name, value: v, unit });
  console.log(`${name} ${v} ${unit}`);
}

const login = (page, config = {}) => page.evaluate(async (config) => {
  const s = window.makeSession({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", ...config });
  await s.ready;
  if (!s.isAuthenticated) await s.login("/auth/login", { username: "demo", password: "demo" });
}, config);

async function size() {
  for (const [k, v] of Object.entries(allSizes())) figure(k, v, "bytes");
}

async function perRequest(browser, server) {
  const context = await browser.newContext();
  const page = await openTab(context, server);
  await login(page);
  // Interleaved rounds of 50 sequential calls each, alternating which goes first; per-call
  // time is a round's mean (the page's timer resolution is too coarse for single calls). The
  // overhead and ratio are medians over the paired rounds, which cancels most machine drift.
  const r = await page.evaluate(async () => {
    const auth = await session.authHeader();
    const ours = [], plain = [], diff = [], ratio = [];
    const round = async (call) => {
      const t = performance.now();
      for (let i = 0; i < 50; i++) await (await call()).text();
      return (performance.now() - t) / 50;
    };
    const mine = () => round(() => session.fetch("/api/ping"));
    const theirs = () => round(() => fetch("/api/ping", { headers: { authorization: auth } }));
    for (let i = 0; i < 60; i++) {
      let a, b;
      if (i % 2) { b = await theirs(); a = await mine(); } else { a = await mine(); b = await theirs(); }
      ours.push(a); plain.push(b); diff.push(a - b); ratio.push(a / b);
    }
    const med = (xs) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
    // The library's own CPU cost, without the network: `fetch` answers at once. On loopback
    // the difference above also holds scheduling noise between the browser's processes.
    const answer = new Response("pong");
    const real = window.fetch;
    window.fetch = () => Promise.resolve(answer);
    const cpu = async (call) => {
      const t = performance.now();
      for (let i = 0; i < 500; i++) await call();
      return (performance.now() - t) / 500;
    };
    const cpuOurs = [], cpuPlain = [];
    try {
      for (let i = 0; i < 20; i++) {
        cpuOurs.push(await cpu(() => session.fetch("/api/ping")));
        cpuPlain.push(await cpu(() => { const q = new Request("/api/ping"); q.headers.set("authorization", auth); return fetch(q); }));
      }
    } finally {
      window.fetch = real;
    }
    return {
      ours: med(ours), plain: med(plain), diff: med(diff), ratio: med(ratio), n: ours.length * 50,
      cpuOurs: med(cpuOurs), cpuPlain: med(cpuPlain),
    };
  });
  figure("request.calls_each", r.n, "calls");
  figure("request.session_fetch.median", r.ours * 1000, "us");
  figure("request.plain_fetch.median", r.plain * 1000, "us");
  figure("request.overhead.ratio", r.ratio, "x");
  figure("request.overhead.median", r.diff * 1000, "us");
  figure("request.cpu.session_fetch", r.cpuOurs * 1000, "us");
  figure("request.cpu.plain_fetch", r.cpuPlain * 1000, "us");
  await context.close();
}

// DPoP's price per request: a proof signed by WebCrypto (SHA-256 of the token for `ath`,
// then ECDSA P-256) before each call. The library's CPU per `session.fetch`, `fetch`
// answering at once, with a DPoP session beside a Bearer one of the same entry
// (`wasm-session/oidc`), in interleaved rounds.
async function dpop(browser, server) {
  const context = await browser.newContext();
  const page = await openTab(context, server, "/e2e-oidc.html");
  const r = await page.evaluate(async () => {
    const signIn = async (namespace, dpop) => {
      const s = new lib.Session({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", namespace, dpop, crossTab: false });
      await s.ready;
      await s.login("/auth/login", { username: "demo", password: "demo" });
      return s;
    };
    const bearer = await signIn("bench-bearer", false);
    const bound = await signIn("bench-dpop", true);
    const answer = new Response("pong");
    const real = window.fetch;
    window.fetch = () => Promise.resolve(answer);
    const cpu = async (s) => {
      const t = performance.now();
      for (let i = 0; i < 200; i++) await s.fetch("/api/ping");
      return (performance.now() - t) / 200;
    };
    const plain = [], signed = [];
    try {
      for (let i = 0; i < 15; i++) {
        if (i % 2) { signed.push(await cpu(bound)); plain.push(await cpu(bearer)); }
        else { plain.push(await cpu(bearer)); signed.push(await cpu(bound)); }
      }
    } finally {
      window.fetch = real;
    }
    const med = (xs) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
    return { plain: med(plain), signed: med(signed) };
  });
  figure("dpop.cpu.session_fetch_bearer", r.plain * 1000, "us");
  figure("dpop.cpu.session_fetch_dpop", r.signed * 1000, "us");
  figure("dpop.cpu.ratio", r.signed / r.plain, "x");
  await context.close();
}

async function concurrency(browser, server) {
  await server.reset();
  const context = await browser.newContext();
  await context.clock.install();
  const page = await openTab(context, server);
  await login(page);
  const now = await page.evaluate(() => Date.now());
  await page.clock.pauseAt(now + 10);
  await page.clock.setSystemTime(now + 3_600_000); // the token is long expired
  const before = (await server.stats()).token_requests;
  // The page's clock is frozen (that is how the token is expired), so time it from outside.
  const started = performance.now();
  const ok = await page.evaluate(async () => {
    const statuses = await Promise.all(Array.from({ length: 100 }, () => session.fetch("/api/ping").then((r) => r.status)));
    return statuses.filter((s) => s === 200).length;
  });
  const r = { ms: performance.now() - started, ok };
  figure("concurrency.calls", 100, "calls");
  figure("concurrency.ok", r.ok, "calls");
  figure("concurrency.refresh_calls", (await server.stats()).token_requests - before, "calls");
  figure("concurrency.all_done", r.ms, "ms");
  await context.close();
}

async function startup(browser, server) {
  const run = async (page, storage) => {
    await page.goto(`${server.main}/bench-startup.html?storage=${storage}`);
    return (await page.waitForFunction(() => window.result)).jsonValue();
  };
  // The first tab's cold path: a fresh context each load (empty cache, no other tab), from
  // the first line of the page's module script to `ready`, for each entry in each storage
  // mode, beside the peers measured the same way (www/bench-peer.html: import, construction,
  // their "ready" with nothing signed in), a one-line module's import, and an empty page's
  // script start, from navigation start (what the page costs without any of them). 15
  // rounds; each round loads every page once, starting one further along the list each time,
  // so that the machine's drift falls on all of them alike.
  const coldLoad = async (pagePath) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.main}${pagePath}`);
    const r = await (await page.waitForFunction(() => window.result)).jsonValue();
    await context.close();
    return r;
  };
  // The peers' bundles (installed once into target/size-peers from the npm registry).
  execFileSync(process.execPath, [path.join(root, "scripts/bench-peers.mjs")], { stdio: ["ignore", "ignore", "inherit"] });
  const versions = JSON.parse(readFileSync(path.join(root, "www/bench-peers/versions.json"), "utf8"));
  const pages = [["empty_page", "/bench-empty.html"], ["empty_module", "/bench-peer.html?lib=empty-module"]];
  for (const [entry, query] of [["first_tab", ""], ["oidc_entry", "&entry=oidc"]]) {
    for (const storage of ["memory", "session", "local"]) pages.push([`${entry}.${storage}`, `/bench-startup.html?storage=${storage}${query}`]);
  }
  for (const lib of Object.keys(versions)) pages.push([`peer.${lib}`, `/bench-peer.html?lib=${lib}`]);
  const cold = new Map(pages.map(([name]) => [name, []]));
  for (let round = 0; round < 15; round++) {
    for (let i = 0; i < pages.length; i++) {
      const [name, pagePath] = pages[(round + i) % pages.length];
      cold.get(name).push(await coldLoad(pagePath));
    }
  }
  const med = (name, k) => median(cold.get(name).map((r) => r[k]));
  figure("startup.empty_page.script.median", med("empty_page", "nav"), "ms");
  // What importing any module costs here (a fresh context's first fetch): part of every
  // figure below.
  figure("startup.empty_module.ready.median", med("empty_module", "ready"), "ms");
  for (const [name] of pages.slice(2)) {
    if (cold.get(name).some((r) => r.restored)) throw new Error(`a cold first tab found a session (${name})`);
    if (name.startsWith("peer.")) figure(`startup.${name}.version`, versions[name.slice(5)], "npm");
    // load: import (+ init() for us); init: our init() alone; construct: the constructor;
    // restore: from its return to ready; session: constructor -> ready; ready: script start
    // -> ready.
    for (const k of ["script", "load", "init", "construct", "restore", "session", "ready"]) {
      if (k === "init" && name.startsWith("peer.")) continue;
      figure(`startup.${name}.${k}.median`, med(name, k === "script" ? "nav" : k), "ms");
    }
  }
  for (const [name] of pages.filter(([n]) => n.startsWith("first_tab.") || n.startsWith("oidc_entry."))) {
    for (const peer of ["auth0-spa-js", "oidc-client-ts"]) {
      figure(`startup.${name}.ready.vs_${peer}`, med(name, "ready") / med(`peer.${peer}`, "ready"), "x");
    }
  }
  // A second tab while a signed-in one is open (memory mode): ready with the first answer.
  const second = [];
  const context = await browser.newContext();
  const first = await openTab(context, server);
  await login(first, { namespace: "bench" });
  for (let i = 0; i < 15; i++) {
    const page = await context.newPage();
    second.push(await run(page, "memory"));
    await page.close();
  }
  if (!second.every((r) => r.restored && r.status === 200)) throw new Error("a second tab was not signed in");
  figure("startup.second_tab.restore.median", median(second.map((r) => r.restore)), "ms");
  figure("startup.second_tab.session.median", median(second.map((r) => r.session)), "ms");
  figure("startup.second_tab.ready.median", median(second.map((r) => r.ready)), "ms");
  await context.close();
  // Restore from localStorage (warm cache): import, ready, first authorized response.
  const warm = [];
  const localContext = await browser.newContext();
  const page = await openTab(localContext, server);
  await login(page, { storage: "local", namespace: "bench" });
  for (let i = 0; i < 15; i++) warm.push(await run(page, "local"));
  if (!warm.every((r) => r.restored && r.status === 200)) throw new Error("start-up run not authorized");
  for (const k of ["load", "restore", "session", "first", "total"]) {
    figure(`startup.local.${k}.median`, median(warm.map((r) => r[k])), "ms");
  }
  await localContext.close();
}

async function crossTab(browser, server) {
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 4; i++) tabs.push(await openTab(context, server));
  for (const t of tabs) await t.evaluate(() => window.makeSession({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke" }).ready);
  const logout = [], adoption = [];
  for (let round = 0; round < 20; round++) {
    await tabs[0].evaluate(() => session.login("/auth/login", { username: "demo", password: "demo" }));
    for (const t of tabs) await t.waitForFunction(() => session.isAuthenticated);
    // Refresh adoption: tab 0 refreshes; time until every other tab holds the new token.
    await Promise.all(tabs.map((t) => t.evaluate(() => { window.events = []; })));
    const done = await tabs[0].evaluate(async () => {
      await session.refresh();
      return window.events.find((e) => e.type === "refresh").at;
    });
    const seen = await Promise.all(tabs.slice(1).map((t) =>
      t.waitForFunction(() => window.events.find((e) => e.type === "refresh")?.at).then((h) => h.jsonValue())));
    adoption.push(Math.max(...seen) - done);
    await Promise.all(tabs.map((t) => t.evaluate(() => { window.events = []; })));
    const t0 = await tabs[0].evaluate(() => { const t0 = Date.now(); session.logout(); return t0; });
    const out = await Promise.all(tabs.slice(1).map((t) =>
      t.waitForFunction(() => window.events.find((e) => e.type === "logout")?.at).then((h) => h.jsonValue())));
    logout.push(Math.max(...out) - t0);
  }
  figure("crosstab.logout_to_3_tabs.median", median(logout), "ms");
  figure("crosstab.logout_to_3_tabs.max", Math.max(...logout), "ms");
  figure("crosstab.refresh_adoption.median", median(adoption), "ms");
  figure("crosstab.refresh_adoption.max", Math.max(...adoption), "ms");
  await context.close();
}

async function memory(browser, server) {
  const context = await browser.newContext();
  const page = await openTab(context, server);
  await login(page);
  const r = await page.evaluate(async () => {
    const cycles = async (n) => { for (let i = 0; i < n; i++) await session.refresh(); };
    await cycles(10);
    const after10 = wasm.memory.buffer.byteLength;
    const t = performance.now();
    await cycles(9990);
    return { after10, after10000: wasm.memory.buffer.byteLength, ms: performance.now() - t };
  });
  figure("memory.after_10_refreshes", r.after10, "bytes");
  figure("memory.after_10000_refreshes", r.after10000, "bytes");
  figure("memory.growth", r.after10000 - r.after10, "bytes");
  figure("refresh.cycle.mean", r.ms / 9990, "ms");
  await context.close();
}

/**
 * OpenID Connect against oidc-provider: the whole sign-in with the provider's session
 * already there (loginWithRedirect → provider → back → signed in, measured in Node), and
 * `handleRedirectCallback` alone (code exchange, ID token checks, tokens installed).
 */
async function openid(browser, server) {
  const provider = await startProvider(server.main);
  const context = await browser.newContext();
  const page = await openTab(context, server);
  const app = server.main + "/e2e-oidc.html";
  const config = { issuer: provider.issuer, clientId: "demo-spa", redirectUri: app };
  const safe = (fn, arg) => page.evaluate(fn, arg).catch(() => null);
  const round = async (first) => {
    await page.evaluate((c) => { window.makeSession(c); }, config);
    const t0 = Date.now();
    await safe(() => { window.session.loginWithRedirect(); });
    if (first) {
      await until(() => page.url().includes("/interaction/"), { timeout: 20000 });
      await until(() => safe(() => !!document.querySelector("input[name=login]")));
      await safe(() => {
        document.querySelector("input[name=login]").value = "bench";
        document.querySelector("input[name=password]").value = "bench";
        document.querySelector("form").submit();
      });
    }
    await until(() => page.url().startsWith(app + "?code="), { timeout: 20000, interval: 5 });
    await until(() => safe(() => window.fixtureReady === true), { interval: 5 });
    const ms = await page.evaluate(async (c) => {
      const s = window.makeSession(c);
      const t = performance.now();
      await s.handleRedirectCallback();
      return performance.now() - t;
    }, config);
    return { callback: ms, total: Date.now() - t0 };
  };
  await round(true);
  const rounds = [];
  for (let i = 0; i < 15; i++) rounds.push(await round(false));
  figure("oidc.callback.median", median(rounds.map((r) => r.callback)), "ms");
  figure("oidc.signin_with_provider_session.median", median(rounds.map((r) => r.total)), "ms");
  await context.close();
  await provider.stop();
}

const server = await startServer({ ACCESS_TTL: "3600" });
const browser = await launch();
try {
  // `node bench/run.mjs [size] [request] [concurrency] [startup] [crosstab] [memory] [oidc]`: some.
  const only = process.argv.slice(2);
  const sections = { size, request: perRequest, dpop, concurrency, startup, crosstab: crossTab, memory, oidc: openid };
  for (const [name, run] of Object.entries(sections)) {
    if (only.length === 0 || only.includes(name)) await run(browser, server);
  }
} finally {
  await browser.close();
  await server.stop();
}
if (process.argv.length <= 2) {
  writeFileSync(path.join(root, "bench/results.json"), JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + "\n");
  console.log(`wrote bench/results.json (${results.length} figures)`);
}
