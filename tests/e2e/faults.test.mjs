// Faults survived: failing, hanging and dropping token endpoints, a server restart, going
// offline, and a refresh token rejected as reused. Real server, real fault switches.
// Chromium only: most drive time with Playwright's clock (see timeouts.test.mjs).
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, launch, chromiumTest as test, openTab, until, recordRequests, sentTo } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function setup(env = {}, tabs = 2, { clock = false } = {}) {
  const server = await startServer(env);
  const context = await browser.newContext();
  await recordRequests(context);
  if (clock) await context.clock.install();
  const pages = [];
  for (let i = 0; i < tabs; i++) pages.push(await openTab(context, server));
  return { server, context, pages, async close() { await context.close(); await server.stop(); } };
}

async function signIn(pages, config) {
  for (const p of pages) {
    await p.evaluate((config) => window.makeSession({ tokenUrl: "/auth/token", ...config }).ready, config);
  }
  await pages[0].evaluate(() => session.login("/auth/login", { username: "demo", password: "demo" }));
  for (const p of pages) await p.waitForFunction(() => session.isAuthenticated);
}

/**
 * Every tab calls /api/me in a loop, 50 ms apart on its clock, until stopped; returns per-tab
 * status counts. Stopping wakes the pause; on a clock that stands still, pass it to `stop`,
 * which drives it until the last calls (which may wait for the next refresh attempt) are done.
 */
function traffic(pages) {
  const runs = pages.map((p) => p.evaluate(() => {
    window.stopTraffic = false;
    return (async () => {
      const seen = {};
      while (!window.stopTraffic) {
        let k;
        try { k = String((await session.fetch("/api/me")).status); } catch (e) { k = e.code || e.name; }
        seen[k] = (seen[k] || 0) + 1;
        if (!window.stopTraffic) await new Promise((r) => { window.wakeTraffic = r; setTimeout(r, 50); });
      }
      return seen;
    })();
  }));
  return async (clock) => {
    await Promise.all(pages.map((p) => p.evaluate(() => { window.stopTraffic = true; window.wakeTraffic?.(); })));
    let done = false;
    const all = Promise.all(runs).finally(() => { done = true; });
    while (clock && !done) await clock.runFor(100);
    return all;
  };
}

/**
 * Stops the page clocks of `page`'s context (they move only when driven from here on) and
 * returns the time they show. The pause lands a second ahead: under load the clock runs on
 * before the call lands.
 */
async function pause(page) {
  const at = (await page.evaluate(() => Date.now())) + 1000;
  await page.clock.pauseAt(at);
  return at;
}

const errorCodes = (page) => page.evaluate(() => window.events.filter((e) => e.type === "error").map((e) => e.code));
const logouts = (page) => page.evaluate(() => window.events.filter((e) => e.type === "logout").map((e) => e.reason));

// One attempt per backoff step across both tabs, then recovery on its own.
// A token of `ttl` seconds is due at 3/4 of it and no longer sent in its last tenth: the
// faults plus backoff must fit between the two.
for (const [name, fault, config, ttl] of [
  ["500s with an HTML body", { count: 4, status: 500 }, {}, 10],
  ["hangs past the request timeout", { count: 2, hang_ms: 1500 }, { requestTimeoutMs: 400 }, 10],
  ["dropped connections", { count: 3, drop: true }, {}, 10],
]) {
  test(`refresh endpoint ${name}: retried with backoff across tabs, recovers, app sees no 401`, async () => {
    const t = await setup({ ACCESS_TTL: String(ttl) });
    try {
      await signIn(t.pages, { retryBaseMs: 100, retryMaxMs: 300, ...config });
      await t.server.faults(fault);
      const stop = traffic(t.pages);
      await until(async () => (await t.server.stats()).refreshes === 1, { timeout: ttl * 1000 + 3000, what: "recovery" });
      const seen = await stop();
      const stats = await t.server.stats();
      console.log(`${name}: attempts=${stats.token_requests} faults=${stats.faults_applied} traffic=${JSON.stringify(seen)}`);
      assert.equal(stats.faults_applied, fault.count);
      assert.equal(stats.token_requests, fault.count + 1, "one attempt per backoff step across the tabs");
      assert.equal(stats.refresh_reuse, 0);
      assert.equal(stats.api_unauthorized, 0);
      for (const s of seen) assert.deepEqual(Object.keys(s), ["200"], "the app saw only successes");
      const errors = [...await errorCodes(t.pages[0]), ...await errorCodes(t.pages[1])];
      assert.ok(errors.every((c) => c === "refresh_failed"), JSON.stringify(errors));
      // Chromium itself resends a request whose reused keep-alive connection was closed
      // before any answer, so dropped connections may never reach the page as errors.
      if (!fault.drop) assert.ok(errors.length >= 1, "the app was told through error events");
      for (const p of t.pages) assert.deepEqual(await logouts(p), []);
    } finally { await t.close(); }
  });
}

test("a proxy's HTML 403 from the token endpoint is retried, never a logout", async () => {
  const t = await setup({ ACCESS_TTL: "4" });
  try {
    await signIn(t.pages, { retryBaseMs: 100, retryMaxMs: 300 });
    await t.server.faults({ count: 2, status: 403 });
    // The refresh falls due at 3 s, meets two 403 pages, and succeeds on the third attempt.
    await until(async () => (await t.server.stats()).refreshes === 1, { timeout: 8000, what: "recovery" });
    const errors = [...await errorCodes(t.pages[0]), ...await errorCodes(t.pages[1])];
    assert.deepEqual(errors, ["refresh_failed", "refresh_failed"], "each 403 page is a failure to retry");
    for (const p of t.pages) {
      assert.deepEqual(await logouts(p), []);
      assert.equal(await p.evaluate(async () => (await session.fetch("/api/me")).status), 200);
    }
    assert.equal((await t.server.stats()).faults_applied, 2);
  } finally { await t.close(); }
});

test("an API that refuses every token costs one refresh, not one per request", async () => {
  const t = await setup({}, 1);
  try {
    await signIn(t.pages, {});
    const statuses = await t.pages[0].evaluate(async () => {
      const out = [];
      for (let i = 0; i < 10; i++) out.push((await session.fetch("/__reply?status=401&body=json")).status);
      return out;
    });
    assert.deepEqual(statuses, Array(10).fill(401), "the 401s reach the app");
    const stats = await t.server.stats();
    assert.equal(stats.token_requests, 1, "one refresh for the first 401; the new token's 401 is final");
    assert.equal(await t.pages[0].evaluate(async () => (await session.fetch("/api/me")).status), 200);
  } finally { await t.close(); }
});

test("a token endpoint that keeps failing is not stormed: attempts follow the backoff", async () => {
  // Expiry on the page clock alone: the server's 60 s outlast the test, so the page, not the
  // server, says whether an expired token went out.
  const t = await setup({ ACCESS_TTL: "60" }, 2, { clock: true });
  try {
    const base = 200;
    await signIn(t.pages, { retryBaseMs: base, retryMaxMs: 800 });
    await t.server.faults({ count: 1000, status: 503 });
    const { due, expiresAt } = await t.pages[0].evaluate(() => ({ due: session.refreshAt, expiresAt: session.expiresAt }));
    // Time is driven from here: the page clocks stand still but for the steps below, so the
    // attempts are timed by the clock the backoff runs on, however slowly the machine runs.
    const paused = await pause(t.pages[0]);
    const stop = traffic(t.pages);
    const clock = t.pages[0].clock;
    const perTab = () => Promise.all(t.pages.map((p) => sentTo(p, "/auth/token")));
    const attempts = async () => (await perTab()).flat().sort((a, b) => a - b);
    // To just before due (45 s), then 100 ms steps until 8 attempts went out, then on past
    // expiry (60 s) in 1 s steps, with traffic in two tabs all along.
    await clock.runFor(Math.max(0, due - 100 - paused));
    for (let step = 0; (await attempts()).length < 8; step++) {
      assert.ok(step < 600, `${(await attempts()).length} attempts in 60 s on the page clock: the retries stopped`);
      await clock.runFor(100);
    }
    while (await t.pages[0].evaluate((end) => Date.now() < end, expiresAt + 1000)) await clock.runFor(1000);
    const seen = await stop(clock);
    const tabs = await perTab();
    const times = tabs.flat().sort((a, b) => a - b);
    const first6s = times.filter((at) => at < times[0] + 6000).length;
    console.log(`persistent 503, 2 tabs with traffic: ${first6s} attempts in the first 6 s, ${times.length} in all, at ` +
      `${tabs.map((ts) => ts.map((at) => at - times[0]).join(" ")).join(" / ")} ms (page clock, per tab); traffic=${JSON.stringify(seen)}`);
    // Delays of 100-200, 200-400, 400-800, then 400-800 ms (base * 2^(n-1), capped, times a
    // jitter in [0.5, 1)), learnt from each other's failures: at most ~16 in 6 s in all.
    assert.ok(first6s <= 20, `${first6s} attempts in the first 6 s`);
    for (const ts of tabs) {
      ts.slice(1).forEach((at, i) => assert.ok(at - ts[i] >= base / 2, `a tab retried ${at - ts[i]} ms after its last attempt`));
    }
    const withToken = (await Promise.all(t.pages.map((p) => p.evaluate(() =>
      window.sentRequests.filter((r) => r.path === "/api/me" && r.auth).map((r) => r.at))))).flat();
    assert.ok(withToken.length > 0, "no call carried the token");
    assert.deepEqual(withToken.filter((at) => at >= expiresAt), [], "an expired token went out");
    for (const s of seen) assert.equal(s["401"], undefined, "a 401 reached the app");
    assert.ok(seen.some((s) => s.refresh_failed > 0), "after expiry requests fail fast with refresh_failed");
    assert.ok((await t.pages[0].evaluate(() => window.events.some((e) => e.type === "expired"))), "expired event");
    await t.server.faults({ count: 0 });
    await clock.resume();
    await until(async () => (await t.server.stats()).refreshes === 1, { timeout: 5000, what: "recovery" });
    for (const p of t.pages) {
      await p.waitForFunction(() => window.events.some((e) => e.type === "refresh"));
      assert.equal(await p.evaluate(async () => (await session.fetch("/api/me")).status), 200);
    }
  } finally { await t.close(); }
});

test("server stopped and restarted: the session survives and recovers on its own", async () => {
  const state = path.join(mkdtempSync(path.join(tmpdir(), "ws-")), "state.json");
  const t = await setup({ ACCESS_TTL: "6", STATE_FILE: state });
  try {
    await signIn(t.pages, { retryBaseMs: 200, retryMaxMs: 600 });
    const token = await t.pages[0].evaluate(() => session.accessToken);
    await t.server.stop();
    // The refresh falls due at 4.5 s while the server is down, and fails.
    await until(async () => (await errorCodes(t.pages[0])).includes("refresh_failed"), { timeout: 10000, what: "a failed refresh" });
    await t.server.restart();
    await until(async () => (await t.server.stats()).refreshes >= 1, { timeout: 5000, what: "refresh after restart" });
    for (const p of t.pages) {
      await p.waitForFunction((old) => session.accessToken && session.accessToken !== old, token);
      assert.equal(await p.evaluate(async () => (await session.fetch("/api/me")).status), 200);
      assert.deepEqual(await logouts(p), []);
    }
    assert.equal((await t.server.stats()).refresh_reuse, 0);
  } finally { await t.close(); }
});

test("offline: no refresh attempts; back online, one prompt refresh", async () => {
  const t = await setup({ ACCESS_TTL: "4" }, 1, { clock: true });
  try {
    await signIn(t.pages, {});
    const [page] = t.pages;
    const due = await page.evaluate(() => session.refreshAt);
    await t.context.setOffline(true);
    // The page clock is driven from here: 600 ms past the refresh due at 3 s, then it stands
    // still, so whatever goes out on going online goes out on that event, not on a timer.
    const paused = await pause(page);
    await page.clock.runFor(Math.max(0, due + 600 - paused));
    assert.deepEqual(await sentTo(page, "/auth/token"), [], "tried to refresh while offline");
    const now = await page.evaluate(() => Date.now());
    await t.context.setOffline(false);
    await until(async () => (await t.server.stats()).refreshes === 1, { what: "refresh after online" });
    assert.deepEqual(await sentTo(page, "/auth/token"), [now], "one refresh, with no time passing on the page clock");
    assert.equal((await t.server.stats()).token_requests, 1);
  } finally { await t.close(); }
});

test("a rotated refresh token rejected as reused logs out every tab; nothing retries", async () => {
  const t = await setup({}, 3, { clock: true });
  try {
    await signIn(t.pages, { storage: "local" });
    // Someone else spends the refresh token (a stolen copy, a crashed tab's request ...).
    const rt = await t.pages[0].evaluate(() => JSON.parse(localStorage.getItem("wasm-session:default")).tokens.refresh_token);
    assert.equal((await t.server.token({ grant_type: "refresh_token", refresh_token: rt })).status, 200);
    const code = await t.pages[1].evaluate(() => session.refresh().then(() => "ok", (e) => e.code));
    assert.equal(code, "refresh_rejected");
    for (const p of t.pages) {
      await p.waitForFunction(() => !session.isAuthenticated);
      assert.deepEqual(await logouts(p), ["refresh_rejected"]);
    }
    const stats = await t.server.stats();
    assert.equal(stats.refresh_reuse, 1);
    const sent = await Promise.all(t.pages.map((p) => sentTo(p, "/auth/token")));
    // A minute on the page clocks: past every retry delay (retryMaxMs 30 s) and request timeout.
    await t.pages[0].clock.runFor(60_000);
    assert.deepEqual(await Promise.all(t.pages.map((p) => sentTo(p, "/auth/token"))), sent, "something kept retrying");
    assert.equal((await t.server.stats()).token_requests, stats.token_requests, "something kept retrying");
    assert.equal(await t.pages[0].evaluate(() => localStorage.getItem("wasm-session:default")), null);
  } finally { await t.close(); }
});
