// One tab: silent refresh, single-flight, origin allowlist, failures, sleep, persistence.
// The origin rule and storage run in every engine of WS_BROWSERS; the rest in Chromium alone
// (most of it drives time with Playwright's clock).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, launchEngine, engines, chromiumTest, openTab, until, recordRequests, sentTo, noteDeadlines, refreshedOnTime,
} from "./harness.mjs";

const browsers = {};
after(async () => { for (const b of Object.values(browsers)) await b.close(); });

/** A fresh server + browser context (of `engine`, launched at its first use) + tab for one test. */
async function setup(env = {}, { clock = false, engine = "chromium" } = {}) {
  const server = await startServer(env);
  browsers[engine] ??= await launchEngine(engine);
  const context = await browsers[engine].newContext();
  await recordRequests(context);
  if (clock) await context.clock.install();
  const page = await openTab(context, server);
  return {
    server, context, page,
    async close() { await context.close(); await server.stop(); },
  };
}

/** Signs in; returns the page clock's time before and after, and the token's expiry. */
const login = (page, config = {}) => page.evaluate(async (config) => {
  const s = window.makeSession({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", ...config });
  const sent = Date.now();
  await s.login("/auth/login", { username: "demo", password: "demo" });
  return { sent, arrived: Date.now(), expiresAt: s.expiresAt };
}, config);

chromiumTest("continuous API calls over several token lifetimes: zero 401s, one refresh per lifetime", async () => {
  const t = await setup({ ACCESS_TTL: "2" });
  try {
    const { sent, arrived, expiresAt } = await login(t.page);
    assert.ok(expiresAt >= sent + 2000 && expiresAt <= arrived + 2000,
      `expiresAt is expires_in from arrival: ${expiresAt - sent} ms after sending, ${expiresAt - arrived} ms after the answer`);
    await noteDeadlines(t.page);
    // Calls until the fifth refresh event (five lifetimes; a minute at most), then the session stops.
    const statuses = await t.page.evaluate(async () => {
      const statuses = {};
      const bound = Date.now() + 60_000;
      while (window.dues.length <= 5 && Date.now() < bound) {
        const r = await session.fetch("/api/me");
        statuses[r.status] = (statuses[r.status] || 0) + 1;
        await new Promise((r) => setTimeout(r, 20));
      }
      session.dispose();
      return statuses;
    });
    const sends = await refreshedOnTime([t.page]);
    assert.ok(sends.length >= 5, `${sends.length} refreshes in a minute: the refreshes stopped`);
    // A refresh sent before dispose may still be on its way to the server.
    await until(async () => (await t.server.stats()).token_requests === sends.length, { what: "every sent refresh at the server" });
    const stats = await t.server.stats();
    console.log(`refreshes=${stats.refreshes} sent at ${sends.map((at) => at - sent).join(" ")} ms after login; calls=${JSON.stringify(statuses)}`);
    assert.equal(statuses[401], undefined, "a 401 reached the app");
    assert.equal(stats.api_unauthorized, 0, "an expired token went out");
    assert.equal(stats.refreshes, sends.length, "every token request was a successful refresh");
    assert.equal(stats.refresh_reuse, 0);
  } finally { await t.close(); }
});

chromiumTest("20 concurrent fetches on an expired token cause exactly one refresh", async () => {
  const t = await setup({ ACCESS_TTL: "30" }, { clock: true });
  try {
    await login(t.page);
    // Freeze timers, then jump the clock past expiry without firing them: the fetches see
    // an expired token and must share one refresh.
    const now = await t.page.evaluate(() => Date.now());
    await t.page.clock.pauseAt(now + 1000); // a margin: under load the page clock runs on before this call lands
    await t.page.clock.setSystemTime(now + 120_000);
    const statuses = await t.page.evaluate(() =>
      Promise.all(Array.from({ length: 20 }, () => session.fetch("/api/me").then((r) => r.status))));
    assert.deepEqual(new Set(statuses), new Set([200]));
    const stats = await t.server.stats();
    assert.equal(stats.refreshes, 1);
    assert.equal(stats.token_requests, 1);
    assert.equal(stats.api_unauthorized, 0);
    assert.equal(stats.refresh_reuse, 0);
  } finally { await t.close(); }
});

chromiumTest("after a 401 the request is refreshed and retried once, body included", async () => {
  const t = await setup();
  try {
    // Tokens the server does not accept, with refresh tokens it does.
    const refreshToken = async () => (await (await fetch(t.server.main + "/auth/login", {
      method: "POST", body: JSON.stringify({ username: "demo", password: "demo" }),
    })).json()).refresh_token;
    const [rt1, rt2] = [await refreshToken(), await refreshToken()];
    const r = await t.page.evaluate(async ([rt1, rt2]) => {
      const s = window.makeSession({ tokenUrl: "/auth/token" });
      s.setTokens({ access_token: "not-accepted", expires_in: 600, refresh_token: rt1 });
      const res = await s.fetch("/api/echo", { method: "POST", body: "payload-123", headers: { "content-type": "text/plain" } });
      const streamed = await s.fetch(new Request("/api/echo", { method: "POST", body: "from a Request" }));
      const out = { status: res.status, body: await res.text(), streamed: await streamed.text() };
      // A GET has no body to replay: it is retried as is.
      s.setTokens({ access_token: "not-accepted-either", expires_in: 600, refresh_token: rt2 });
      out.get = (await s.fetch("/api/me")).status;
      return out;
    }, [rt1, rt2]);
    assert.deepEqual(r, { status: 200, body: "payload-123", streamed: "from a Request", get: 200 });
    const stats = await t.server.stats();
    assert.equal(stats.api_unauthorized, 2, "one 401 each, then the retry");
    assert.equal(stats.refreshes, 2);
  } finally { await t.close(); }
});

for (const engine of engines) test(`[${engine}] the token never reaches a foreign origin, directly or through redirects`, async () => {
  const t = await setup({}, { engine });
  try {
    await login(t.page, { allowedOrigins: [t.server.api] });
    const r = await t.page.evaluate(async ({ api, foreign }) => {
      const out = {};
      const go = async (name, input) => {
        try { out[name] = (await session.fetch(input)).status; } catch (e) { out[name] = e.name; }
      };
      await go("own", "/api/me");
      await go("api", api + "/api/me");
      await go("foreign", foreign + "/direct");
      await go("request", new Request(foreign + "/request-object", { headers: { "x-test": "1" } }));
      await go("url", new URL(foreign + "/url-object"));
      await go("ownRedirect", "/__redirect?to=" + encodeURIComponent(foreign + "/from-own"));
      await go("apiRedirect", api + "/__redirect?to=" + encodeURIComponent(foreign + "/from-api"));
      await go("creds", foreign.replace("http://", "http://user:pw@") + "/creds");
      return out;
    }, { api: t.server.api, foreign: t.server.foreign });
    console.log(JSON.stringify(r));
    assert.equal(r.own, 200);
    assert.equal(r.api, 200, "the allowed origin gets the token");
    for (const k of ["foreign", "request", "url", "ownRedirect", "apiRedirect"]) assert.equal(r[k], 200, k);
    assert.equal(r.creds, "TypeError", "URLs with credentials are refused like fetch does");
    const foreign = await t.server.stats(t.server.foreign);
    assert.equal(foreign.authorization_seen, 0, "a token leaked to the foreign origin");
    const main = await t.server.stats();
    assert.ok(main.authorization_seen >= 3, "tokens went to the own and allowed origins");
  } finally { await t.close(); }
});

chromiumTest("a failing refresh endpoint is retried with backoff and recovers", async () => {
  const t = await setup({ ACCESS_TTL: "4" });
  try {
    await login(t.page, { retryBaseMs: 100, retryMaxMs: 400 });
    await t.server.faults({ count: 3, status: 503 });
    // The refresh is due at 3 s; three 503s, then success well before expiry at 4 s.
    await until(async () => (await t.server.stats()).refreshes === 1, { what: "a successful refresh" });
    const stats = await t.server.stats();
    assert.equal(stats.faults_applied, 3);
    assert.equal(stats.token_requests, 4, "exactly one attempt per backoff step");
    const events = await t.page.evaluate(() => window.events.map((e) => e.type + ":" + (e.code || "")));
    assert.deepEqual(events.filter((e) => e.startsWith("error")), ["error:refresh_failed", "error:refresh_failed", "error:refresh_failed"]);
    assert.ok(events.includes("refresh:"));
    assert.equal(await t.page.evaluate(async () => (await session.fetch("/api/me")).status), 200);
  } finally { await t.close(); }
});

chromiumTest("invalid_grant ends the session with reason refresh_rejected and stops retrying", async () => {
  const t = await setup();
  try {
    await login(t.page);
    await t.server.faults({ count: 1, status: 400 });
    const code = await t.page.evaluate(() => session.refresh().then(() => "ok", (e) => e.code));
    assert.equal(code, "refresh_rejected");
    const state = await t.page.evaluate(() => ({
      auth: session.isAuthenticated, token: session.accessToken,
      logout: window.events.filter((e) => e.type === "logout").map((e) => e.reason),
    }));
    assert.deepEqual(state, { auth: false, token: null, logout: ["refresh_rejected"] });
    const before = (await t.server.stats()).token_requests;
    const status = await t.page.evaluate(async () => (await session.fetch("/api/me")).status);
    assert.equal(status, 401, "signed out: the request goes without a token");
    assert.equal((await t.server.stats()).token_requests, before, "nothing keeps retrying");
  } finally { await t.close(); }
});

chromiumTest("after a sleep past expiry the next request waits for a refresh", async () => {
  const t = await setup({ ACCESS_TTL: "2" }, { clock: true });
  try {
    await login(t.page);
    const token = await t.page.evaluate(() => session.accessToken);
    const now = await t.page.evaluate(() => Date.now());
    // The laptop sleeps: page timers stop while the server's clock runs past expiry, until
    // the server refuses the token.
    await t.page.clock.pauseAt(now + 1000); // a margin: under load the page clock runs on before this call lands
    const me = () => fetch(t.server.main + "/api/me", { headers: { authorization: `Bearer ${token}` } });
    await until(async () => (await me()).status === 401, { what: "the server's clock past expiry" });
    const refused = (await t.server.stats()).api_unauthorized;
    await t.page.clock.setSystemTime(now + 10 * 60_000);
    const status = await t.page.evaluate(async () => (await session.fetch("/api/me")).status);
    assert.equal(status, 200);
    const stats = await t.server.stats();
    assert.equal(stats.api_unauthorized, refused, "the expired token was sent");
    assert.equal(stats.refreshes, 1);
  } finally { await t.close(); }
});

for (const wake of ["focus", "visibilitychange", "pageshow"]) {
  chromiumTest(`a due refresh whose timer did not fire runs on ${wake}`, async () => {
    const t = await setup({ ACCESS_TTL: "30" }, { clock: true });
    try {
      await login(t.page);
      const now = await t.page.evaluate(() => Date.now());
      // Timers frozen (a throttled background tab), the refresh falls due at 22.5 s.
      await t.page.clock.pauseAt(now + 1000); // a margin: under load the page clock runs on before this call lands
      await t.page.clock.setSystemTime(now + 25_000);
      assert.deepEqual(await sentTo(t.page, "/auth/token"), [], "a timer fired on a paused clock");
      await t.page.evaluate((wake) => {
        const target = wake === "visibilitychange" ? document : window;
        target.dispatchEvent(new Event(wake));
      }, wake);
      await until(async () => (await t.server.stats()).refreshes === 1, { what: `a refresh on ${wake}` });
    } finally { await t.close(); }
  });
}

chromiumTest("without a refresh token, expiry emits expired, then logout with reason expired", async () => {
  const t = await setup({}, { clock: true });
  try {
    const events = await t.page.evaluate(async () => {
      const s = window.makeSession({ tokenUrl: "/auth/token" });
      s.setTokens({ access_token: "short-lived", expires_in: 2 });
      return window.events.map((e) => e.type);
    });
    assert.deepEqual(events, ["login"]);
    await t.page.clock.runFor(2500);
    const after = await t.page.evaluate(() => ({
      events: window.events.map((e) => e.type + (e.reason ? ":" + e.reason : "")), auth: session.isAuthenticated,
    }));
    assert.deepEqual(after, { events: ["login", "expired", "logout:expired"], auth: false });
  } finally { await t.close(); }
});

for (const engine of engines) for (const storage of ["session", "local"]) {
  test(`[${engine}] ${storage} storage: a reload restores the session`, async () => {
    const t = await setup({}, { engine });
    try {
      await login(t.page, { storage });
      const before = await t.page.evaluate(() => session.accessToken);
      await t.page.reload();
      await t.page.waitForFunction(() => window.fixtureReady === true);
      const after = await t.page.evaluate(async (storage) => {
        const s = window.makeSession({ tokenUrl: "/auth/token", storage });
        await s.ready;
        return { token: s.accessToken, status: (await s.fetch("/api/me")).status };
      }, storage);
      assert.equal(after.token, before);
      assert.equal(after.status, 200);
      assert.equal((await t.server.stats()).logins, 1);
    } finally { await t.close(); }
  });
}

for (const engine of engines) test(`[${engine}] corrupted storage is discarded with an error event, never a crash`, async () => {
  const t = await setup({}, { engine });
  try {
    const r = await t.page.evaluate(async () => {
      localStorage.setItem("wasm-session:default", "{not json");
      const s = window.makeSession({ tokenUrl: "/auth/token", storage: "local" });
      await s.ready;
      await s.login("/auth/login", { username: "demo", password: "demo" });
      return { errors: window.events.filter((e) => e.type === "error").map((e) => e.code), auth: s.isAuthenticated };
    });
    assert.deepEqual(r, { errors: ["storage"], auth: true });
  } finally { await t.close(); }
});

for (const engine of engines) test(`[${engine}] memory mode writes nothing to any storage; logout clears and revokes`, async () => {
  const t = await setup({}, { engine });
  try {
    await login(t.page);
    const scan = () => t.page.evaluate(async () => ({
      local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
      idb: (await indexedDB.databases()).length,
    }));
    assert.deepEqual(await scan(), { local: 0, session: 0, cookie: "", idb: 0 });
    await t.page.evaluate(() => session.refresh());
    assert.deepEqual(await scan(), { local: 0, session: 0, cookie: "", idb: 0 });
    const after = await t.page.evaluate(async () => {
      await session.logout();
      return { auth: session.isAuthenticated, token: session.accessToken, claims: session.claims, header: await session.authHeader() };
    });
    assert.deepEqual(after, { auth: false, token: null, claims: null, header: null });
    assert.deepEqual(await scan(), { local: 0, session: 0, cookie: "", idb: 0 });
    const stats = await t.server.stats();
    assert.equal(stats.revocations, 1);
    assert.equal(stats.client_id_sent, 0, "no clientId configured: none sent");
  } finally { await t.close(); }
});

chromiumTest("clientId goes with every refresh and revocation, form-encoded", async () => {
  const t = await setup();
  try {
    await login(t.page, { clientId: "demo-spa" });
    await t.page.evaluate(async () => { await session.refresh(); await session.refresh(); await session.logout(); });
    const stats = await t.server.stats();
    assert.deepEqual([stats.refreshes, stats.revocations], [2, 1]);
    assert.deepEqual([stats.client_id_sent, stats.client_id_unknown], [3, 0]);
  } finally { await t.close(); }
});

chromiumTest("wrong credentials reject with login_failed and a status", async () => {
  const t = await setup();
  try {
    const e = await t.page.evaluate(async () => {
      const s = window.makeSession({ tokenUrl: "/auth/token" });
      try { await s.login("/auth/login", { username: "demo", password: "nope" }); return null; }
      catch (e) { return { code: e.code, status: e.status, name: e.name, isError: e instanceof Error }; }
    });
    assert.deepEqual(e, { code: "login_failed", status: 401, name: "SessionError", isError: true });
  } finally { await t.close(); }
});
