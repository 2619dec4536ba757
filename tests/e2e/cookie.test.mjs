// Cookie mode against the demo server's cookie sessions: an HttpOnly cookie the page cannot
// read, a CSRF token in memory, forged cross-site requests refused, every tab in step.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchEngine, engines, openTab, until } from "./harness.mjs";

const creds = { username: "demo", password: "demo" };

/** Opens `n` tabs, each with a cookie-mode session (`extra` config added). */
async function cookieTabs(context, server, n, extra = {}) {
  const tabs = [];
  for (let i = 0; i < n; i++) {
    const page = await openTab(context, server);
    await page.evaluate(async (config) => {
      window.makeSession(config);
      await session.ready;
    }, { mode: "cookie", sessionUrl: "/session", allowedOrigins: [server.api], ...extra });
    tabs.push(page);
  }
  return tabs;
}

const sessionCookie = async (context) => (await context.cookies()).find((c) => c.name === "ws_sid");

for (const engine of engines) describe(engine, () => {
  let browser;
  before(async () => { browser = await launchEngine(engine); });
  after(async () => { await browser?.close(); });

  test("cookie mode: an HttpOnly cookie, the CSRF token only in memory, unsafe calls work through session.fetch alone", async () => {
    const server = await startServer();
    const context = await browser.newContext();
    try {
      const [page] = await cookieTabs(context, server, 1);
      const r = await page.evaluate(async ({ api, foreign }) => {
        await session.login("/session/login", { username: "demo", password: "demo" });
        const post = (url) => session.fetch(url, { method: "POST" }).then(async (res) => [res.status, await res.json()]);
        const plain = await fetch("/api/counter", { method: "POST" });
        const stored = [];
        for (const area of [localStorage, sessionStorage]) {
          for (let i = 0; i < area.length; i++) stored.push(area.getItem(area.key(i)));
        }
        return {
          signedIn: session.isAuthenticated, user: session.user, mode: session.mode,
          accessToken: session.accessToken, header: await session.authHeader(), csrf: session.csrfToken,
          documentCookie: document.cookie, stored,
          same: await post("/api/counter"),
          otherApi: await post(api + "/api/counter"),
          plain: [plain.status, await plain.json()],
          foreign: (await session.fetch(foreign + "/x", { method: "POST" })).status,
          events: window.events.map((e) => e.type),
        };
      }, { api: server.api, foreign: server.foreign });
      assert.equal(r.signedIn, true);
      assert.deepEqual(r.user, { sub: "demo", name: "Demo User" });
      assert.equal(r.mode, "cookie");
      assert.deepEqual([r.accessToken, r.header], [null, null], "no token in cookie mode");
      assert.ok(typeof r.csrf === "string" && r.csrf.length >= 20);
      assert.ok(!r.documentCookie.includes("ws_sid"), `the page can read the session cookie: ${r.documentCookie}`);
      assert.ok(r.stored.every((v) => !v.includes(r.csrf)), "the CSRF token was stored");
      const cookie = await sessionCookie(context);
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, "Strict");
      assert.deepEqual(r.same, [200, { count: 1 }]);
      assert.deepEqual(r.otherApi, [200, { count: 2 }], "allowedOrigins get the cookie and the CSRF header");
      assert.deepEqual(r.plain, [403, { error: "csrf_failed", error_description: r.plain[1].error_description }],
        "the cookie alone does not make an unsafe request");
      assert.equal(r.foreign, 200);
      const foreign = await server.stats(server.foreign);
      assert.deepEqual([foreign.cookie_seen, foreign.authorization_seen], [0, 0], "the session went to a foreign origin");
      const stats = await server.stats();
      assert.deepEqual([stats.csrf_rejected, stats.sessions_active], [1, 1]);
      assert.deepEqual(r.events, ["login"]);
    } finally { await context.close(); await server.stop(); }
  });

  test("a forged form POST from another origin is refused (403 same-site, 401 cross-site) and changes nothing", async () => {
    const server = await startServer();
    const context = await browser.newContext();
    try {
      const [page] = await cookieTabs(context, server, 1);
      await page.evaluate(async () => {
        await session.login("/session/login", { username: "demo", password: "demo" });
        await session.fetch("/api/counter", { method: "POST" });
      });
      // Another port on the same host is another origin but the same site: the browser sends
      // the cookie, and the missing CSRF header is what refuses the request.
      const target = encodeURIComponent(server.main + "/api/counter");
      const attacker = await context.newPage();
      await attacker.goto(`${server.foreign}/attack.html?to=${target}`);
      await until(async () => (await server.stats()).csrf_rejected === 1, { what: "the forged POST" });
      // Another host is another site: SameSite=Strict keeps the cookie home.
      await attacker.goto(`${server.foreign.replace("127.0.0.1", "localhost")}/attack.html?to=${target}`);
      await until(async () => (await server.stats()).api_unauthorized === 1, { what: "the cross-site POST" });
      const after = await page.evaluate(async () => {
        const res = await session.fetch("/api/counter");
        return [res.status, await res.json(), session.isAuthenticated];
      });
      assert.deepEqual(after, [200, { count: 1 }, true], "the forged requests changed the counter or the session");
      assert.equal((await server.stats()).csrf_rejected, 1);
    } finally { await context.close(); await server.stop(); }
  });

  // A tab whose read of the session endpoint and the other tabs' answer to its hello cross
  // hears the same session twice: no `refresh` event for it, whichever comes first and
  // whichever end is later (WebKit showed both races; 9 of 9 WebKit runs under load pass).
  test("tabs restore the session from the server; logout in one ends it on the server and in every tab", async () => {
    const server = await startServer();
    const context = await browser.newContext();
    try {
      const [first] = await cookieTabs(context, server, 1);
      await first.evaluate((c) => session.login("/session/login", c), creds);
      const tabs = [first, ...await cookieTabs(context, server, 2)];
      for (const tab of tabs) {
        assert.deepEqual(await tab.evaluate(() => [session.isAuthenticated, session.user?.name]), [true, "Demo User"]);
      }
      await tabs[2].reload();
      await tabs[2].waitForFunction(() => window.fixtureReady === true);
      const reloaded = await tabs[2].evaluate(async () => {
        window.makeSession({ mode: "cookie", sessionUrl: "/session" });
        await session.ready;
        return [session.isAuthenticated, session.csrfToken !== null];
      });
      assert.deepEqual(reloaded, [true, true], "a reload restores the live session");
      const refreshes = await Promise.all(tabs.map((t) => t.evaluate(() => events.filter((e) => e.type === "refresh").length)));
      assert.deepEqual(refreshes, [0, 0, 0], "opening a tab changed the others' session");
      await tabs[1].evaluate(() => session.logout());
      for (const [i, tab] of tabs.entries()) {
        await tab.waitForFunction(() => !session.isAuthenticated);
        const r = await tab.evaluate(async () => [
          window.events.filter((e) => e.type === "logout").map((e) => e.reason), session.csrfToken,
          (await fetch("/api/me")).status,
        ]);
        assert.deepEqual(r, [[i === 1 ? "user" : "other_tab"], null, 401]);
      }
      assert.equal((await server.stats()).sessions_active, 0);
      assert.equal(await sessionCookie(context), undefined, "logout clears the cookie");
    } finally { await context.close(); await server.stop(); }
  });

  test("sign-in replaces a planted session cookie; an extension rotates the id and every tab keeps working", async () => {
    const server = await startServer();
    const context = await browser.newContext();
    try {
      const tabs = await cookieTabs(context, server, 2);
      // An attacker who can set a cookie for the site plants a session id before sign-in.
      await tabs[0].evaluate(() => { document.cookie = "ws_sid=planted; path=/"; });
      await tabs[0].evaluate((c) => session.login("/session/login", c), creds);
      const first = await sessionCookie(context);
      assert.notEqual(first.value, "planted");
      await tabs[1].waitForFunction(() => session.isAuthenticated);
      const csrf = await tabs[1].evaluate(() => session.csrfToken);
      await tabs[1].evaluate(() => session.refresh());
      const second = await sessionCookie(context);
      assert.notEqual(second.value, first.value, "the extension did not rotate the session id");
      assert.equal((await server.stats()).session_refreshes, 1);
      for (const tab of tabs) {
        const r = await tab.evaluate(async () => {
          const res = await session.fetch("/api/counter", { method: "POST" });
          return [res.status, session.csrfToken];
        });
        assert.deepEqual(r, [200, csrf]);
      }
    } finally { await context.close(); await server.stop(); }
  });
});
