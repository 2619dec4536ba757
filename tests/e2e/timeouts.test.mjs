// Idle and absolute timeouts across real tabs, with time driven by Playwright's clock (one
// clock for every page of the context). Chromium only: the Firefox driver has no clock.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openTab, until } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const creds = { username: "demo", password: "demo" };

/** `n` tabs on one clock, each with a session made from `config`. */
async function clockTabs(n, config, env = {}) {
  const server = await startServer(env);
  const context = await browser.newContext();
  await context.clock.install();
  const tabs = [];
  for (let i = 0; i < n; i++) {
    const page = await openTab(context, server);
    await page.evaluate(async (config) => { window.makeSession(config); await session.ready; }, config);
    tabs.push(page);
  }
  return { server, context, tabs, close: async () => { await context.close(); await server.stop(); } };
}

/** Lets the tabs' messages to each other arrive (real time; the page clocks stand still). */
const settle = (tabs, f) => until(async () => (await Promise.all(tabs.map((t) => t.evaluate(f)))).every(Boolean));

const logouts = (tab) => tab.evaluate(() => window.events.filter((e) => e.type === "logout").map((e) => e.reason));

test("idle: activity in one tab of three keeps all signed in; without it, all sign out and the server session ends", async () => {
  const config = { mode: "cookie", sessionUrl: "/session", idleTimeoutMs: 60_000 };
  const t = await clockTabs(3, config);
  try {
    const [a, b, c] = t.tabs;
    await a.evaluate((creds) => session.login("/session/login", creds), creds);
    await settle(t.tabs, () => session.isAuthenticated);
    const start = await a.evaluate(() => Date.now());
    await a.clock.runFor(40_000);
    const clicked = await c.evaluate(() => Date.now());
    await c.mouse.click(10, 10); // the user, in tab c only
    await settle(t.tabs, () => session.idleAt >= Date.now() + 59_000);
    await a.clock.runFor(50_000); // 90 s after sign-in, 50 s after the click
    for (const tab of t.tabs) {
      assert.equal(await tab.evaluate(() => session.isAuthenticated), true, "signed out though tab c saw the user");
    }
    await a.clock.runFor(11_000); // 61 s after the click
    await settle(t.tabs, () => !session.isAuthenticated);
    const reasons = await Promise.all(t.tabs.map(logouts));
    assert.ok(reasons.every((r) => r.length === 1 && ["idle", "other_tab"].includes(r[0])), JSON.stringify(reasons));
    assert.ok(reasons.flat().includes("idle"));
    const at = await Promise.all(t.tabs.map((tab) => tab.evaluate(() => window.events.find((e) => e.type === "logout").at)));
    console.log(`idle logout at +${at.map((x) => x - clicked).join(", +")} ms (page clock) after the last activity; idleTimeoutMs 60000; sign-in at -${clicked - start} ms`);
    assert.ok(at.every((x) => x - clicked >= 60_000), "signed out before the idle timeout");
    await until(async () => (await t.server.stats()).sessions_active === 0, { what: "the server session to end" });
  } finally { await t.close(); }
});

test("idle warning: every tab is warned; activity in one tab cancels it everywhere", async () => {
  const config = { tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", idleTimeoutMs: 60_000, idleWarningMs: 15_000 };
  const t = await clockTabs(3, config, { ACCESS_TTL: "600" });
  try {
    const [a, b, c] = t.tabs;
    await a.evaluate((creds) => session.login("/auth/login", creds), creds);
    await settle(t.tabs, () => session.isAuthenticated);
    await a.clock.runFor(46_000);
    await settle(t.tabs, () => window.events.some((e) => e.type === "idle_warning"));
    const warnings = await Promise.all(t.tabs.map((tab) => tab.evaluate(() =>
      window.events.filter((e) => e.type === "idle_warning").map((e) => e.logoutAt - session.idleAt))));
    assert.deepEqual(warnings, [[0], [0], [0]], "the warning names the idle logout time");
    await b.mouse.click(10, 10);
    await a.clock.runFor(100); // lets the activity go out
    await settle(t.tabs, () => window.events.some((e) => e.type === "active"));
    await a.clock.runFor(30_000); // 76 s after sign-in, past the first deadline
    for (const tab of [a, b, c]) {
      assert.equal(await tab.evaluate(() => session.isAuthenticated), true, "the activity did not cancel the logout");
    }
    assert.equal((await t.server.stats()).revocations, 0);
  } finally { await t.close(); }
});

test("absolute: maxSessionMs ends the session on time across refreshes and a reload", async () => {
  const config = { tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", storage: "local", maxSessionMs: 120_000 };
  const t = await clockTabs(2, config, { ACCESS_TTL: "30" });
  try {
    const [a, b] = t.tabs;
    await a.evaluate((creds) => session.login("/auth/login", creds), creds);
    await settle(t.tabs, () => session.isAuthenticated);
    const endsAt = await a.evaluate(() => session.sessionEndsAt);
    for (const n of [1, 2]) { // a refresh each 30 s token lifetime
      await a.clock.runFor(30_000);
      await until(async () => (await t.server.stats()).refreshes >= n, { what: `refresh ${n}` });
    }
    await b.reload();
    await b.waitForFunction(() => window.fixtureReady === true);
    const restored = await b.evaluate(async (config) => {
      window.makeSession(config);
      await session.ready;
      return [session.isAuthenticated, session.sessionEndsAt];
    }, config);
    assert.deepEqual(restored, [true, endsAt], "the reload forgot when the session began");
    await a.clock.runFor(59_000); // 119 s
    assert.equal(await b.evaluate(() => session.isAuthenticated), true);
    await a.clock.runFor(2_000); // 121 s
    await settle(t.tabs, () => !session.isAuthenticated);
    const reasons = [...await logouts(a), ...await logouts(b)];
    assert.ok(reasons.includes("absolute"), JSON.stringify(reasons));
    assert.equal((await t.server.stats()).revocations, 1, "the refresh token was not revoked");
  } finally { await t.close(); }
});
