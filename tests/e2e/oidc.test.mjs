// OpenID Connect against a real, certified OpenID Provider (oidc-provider on a free port):
// authorization code + PKCE through the provider's own login form, the callback's checks,
// tabs adopting the sign-in, rotating refresh tokens across tabs, and logout at the provider.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, startProvider, launchEngine, engines, until, openTab as openFixture } from "./harness.mjs";

const browsers = {};
before(async () => { for (const e of engines) browsers[e] = await launchEngine(e); });
after(async () => { for (const b of Object.values(browsers)) await b.close(); });

/** A server, a provider and a browser context (the tabs of one user). */
async function setup(engine = engines[0], { accessTtl = 60 } = {}) {
  const server = await startServer();
  const provider = await startProvider(server.main, { accessTtl });
  const context = await browsers[engine].newContext();
  const app = server.main + "/e2e-oidc.html";
  return {
    server, provider, context, app,
    config: (extra = {}) => ({ issuer: provider.issuer, clientId: "demo-spa", redirectUri: app, ...extra }),
    async close() { await context.close(); await provider.stop(); await server.stop(); },
  };
}

/** Loads the fixture page in `page` and makes its session. */
async function load(page, url, config) {
  await page.goto(url);
  await page.waitForFunction(() => window.fixtureReady === true);
  await page.evaluate((c) => { window.makeSession(c); }, config);
}

/** A new tab on the fixture page, with its session. */
async function openTab(t, config) {
  const page = await openFixture(t.context, t.server, "/e2e-oidc.html");
  await page.evaluate((c) => { window.makeSession(c); }, config);
  return page;
}

/** `evaluate` that tolerates the page navigating away meanwhile. */
const attempt = (page, fn, arg) => page.evaluate(fn, arg).catch(() => null);

/**
 * Starts `loginWithRedirect(options)` in `page`, signs in on the provider's login form as
 * `login` (or cancels there), and waits until the browser is back on the app. Returns the
 * callback URL.
 */
async function viaProvider(t, page, options = {}, { login = "ada", cancel = false } = {}) {
  await attempt(page, (o) => { window.session.loginWithRedirect(o); }, options);
  const back = (url) => url.startsWith(t.app + "?");
  await until(async () => { const url = await page.url(); return url.startsWith(t.provider.issuer + "/interaction/") || back(url); },
    { timeout: 20000, what: "the provider's login page" });
  if (!back(await page.url())) {
    await until(() => attempt(page, () => !!document.querySelector("input[name=login]")), { what: "the login form" });
    await attempt(page, ({ login, cancel }) => {
      if (cancel) return document.querySelector("a[href*='/abort']").click();
      document.querySelector("input[name=login]").value = login;
      document.querySelector("input[name=password]").value = "any password";
      document.querySelector("form").submit();
    }, { login, cancel });
    await until(async () => back(await page.url()), { timeout: 20000, what: "the redirect back to the app" });
  }
  await until(() => attempt(page, () => window.fixtureReady === true), { what: "the app to load" });
  return await page.url();
}

/** `handleRedirectCallback(url)` in the page: `{ ok, appState }` or `{ code, error, ... }`. */
const callback = (page, url) => page.evaluate(async (url) => {
  try {
    const { appState } = await window.session.handleRedirectCallback(url);
    return appState === undefined ? { ok: true } : { ok: true, appState };
  } catch (e) {
    return { code: e.code, error: e.error, errorDescription: e.errorDescription, message: e.message };
  }
}, url);

const signedIn = (page) => page.evaluate(() => window.session.isAuthenticated);
const userinfo = (page, issuer) => page.evaluate(async (url) => {
  const r = await window.session.fetch(url);
  return { status: r.status, body: r.ok ? await r.json() : null };
}, issuer + "/me");

for (const engine of engines) {
  for (const storage of ["memory", "session", "local"]) {
    test(`[${engine}] ${storage} storage: sign in on the provider's form, every tab adopts it, userinfo answers`, async () => {
      const t = await setup(engine);
      try {
        const config = t.config({ storage });
        const [a, b] = [await openTab(t, config), await openTab(t, config)];
        const url = await viaProvider(t, a, { appState: { back: "/orders/7" } });
        assert.match(url, /[?&]code=/);
        await a.evaluate((c) => { window.makeSession(c); }, config);
        const result = await callback(a);
        assert.deepEqual(result, { ok: true, appState: { back: "/orders/7" } }, JSON.stringify(result));
        assert.equal(await a.url(), t.app, "code and state are gone from the address bar");
        assert.equal(await a.evaluate(() => window.session.idClaims.sub), "ada");
        await until(() => signedIn(b), { what: "the other tab to adopt the sign-in" });
        for (const page of [a, b]) {
          const me = await userinfo(page, t.provider.issuer);
          assert.equal(me.status, 200, "the issuer's userinfo gets the token without allowedOrigins");
          assert.equal(me.body.sub, "ada");
        }
        const stats = await t.provider.stats();
        assert.equal(stats.codes, 1);
        assert.equal(await a.evaluate(() => sessionStorage.getItem("wasm-session:default:oidc")), null, "the login is used up");
        if (storage === "local") {
          const c = await openTab(t, config); // a new tab, restored from storage
          assert.equal((await userinfo(c, t.provider.issuer)).status, 200);
        }
      } finally { await t.close(); }
    });
  }
}

for (const engine of engines) {
  test(`[${engine}] a wrong state is refused and leaves the real callback usable; a replayed callback is refused`, async () => {
    const t = await setup(engine);
    try {
      const config = t.config();
      const page = await openTab(t, config);
      const url = await viaProvider(t, page);
      await page.evaluate((c) => { window.makeSession(c); }, config);
      const forged = url.replace(/state=[^&]+/, "state=" + "x".repeat(43));
      const wrong = await callback(page, forged);
      assert.equal(wrong.code, "invalid_state", JSON.stringify(wrong));
      assert.equal(await signedIn(page), false);
      // Called twice at once for the same callback (a component mounted twice): one code
      // exchange, the same answer for both.
      const both = await page.evaluate(async (url) => {
        const answers = await Promise.allSettled([window.session.handleRedirectCallback(url), window.session.handleRedirectCallback(url)]);
        return answers.map((a) => a.status);
      }, url);
      assert.deepEqual(both, ["fulfilled", "fulfilled"]);
      assert.equal(await signedIn(page), true);
      // The same callback URL again, from history: a new page load, the sign-in used up.
      await load(page, url, config);
      const replay = await callback(page, url);
      assert.equal(replay.code, "invalid_state", JSON.stringify(replay));
      const stats = await t.provider.stats();
      assert.equal(stats.codes, 1, "the replayed code never reached the provider");
      assert.equal(stats.code_rejected, 0);
    } finally { await t.close(); }
  });

  test(`[${engine}] access_denied at the provider rejects with oauth_error and its description`, async () => {
    const t = await setup(engine);
    try {
      const config = t.config();
      const page = await openTab(t, config);
      const url = await viaProvider(t, page, {}, { cancel: true });
      assert.match(url, /error=access_denied/);
      await page.evaluate((c) => { window.makeSession(c); }, config);
      const result = await callback(page);
      assert.equal(result.code, "oauth_error", JSON.stringify(result));
      assert.equal(result.error, "access_denied");
      assert.equal(result.errorDescription, "End-User aborted interaction");
      assert.equal(await page.url(), t.app, "the error is gone from the address bar");
      assert.equal(await signedIn(page), false);
      assert.equal((await t.provider.stats()).codes, 0);
    } finally { await t.close(); }
  });

  test(`[${engine}] 3 tabs over several token lifetimes: no refresh rejected by the provider, no failed userinfo call`, async () => {
    const t = await setup(engine, { accessTtl: 4 });
    try {
      const config = t.config();
      const tabs = [await openTab(t, config), await openTab(t, config), await openTab(t, config)];
      const url = await viaProvider(t, tabs[0]);
      await tabs[0].evaluate((c) => { window.makeSession(c); }, config);
      assert.deepEqual(await callback(tabs[0], url), { ok: true });
      for (const page of tabs) await until(() => signedIn(page), { what: "every tab signed in" });
      const loops = tabs.map((page) => page.evaluate(async (url) => {
        const statuses = {};
        while (!window.stopCalls) {
          const r = await window.session.fetch(url);
          statuses[r.status] = (statuses[r.status] || 0) + 1;
          await new Promise((r) => setTimeout(r, 100));
        }
        return statuses;
      }, t.provider.issuer + "/me"));
      // Rotating refresh tokens, 4 s access tokens: wait for 5 refreshes (about 5 lifetimes).
      await until(async () => (await t.provider.stats()).refreshes >= 5, { timeout: 60000, interval: 250, what: "5 refreshes" });
      for (const page of tabs) await page.evaluate(() => { window.stopCalls = true; });
      const results = await Promise.all(loops);
      const stats = await t.provider.stats();
      console.log(`provider: ${JSON.stringify(stats)} calls per tab: ${JSON.stringify(results)}`);
      assert.equal(stats.refresh_rejected, 0, "a refresh was rejected (a rotated refresh token sent twice?)");
      assert.equal(stats.grants_revoked, 0);
      assert.equal(stats.userinfo_rejected, 0);
      for (const r of results) {
        assert.deepEqual(Object.keys(r), ["200"], `a userinfo call failed: ${JSON.stringify(r)}`);
      }
    } finally { await t.close(); }
  });

  test(`[${engine}] logout revokes at the provider, reaches every tab and ends the provider's session`, async () => {
    const t = await setup(engine);
    try {
      const config = t.config({ postLogoutRedirectUri: t.app });
      const [a, b] = [await openTab(t, config), await openTab(t, config)];
      const url = await viaProvider(t, a);
      await a.evaluate((c) => { window.makeSession(c); }, config);
      assert.deepEqual(await callback(a, url), { ok: true });
      await until(() => signedIn(b), { what: "tab b signed in" });
      await attempt(a, () => { window.session.logout(); });
      await until(async () => (await a.url()).startsWith(t.provider.issuer + "/session/end"), { what: "the provider's logout page" });
      assert.match(await a.url(), /id_token_hint=/);
      assert.match(await a.url(), /post_logout_redirect_uri=/);
      await until(() => attempt(a, () => !!document.querySelector("button[name=logout]")), { what: "the logout form" });
      await attempt(a, () => document.querySelector("button[name=logout]").click());
      await until(async () => (await a.url()).startsWith(t.app), { timeout: 20000, what: "the redirect back after logout" });
      await until(() => b.evaluate(() => window.events.some((e) => e.type === "logout" && e.reason === "other_tab")),
        { what: "tab b's logout" });
      assert.equal(await signedIn(b), false);
      const stats = await t.provider.stats();
      assert.equal(stats.revocations, 1, "the refresh token was revoked");
      assert.ok(stats.grants_revoked >= 1, "revoking the refresh token revoked the grant");
      assert.equal(stats.ended_sessions, 1);
      // The provider's session is over: a silent sign-in now needs a login.
      await until(() => attempt(a, () => window.fixtureReady === true), { what: "the app" });
      await a.evaluate((c) => { window.makeSession(c); }, config);
      const silent = await viaProvider(t, a, { prompt: "none" });
      assert.match(silent, /error=login_required/);
      await a.evaluate((c) => { window.makeSession(c); }, config);
      const result = await callback(a);
      assert.equal(result.code, "oauth_error");
      assert.equal(result.error, "login_required");
    } finally { await t.close(); }
  });
}
