// Idle and absolute timeouts across real tabs, with time driven by Playwright's clock (one
// clock for every page of the context, standing still but when driven). Chromium only: the
// Firefox and WebKit drivers have no clock, and a fake one put into each page (WebKit's
// classic WebDriver can do that only after the page's own scripts) would be a clock per tab,
// not the one clock of every tab that these tests stand on.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, chromiumTest as test, openTab, until } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const creds = { username: "demo", password: "demo" };

/**
 * `n` tabs on one clock, each with a session made from `config`. The clock stands still from
 * then on and moves only by `advance`: what a test sees before a deadline, it sees at a known
 * distance from it, however slowly the machine runs.
 */
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
  // A second ahead: under load the clock runs on before the call lands.
  await tabs[0].clock.pauseAt((await tabs[0].evaluate(() => Date.now())) + 1000);
  return { server, context, tabs, close: async () => { await context.close(); await server.stop(); } };
}

/**
 * Advances the clock of every tab by `ms`, a second at a time, with a round trip to each tab
 * between steps. Playwright moves the pages' clocks one page after another: in one long jump,
 * a message from a page already far ahead would land in a page still behind, dated by the
 * wrong clock. Real tabs share one clock; one-second steps keep these within a second.
 */
async function advance(tabs, ms) {
  for (let done = 0; done < ms; done += 1000) {
    await tabs[0].clock.runFor(Math.min(1000, ms - done));
    await Promise.all(tabs.map((t) => t.evaluate(() => 0)));
  }
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
    await advance(t.tabs, 40_000);
    const clicked = await c.evaluate(() => Date.now());
    await c.mouse.click(10, 10); // the user, in tab c only
    await settle(t.tabs, () => session.idleAt >= Date.now() + 59_000);
    // Each tab's idle deadline, by its own clock.
    const idleAt = await Promise.all(t.tabs.map((tab) => tab.evaluate(() => session.idleAt)));
    await advance(t.tabs, 50_000); // 90 s after sign-in, 50 s after the click
    for (const tab of t.tabs) {
      assert.equal(await tab.evaluate(() => session.isAuthenticated), true, "signed out though tab c saw the user");
    }
    await advance(t.tabs, 11_000); // 61 s after the click
    await settle(t.tabs, () => !session.isAuthenticated);
    const reasons = await Promise.all(t.tabs.map(logouts));
    assert.ok(reasons.every((r) => r.length === 1 && ["idle", "other_tab"].includes(r[0])), JSON.stringify(reasons));
    assert.ok(reasons.flat().includes("idle"));
    const at = await Promise.all(t.tabs.map((tab) => tab.evaluate(() => window.events.find((e) => e.type === "logout").at)));
    console.log(`idle logout ${at.map((x, i) => x - idleAt[i]).join(", ")} ms after each tab's idle deadline (page clocks); ` +
      `deadline ${idleAt[2] - clicked} ms after the click; sign-in ${clicked - start} ms before it`);
    // The tab that decided did so at its deadline; the others heard it within a clock step.
    assert.ok(at.some((x, i) => x >= idleAt[i]), "no tab reached its idle deadline");
    at.forEach((x, i) => assert.ok(x >= idleAt[i] - 1500, `tab ${i} signed out ${idleAt[i] - x} ms before its idle deadline`));
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
    await advance(t.tabs, 46_000);
    await settle(t.tabs, () => window.events.some((e) => e.type === "idle_warning"));
    const warnings = await Promise.all(t.tabs.map((tab) => tab.evaluate(() =>
      window.events.filter((e) => e.type === "idle_warning").map((e) => e.logoutAt - session.idleAt))));
    assert.deepEqual(warnings, [[0], [0], [0]], "the warning names the idle logout time");
    await b.mouse.click(10, 10);
    await advance(t.tabs, 100); // lets the activity go out
    await settle(t.tabs, () => window.events.some((e) => e.type === "active"));
    await advance(t.tabs, 30_000); // 76 s after sign-in, past the first deadline
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
      await advance(t.tabs, 30_000);
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
    // Aim by what the page says is left.
    const left = () => b.evaluate(() => session.sessionEndsAt - Date.now());
    await advance(t.tabs, (await left()) - 3_000); // 3 s before the end
    const story = async () => JSON.stringify(await Promise.all(t.tabs.map((tab) => tab.evaluate(() => window.events.map((e) => [e.type, e.reason, e.code, e.at])))));
    assert.equal(await b.evaluate(() => session.isAuthenticated), true, await story());
    await advance(t.tabs, 4_000); // 1 s after
    await settle(t.tabs, () => !session.isAuthenticated);
    const reasons = [...await logouts(a), ...await logouts(b)];
    assert.ok(reasons.includes("absolute"), JSON.stringify(reasons));
    assert.equal((await t.server.stats()).revocations, 1, "the refresh token was not revoked");
  } finally { await t.close(); }
});
