// Tokens never leak: not into URLs, error messages or events; nothing left after logout.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchEngine, engines, openTab } from "./harness.mjs";

for (const engine of engines) describe(engine, () => {
  let browser;
  before(async () => { browser = await launchEngine(engine); });
  after(async () => { await browser?.close(); });

  test("tokens never appear in URLs, in thrown errors' messages, or in events", async () => {
    const server = await startServer();
    const context = await browser.newContext();
    try {
      const page = await openTab(context, server);
      await page.evaluate(({ api }) => {
        window.seenTokens = new Set();
        window.thrown = [];
        window.note = () => {
          if (session.accessToken) seenTokens.add(session.accessToken);
          const stored = localStorage.getItem("wasm-session:default");
          if (stored) seenTokens.add(JSON.parse(stored).tokens.refresh_token);
        };
        window.attempt = async (f) => { try { await f(); } catch (e) { thrown.push(`${e.code} ${e.message}`); } };
        window.makeSession({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", storage: "local", allowedOrigins: [api] });
      }, { api: server.api });
      await page.evaluate(async () => {
        await session.login("/auth/login", { username: "demo", password: "demo" });
        note();
        await session.refresh(); note();
        await session.fetch("/api/me");
        await session.fetch("/__redirect?to=/api/me");
      });
      await server.faults({ count: 1, status: 503 });
      await page.evaluate(() => attempt(() => session.refresh()));
      await page.evaluate(async () => {
        await session.refresh(); note();
        await attempt(() => session.setTokens({ access_token: session.accessToken + " x", expires_in: 60 }));
        await attempt(() => session.login("/auth/login", { username: "demo", password: session.accessToken }));
        await attempt(() => session.fetch("http://127.0.0.1:1/unreachable"));
      });
      await server.faults({ count: 1, status: 400 });
      await page.evaluate(() => attempt(() => session.refresh()));
      const r = await page.evaluate(() => ({
        tokens: [...seenTokens], thrown, events: window.events.map((e) => JSON.stringify(e)),
      }));
      assert.ok(r.tokens.length >= 6, `tracked ${r.tokens.length} tokens`);
      assert.ok(r.thrown.length >= 4 && r.events.length >= 5);
      for (const token of r.tokens) {
        for (const text of [...r.thrown, ...r.events]) {
          assert.ok(!text.includes(token), `a token leaked into: ${text.slice(0, 120)}`);
        }
      }
      assert.equal((await server.stats()).token_in_url, 0, "a token went into a URL");
    } finally { await context.close(); await server.stop(); }
  });

  for (const storage of ["memory", "session", "local"]) {
    test(`${storage}: after logout no token remains in any storage or reachable state`, async () => {
      const server = await startServer();
      const context = await browser.newContext();
      try {
        const page = await openTab(context, server);
        const r = await page.evaluate(async (storage) => {
          const s = window.makeSession({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", storage });
          await s.login("/auth/login", { username: "demo", password: "demo" });
          const tokens = [s.accessToken];
          await s.refresh();
          tokens.push(s.accessToken);
          await s.logout();
          const values = [];
          for (const area of [localStorage, sessionStorage]) {
            for (let i = 0; i < area.length; i++) values.push(area.getItem(area.key(i)));
          }
          values.push(document.cookie, JSON.stringify(await indexedDB.databases()));
          return {
            leaks: values.filter((v) => tokens.some((t) => v && v.includes(t.slice(-20)))),
            state: [s.isAuthenticated, s.accessToken, s.expiresAt, s.claims, s.refreshAt, await s.getAccessToken(), await s.authHeader()],
          };
        }, storage);
        assert.deepEqual(r.leaks, []);
        assert.deepEqual(r.state, [false, null, null, null, null, null, null]);
        assert.equal((await server.stats()).revocations, 1);
      } finally { await context.close(); await server.stop(); }
    });
  }
});
