// Soak (make soak; not part of make test): 3 tabs, 2-second tokens, steady API traffic for
// SOAK_SECONDS (120 by default). Zero 401s reaching the app, zero reuse, one refresh per
// token lifetime, and wasm memory flat.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openTab } from "../e2e/harness.mjs";

const seconds = Number(process.env.SOAK_SECONDS || 120);

test(`soak: 3 tabs, 2 s tokens, ${seconds} s of traffic`, { timeout: (seconds + 60) * 1000 }, async () => {
  const server = await startServer({ ACCESS_TTL: "2" });
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await openTab(context, server));
    for (const t of tabs) await t.evaluate(() => window.makeSession({ tokenUrl: "/auth/token" }).ready);
    await tabs[0].evaluate(() => session.login("/auth/login", { username: "demo", password: "demo" }));
    const memory = () => Promise.all(tabs.map((t) => t.evaluate(() => wasm.memory.buffer.byteLength)));
    const started = Date.now();
    const runs = tabs.map((t) => t.evaluate(async (ms) => {
      const seen = {};
      const end = Date.now() + ms;
      while (Date.now() < end) {
        let k;
        try { k = String((await session.fetch("/api/ping")).status); } catch (e) { k = e.code || e.name; }
        seen[k] = (seen[k] || 0) + 1;
        await new Promise((r) => setTimeout(r, 25));
      }
      return seen;
    }, seconds * 1000));
    await new Promise((r) => setTimeout(r, Math.min(20000, seconds * 200)));
    const warm = await memory();
    const seen = await Promise.all(runs);
    const elapsed = Date.now() - started;
    const end = await memory();
    const stats = await server.stats();
    const lifetimes = Math.floor(elapsed / 1500);
    const calls = seen.reduce((n, s) => n + Object.values(s).reduce((a, b) => a + b, 0), 0);
    console.log(`soak ${Math.round(elapsed / 1000)} s: calls=${calls} refreshes=${stats.refreshes} lifetimes=${lifetimes} ` +
      `reuse=${stats.refresh_reuse} api_401=${stats.api_unauthorized} memory warm=${warm} end=${end} per-tab=${JSON.stringify(seen)}`);
    for (const s of seen) assert.deepEqual(Object.keys(s), ["200"]);
    assert.equal(stats.refresh_reuse, 0);
    assert.equal(stats.api_unauthorized, 0);
    assert.ok(Math.abs(stats.refreshes - lifetimes) <= 1, `refreshes ${stats.refreshes} vs lifetimes ${lifetimes}`);
    assert.deepEqual(end, warm, "wasm memory grew");
  } finally { await browser.close(); await server.stop(); }
});
