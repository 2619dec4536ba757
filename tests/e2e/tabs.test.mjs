// Several tabs (pages of one browser context share BroadcastChannel, storage and Web Locks):
// one refresh per lifetime, logout and login everywhere, memory-mode sharing, bad messages.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, launchEngine, engines, openTab, until, within, median, recordRequests, noteDeadlines, refreshedOnTime,
} from "./harness.mjs";

for (const engine of engines) describe(engine, () => {
  let browser;
  before(async () => { browser = await launchEngine(engine); });
  after(async () => { await browser?.close(); });

  const NO_WEB_LOCKS = () => { delete Navigator.prototype.locks; };
  const NO_BROADCAST_CHANNEL = () => { delete window.BroadcastChannel; };

  async function setup(env = {}, initScript) {
    const server = await startServer(env);
    const context = await browser.newContext();
    await recordRequests(context);
    if (initScript) await context.addInitScript(initScript);
    return { server, context, async close() { await context.close(); await server.stop(); } };
  }

  const open = (page, config = {}) => page.evaluate(async (config) => {
    const s = window.makeSession({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", ...config });
    return s.ready;
  }, config);

  const loginIn = (page) => page.evaluate(() => session.login("/auth/login", { username: "demo", password: "demo" }));

  const state = (page) => page.evaluate(() => ({
    auth: session.isAuthenticated, token: session.accessToken,
    logouts: window.events.filter((e) => e.type === "logout").map((e) => e.reason),
  }));

  const cadence = [
    ["memory"], ["session"], ["local"],
    ["memory", NO_WEB_LOCKS, "without Web Locks"],
    ["local", NO_BROADCAST_CHANNEL, "without BroadcastChannel"],
  ];
  for (const [storage, initScript, label = ""] of cadence) {
    // Without Web Locks one use per token holds while channel messages take less than the
    // 200 ms claim window (README, guarantees). It was 60 ms until WebKit on a loaded 2-core
    // machine delivered a claim 58+ ms late and two tabs refreshed with one token (5 of 8
    // runs under load); with 200 ms it passed 3 of 3 WebKit runs at a load average of 12-15.
    test(`4 tabs x 8 lifetimes (${storage}) ${label}: one refresh per lifetime, no reuse, no 401`, async () => {
      const t = await setup({ ACCESS_TTL: "2" }, initScript);
      try {
        const tabs = [];
        for (let i = 0; i < 4; i++) tabs.push(await openTab(t.context, t.server));
        await open(tabs[0], { storage });
        await noteDeadlines(tabs[0]);
        await loginIn(tabs[0]);
        for (const tab of tabs.slice(1)) {
          assert.equal(await open(tab, { storage }), true, "new tab signed in");
          await noteDeadlines(tab);
        }
        const results = Promise.all(tabs.map((tab) => tab.evaluate(async () => {
          const statuses = {};
          while (!window.stopCalls) {
            const r = await session.fetch("/api/me");
            statuses[r.status] = (statuses[r.status] || 0) + 1;
            await new Promise((r) => setTimeout(r, 30));
          }
          session.dispose();
          return statuses;
        })));
        // A tab's loop that fails is reported below, after the refreshes it held up.
        results.catch(() => {});
        // Calls in every tab until the seventh refresh (eight lifetimes), then every session stops.
        await until(async () => (await t.server.stats()).refreshes >= 7, { timeout: 60000, interval: 100, what: "7 refreshes" })
          .catch(async (e) => {
            const seen = await Promise.all(tabs.map((tab) => tab.evaluate(() => ({
              auth: session.isAuthenticated, events: window.events.map((e) => e.type + (e.code ? ":" + e.code : "")),
              sent: window.sentRequests.filter((r) => r.path === "/auth/token").length,
            })).catch((e) => e.message)));
            throw new Error(`${e.message}: server ${JSON.stringify(await t.server.stats())}; tabs ${JSON.stringify(seen)}`);
          });
        await Promise.all(tabs.map((tab) => tab.evaluate(() => { window.stopCalls = true; })));
        const statuses = await results;
        // Never more than one refresh per lifetime: each left once its token set was due. Fewer
        // are no fault (a background tab's throttled timers; without Web Locks, a claim won).
        const sends = await refreshedOnTime(tabs);
        // A refresh sent before dispose may still be on its way to the server.
        await until(async () => (await t.server.stats()).token_requests === sends.length, { what: "every sent refresh at the server" });
        const stats = await t.server.stats();
        console.log(`${storage} ${label}: refreshes=${stats.refreshes} token_requests=${stats.token_requests} ` +
          `reuse=${stats.refresh_reuse} api_ok=${stats.api_ok} api_401=${stats.api_unauthorized} per-tab=${JSON.stringify(statuses)}`);
        for (const r of statuses) assert.equal(r[401], undefined, "a 401 reached the app");
        assert.equal(stats.refresh_reuse, 0);
        assert.equal(stats.api_unauthorized, 0);
        assert.equal(stats.token_requests, stats.refreshes, "every token request was a successful refresh");
      } finally { await t.close(); }
    });
  }

  test("logout in one tab signs out every tab, with no timer in the way", async () => {
    const t = await setup();
    try {
      // Chromium: the page clocks stand still (Playwright's clock), so a logout that needed a
      // timer or a poll would never arrive, and one that arrives does so at 0 ms on every
      // clock. The Firefox and WebKit drivers have no clock: there the time is only printed.
      const still = engine === "chromium";
      if (still) await t.context.clock.install();
      const tabs = [];
      for (let i = 0; i < 4; i++) tabs.push(await openTab(t.context, t.server));
      for (const tab of tabs) await open(tab);
      if (still) await tabs[0].clock.pauseAt((await tabs[0].evaluate(() => Date.now())) + 1000);
      const times = [];
      for (let round = 0; round < 10; round++) {
        await loginIn(tabs[0]);
        await until(async () => (await Promise.all(tabs.map((p) => p.evaluate(() => session.isAuthenticated)))).every(Boolean),
          { what: "login everywhere" });
        await Promise.all(tabs.map((p) => p.evaluate(() => { window.events = []; })));
        const t0 = await tabs[0].evaluate(() => { const t0 = Date.now(); session.logout(); return t0; });
        const seen = await Promise.all(tabs.slice(1).map((p) => p.waitForFunction(
          () => window.events.find((e) => e.type === "logout")?.at).then((h) => h.jsonValue())));
        times.push(Math.max(...seen) - t0);
        for (const tab of tabs.slice(1)) {
          assert.deepEqual(await state(tab), { auth: false, token: null, logouts: ["other_tab"] });
        }
        assert.deepEqual(await state(tabs[0]), { auth: false, token: null, logouts: ["user"] });
      }
      console.log(`logout propagation to 3 tabs (${still ? "clocks standing still" : "page clock"}): ` +
        `median ${median(times)} ms, max ${Math.max(...times)} ms over ${times.length}`);
      if (still) assert.deepEqual(times, Array(10).fill(0), "page time passed before every tab had the logout");
      assert.equal((await t.server.stats()).revocations, 10);
    } finally { await t.close(); }
  });

  test("without BroadcastChannel, logout still reaches every tab (storage events)", async () => {
    const t = await setup({}, NO_BROADCAST_CHANNEL);
    try {
      const [a, b] = [await openTab(t.context, t.server), await openTab(t.context, t.server)];
      await open(a, { storage: "local" });
      await loginIn(a);
      assert.equal(await open(b, { storage: "local" }), true);
      await a.evaluate(() => session.logout());
      await b.waitForFunction(() => !session.isAuthenticated);
      assert.deepEqual(await state(b), { auth: false, token: null, logouts: ["other_tab"] });
      assert.equal(await b.evaluate(() => localStorage.getItem("wasm-session:default")), null);
    } finally { await t.close(); }
  });

  test("refresh_rejected in one tab ends the session in every tab with that reason", async () => {
    const t = await setup();
    try {
      const [a, b] = [await openTab(t.context, t.server), await openTab(t.context, t.server)];
      await open(a);
      await loginIn(a);
      await open(b);
      await t.server.faults({ count: 1, status: 400 });
      await a.evaluate(() => session.refresh().catch(() => {}));
      await b.waitForFunction(() => !session.isAuthenticated);
      assert.deepEqual(await state(b), { auth: false, token: null, logouts: ["refresh_rejected"] });
    } finally { await t.close(); }
  });

  test("a tab closed while holding the refresh lock does not stall the others", async () => {
    const t = await setup();
    try {
      const [a, b] = [await openTab(t.context, t.server), await openTab(t.context, t.server)];
      // Every timeout that could free tab B is 10 minutes away (the largest allowed), and so is
      // the end of tab A's request: B's refresh ends only because it sees A gone (the lock
      // released) and gives A's result up after a 1 s grace.
      const config = { requestTimeoutMs: 600_000, lockTimeoutMs: 600_000 };
      await open(a, config);
      await loginIn(a);
      await open(b, config);
      await t.server.faults({ count: 1, hang_ms: 600_000 });
      a.evaluate(() => session.refresh()).catch(() => {});
      await until(async () => (await t.server.stats()).faults_applied === 1, { what: "tab A stuck mid-refresh" });
      await a.close();
      const started = Date.now();
      const result = await within(b.evaluate(() => session.refresh().then(() => "ok", (e) => e.code)), 60_000,
        "tab B's refresh (it waited on a timeout)");
      console.log(`refresh after the lock holder closed: ${Date.now() - started} ms`);
      assert.equal(result, "ok");
      const stats = await t.server.stats();
      assert.equal(stats.refreshes, 1);
      assert.equal(stats.refresh_reuse, 0);
    } finally { await t.close(); }
  });

  test("memory mode: a new tab is signed in without a refresh; with every tab closed it is not", async () => {
    const t = await setup();
    try {
      const a = await openTab(t.context, t.server);
      await open(a);
      await loginIn(a);
      const b = await openTab(t.context, t.server);
      assert.equal(await open(b), true);
      const token = await a.evaluate(() => session.accessToken);
      assert.equal(await b.evaluate(() => session.accessToken), token);
      assert.equal(await b.evaluate(async () => (await session.fetch("/api/me")).status), 200);
      assert.equal((await t.server.stats()).token_requests, 0, "no refresh call");
      await a.close();
      await b.close();
      const c = await openTab(t.context, t.server);
      assert.equal(await open(c), false, "nothing survives the last tab in memory mode");
    } finally { await t.close(); }
  });

  test("a login in one tab is picked up by the open tabs", async () => {
    const t = await setup();
    try {
      const [a, b] = [await openTab(t.context, t.server), await openTab(t.context, t.server)];
      await open(a);
      assert.equal(await open(b), false);
      await loginIn(a);
      await b.waitForFunction(() => window.events.some((e) => e.type === "login"));
      assert.equal(await b.evaluate(() => session.accessToken), await a.evaluate(() => session.accessToken));
    } finally { await t.close(); }
  });

  /** Two tabs in `local` mode, signed in in the first. */
  async function twoSignedIn(t) {
    const [a, b] = [await openTab(t.context, t.server), await openTab(t.context, t.server)];
    await open(a, { storage: "local" });
    await loginIn(a);
    await open(b, { storage: "local" });
    return [a, b];
  }

  test("garbage on the channel and in storage changes nothing", async () => {
    const t = await setup();
    try {
      const [a, b] = await twoSignedIn(t);
      const before = await state(b);
      await a.evaluate(() => {
        const c = new BroadcastChannel("wasm-session:default");
        const base = { v: 2, ns: "default", from: "intruder" };
        const tokens = (t) => ({ access_token: "evil", issued_at: Date.now(), expires_at: Date.now() + 1e6, ...t });
        for (const m of [
          42, "logout", null, [], { type: "logout" },
          { ...base, v: 3, type: "logout", seq: 9e12, reason: "user" },
          { ...base, v: 1, type: "logout", seq: 9e12, reason: "user" },
          { ...base, ns: "other", type: "logout", seq: 9e12, reason: "user" },
          { ...base, type: "logout", seq: 9e12, reason: "because" },
          { ...base, type: "logout", seq: "9e12", reason: "user" },
          { ...base, type: "self_destruct" },
          { ...base, type: "tokens", why: "login", seq: 9e12, origin: "x", tokens: tokens({ access_token: "x".repeat(1 << 20) }) },
          { ...base, type: "tokens", why: "login", seq: 9e12, origin: "x", tokens: tokens({ issued_at: "soon", expires_at: 1 }) },
          { ...base, type: "tokens", why: "login", seq: 9e12, tokens: tokens() },
          { ...base, from: "x".repeat(100), type: "logout", seq: 9e12, reason: "user" },
        ]) c.postMessage(m);
        c.close();
        localStorage.setItem("wasm-session:default:bus", "{garbage");
        localStorage.setItem("wasm-session:other", "{}");
      });
      // A valid message sent after the garbage proves the garbage was processed first.
      await a.evaluate(() => session.refresh());
      await b.waitForFunction(() => window.events.some((e) => e.type === "refresh"));
      const after = await state(b);
      assert.equal(after.auth, true);
      assert.deepEqual(after.logouts, before.logouts);
      assert.notEqual(after.token, "evil");
      assert.equal(await b.evaluate(async () => (await session.fetch("/api/me")).status), 200);
    } finally { await t.close(); }
  });

  test("a tab of the next release (stored format 3, protocol 3) signs nobody out", async () => {
    const t = await setup();
    try {
      const [a, b] = await twoSignedIn(t);
      const next = JSON.stringify({ v: 3, ns: "default", session: { whatever: "the next release stores" } });
      await a.evaluate((next) => {
        // The next release writes its record and posts its own messages.
        localStorage.setItem("wasm-session:default", next);
        const c = new BroadcastChannel("wasm-session:default");
        c.postMessage({ v: 3, ns: "default", from: "next-release", type: "logout", reason: "user", seq: 9e12 });
        c.close();
      }, next);
      // A message of this release after them proves they were processed first.
      await a.evaluate(() => session.refresh());
      await b.waitForFunction(() => window.events.some((e) => e.type === "refresh"));
      for (const tab of [a, b]) {
        const s = await state(tab);
        assert.equal(s.auth, true);
        assert.deepEqual(s.logouts, []);
      }
      assert.equal(await b.evaluate(async () => (await session.fetch("/api/me")).status), 200);
    } finally { await t.close(); }
  });

  test("two namespaces on one origin never affect each other", async () => {
    const t = await setup();
    try {
      const [a, b] = [await openTab(t.context, t.server), await openTab(t.context, t.server)];
      await open(a, { namespace: "one", storage: "local" });
      await open(b, { namespace: "two", storage: "local" });
      await loginIn(a);
      await loginIn(b);
      // Tab B listens, after its session does, for what namespace "one"'s logout sends: its
      // message and its storage removal. Once B has both, its session has had them first.
      await b.evaluate(() => {
        window.heard = { message: false, storage: false };
        new BroadcastChannel("wasm-session:one").onmessage = (e) => { if (e.data?.type === "logout") window.heard.message = true; };
        addEventListener("storage", (e) => { if (e.key === "wasm-session:one" && e.newValue === null) window.heard.storage = true; });
      });
      await a.evaluate(() => session.logout());
      await b.waitForFunction(() => window.heard.storage && (window.heard.message || !window.BroadcastChannel));
      assert.equal(await b.evaluate(() => session.isAuthenticated), true);
      assert.equal(await b.evaluate(() => localStorage.getItem("wasm-session:two") !== null), true);
    } finally { await t.close(); }
  });
});
