// DPoP (RFC 9449) end to end, against the demo server with DPOP_NONCE=1 (it verifies proofs,
// binds tokens to the key and demands rotating nonces): tokens taken out of the page are
// useless without the key, the key cannot be read, it is gone after logout, and a reload in
// local mode keeps it and the session. DPoP is in the `wasm-session/oidc` entry (e2e-oidc.html).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startServer, startProvider, launchEngine, engines, openTab, until } from "./harness.mjs";

const config = (storage) => ({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", storage, dpop: true });

/** In the page: the stored DPoP key record (IndexedDB), or null. */
const storedKey = () => new Promise((resolve, reject) => {
  const open = indexedDB.open("wasm-session:default:dpop", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("keys");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction("keys").objectStore("keys").get("dpop");
    get.onsuccess = () => { open.result.close(); resolve(get.result ?? null); };
    get.onerror = () => reject(get.error);
  };
});

for (const engine of engines) describe(engine, () => {
  let browser;
  before(async () => { browser = await launchEngine(engine); });
  after(async () => { await browser?.close(); });

  test("sign-in and /api/me with DPoP; the token out of the page is refused without a proof, with another key's or a replayed one", async () => {
    const server = await startServer({ DPOP_NONCE: "1" });
    const context = await browser.newContext();
    try {
      const page = await openTab(context, server, "/e2e-oidc.html");
      const r = await page.evaluate(async (cfg) => {
        const s = makeSession(cfg);
        await s.login("/auth/login", { username: "demo", password: "demo" });
        const me = await s.fetch("/api/me");
        const post = await s.fetch("/api/echo", { method: "POST", body: JSON.stringify({ n: 1 }) });
        const token = s.accessToken;
        const headers = await s.authHeaders("GET", "/api/me");
        const first = await fetch("/api/me", { headers });
        const replayed = await fetch("/api/me", { headers });
        const bearer = await fetch("/api/me", { headers: { authorization: "Bearer " + token } });
        const unproved = await fetch("/api/me", { headers: { authorization: "DPoP " + token } });
        // A proof from another key, with the server's current nonce and the right ath.
        const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
          .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
        const text = (o) => b64(new TextEncoder().encode(JSON.stringify(o)));
        const other = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
        const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", other.publicKey);
        const ath = b64(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
        const nonce = first.headers.get("dpop-nonce") ?? me.headers.get("dpop-nonce");
        const claims = { jti: crypto.randomUUID(), htm: "GET", htu: location.origin + "/api/me",
          iat: Math.floor(Date.now() / 1000), ath, nonce };
        const input = text({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }) + "." + text(claims);
        const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, other.privateKey, new TextEncoder().encode(input));
        const foreign = await fetch("/api/me", { headers: { authorization: "DPoP " + token, dpop: input + "." + b64(sig) } });
        return {
          me: me.status, post: post.status, first: first.status, replayed: replayed.status,
          bearer: bearer.status, unproved: unproved.status, foreign: foreign.status,
          scheme: headers.Authorization.split(" ")[0], proof: typeof headers.DPoP,
          errors: window.events.filter((e) => e.type === "error").map((e) => e.error.code),
        };
      }, config("memory"));
      assert.equal(r.me, 200, "session.fetch with DPoP");
      assert.equal(r.post, 200, "a POST too");
      assert.equal(r.scheme, "DPoP");
      assert.equal(r.proof, "string");
      assert.equal(r.first, 200, "authHeaders' headers work for another client");
      assert.equal(r.replayed, 401, "a replayed proof is refused");
      assert.equal(r.bearer, 401, "the bound token as a bearer token is refused");
      assert.equal(r.unproved, 401, "the token without a proof is refused");
      assert.equal(r.foreign, 401, "a proof from another key is refused");
      assert.deepEqual(r.errors, []);
      const stats = await server.stats();
      assert.ok(stats.dpop_nonce_challenges >= 1, "the server demanded its nonce");
      assert.ok(stats.dpop_ok >= 3, `proofs accepted: ${stats.dpop_ok}`);
    } finally { await context.close(); await server.stop(); }
  });

  test("the key is not extractable, a reload in local mode keeps it and the session, logout deletes it", async () => {
    const server = await startServer({ DPOP_NONCE: "1" });
    const context = await browser.newContext();
    try {
      const page = await openTab(context, server, "/e2e-oidc.html");
      const before = await page.evaluate(async ({ cfg, storedKey }) => {
        const s = makeSession(cfg);
        await s.login("/auth/login", { username: "demo", password: "demo" });
        const key = await (0, eval)(storedKey)();
        let exported = "exported";
        try { await crypto.subtle.exportKey("jwk", key.privateKey); } catch (e) { exported = e.name; }
        const res = await s.fetch("/api/me");
        return { extractable: key.privateKey.extractable, exported, me: res.status, why: res.headers.get("www-authenticate"), x: key.jwk.x };
      }, { cfg: config("local"), storedKey: `(${storedKey})` });
      assert.equal(before.me, 200, `refused: ${before.why}`);
      assert.equal(before.extractable, false, "the private key is not extractable");
      assert.notEqual(before.exported, "exported", "exportKey refuses the private key");
      await page.reload();
      await page.waitForFunction(() => window.fixtureReady === true);
      const after = await page.evaluate(async ({ cfg, storedKey }) => {
        const s = makeSession(cfg);
        const restored = await s.ready;
        const me = (await s.fetch("/api/me")).status;
        await s.refresh();
        const afterRefresh = (await s.fetch("/api/me")).status;
        const key = await (0, eval)(storedKey)();
        await s.logout();
        const gone = await (0, eval)(storedKey)();
        return { restored, me, afterRefresh, x: key?.jwk?.x, gone, signedIn: s.isAuthenticated };
      }, { cfg: config("local"), storedKey: `(${storedKey})` });
      assert.equal(after.restored, true, "the session came back");
      assert.equal(after.me, 200, "with its key");
      assert.equal(after.afterRefresh, 200, "the bound refresh token works with the stored key");
      assert.equal(after.x, before.x, "the same key");
      assert.equal(after.gone, null, "no key remains after logout");
      assert.equal(after.signedIn, false);
      const stats = await server.stats();
      assert.equal(stats.dpop_rejected, 0, `DPoP refusals: ${stats.dpop_rejected}`);
    } finally { await context.close(); await server.stop(); }
  });

  test("memory mode: a second tab gets the key with the session; nothing is written to IndexedDB", async () => {
    const server = await startServer({ DPOP_NONCE: "1" });
    const context = await browser.newContext();
    try {
      const one = await openTab(context, server, "/e2e-oidc.html");
      await one.evaluate(async (cfg) => {
        const s = makeSession(cfg);
        await s.login("/auth/login", { username: "demo", password: "demo" });
      }, config("memory"));
      const two = await openTab(context, server, "/e2e-oidc.html");
      const r = await two.evaluate(async ({ cfg, storedKey }) => {
        const s = makeSession(cfg);
        const restored = await s.ready;
        const me = (await s.fetch("/api/me")).status;
        await s.refresh();
        const afterRefresh = (await s.fetch("/api/me")).status;
        return { restored, me, afterRefresh, stored: await (0, eval)(storedKey)() };
      }, { cfg: config("memory"), storedKey: `(${storedKey})` });
      assert.equal(r.restored, true);
      assert.equal(r.me, 200, "the second tab signs with the shared key");
      assert.equal(r.afterRefresh, 200, "and refreshes the bound refresh token");
      assert.equal(r.stored, null, "memory mode writes no key");
      const first = await one.evaluate(async () => (await session.fetch("/api/me")).status);
      assert.equal(first, 200, "the first tab adopted the refreshed tokens");
    } finally { await context.close(); await server.stop(); }
  });
});

// Against oidc-provider with features.dPoP and DPOP_NONCE=1 (every proof must carry its
// nonce), rotating refresh tokens bound to the key, 4 s access tokens.
const attempt = (page, fn, arg) => page.evaluate(fn, arg).catch(() => null);

/** Signs in on the provider's form through `loginWithRedirect`; returns the callback URL. */
async function viaProvider(page, issuer, app) {
  await attempt(page, () => { window.session.loginWithRedirect(); });
  const back = (url) => url.startsWith(app + "?");
  // page.url() is a promise under the WebKit harness: awaited everywhere.
  await until(async () => { const url = await page.url(); return url.startsWith(issuer + "/interaction/") || back(url); },
    { timeout: 20000, what: "the provider's login page" });
  if (!back(await page.url())) {
    await until(() => attempt(page, () => !!document.querySelector("input[name=login]")), { what: "the login form" });
    await attempt(page, () => {
      document.querySelector("input[name=login]").value = "ada";
      document.querySelector("input[name=password]").value = "any password";
      document.querySelector("form").submit();
    });
    await until(async () => back(await page.url()), { timeout: 20000, what: "the redirect back to the app" });
  }
  await until(() => attempt(page, () => window.fixtureReady === true), { what: "the app to load" });
  return await page.url();
}

for (const engine of engines) describe(`${engine}, oidc-provider`, () => {
  let browser;
  before(async () => { browser = await launchEngine(engine); });
  after(async () => { await browser?.close(); });

  for (const storage of ["memory", "session", "local"]) {
    test(`${storage}: sign-in, userinfo with DPoP, 3 tabs over several lifetimes with 0 rejected refreshes and 0 failed calls`, async () => {
      const server = await startServer();
      const provider = await startProvider(server.main, { accessTtl: 4, env: { DPOP_NONCE: "1" } });
      const context = await browser.newContext();
      const app = server.main + "/e2e-oidc.html"; // the package's OpenID Connect entry
      const config = { issuer: provider.issuer, clientId: "demo-spa", redirectUri: app, storage, dpop: true };
      try {
        const tabs = [];
        for (let i = 0; i < 3; i++) {
          const page = await openTab(context, server, "/e2e-oidc.html");
          await page.evaluate((c) => { window.makeSession(c); }, config);
          tabs.push(page);
        }
        const url = await viaProvider(tabs[0], provider.issuer, app);
        await tabs[0].evaluate((c) => { window.makeSession(c); }, config);
        const signedIn = await tabs[0].evaluate(async (url) => {
          try { await window.session.handleRedirectCallback(url); return true; } catch (e) { return `${e.code}: ${e.message}`; }
        }, url);
        assert.equal(signedIn, true);
        for (const page of tabs) await until(() => page.evaluate(() => window.session.isAuthenticated), { what: "every tab signed in" });
        const loops = tabs.map((page) => page.evaluate(async (url) => {
          const statuses = {};
          while (!window.stopCalls) {
            const r = await window.session.fetch(url);
            statuses[r.status] = (statuses[r.status] || 0) + 1;
            await new Promise((r) => setTimeout(r, 100));
          }
          return statuses;
        }, provider.issuer + "/me"));
        await until(async () => (await provider.stats()).refreshes >= 5, { timeout: 60000, interval: 250, what: "5 refreshes" });
        for (const page of tabs) await page.evaluate(() => { window.stopCalls = true; });
        const results = await Promise.all(loops);
        const stats = await provider.stats();
        console.log(`${engine} ${storage}: provider ${JSON.stringify(stats)} calls per tab ${JSON.stringify(results)}`);
        assert.ok(stats.dpop_tokens >= 1, "the provider bound the tokens");
        // The code too (dpop_jkt), where the key can wait in IndexedDB across the redirect.
        assert.equal(stats.codes_bound, storage === "memory" ? 0 : 1, "dpop_jkt on the authorization request");
        assert.equal(stats.refresh_rejected, 0, "a refresh was rejected");
        assert.equal(stats.dpop_rejected, 0, "a proof was refused");
        assert.equal(stats.userinfo_rejected, 0);
        for (const r of results) assert.deepEqual(Object.keys(r), ["200"], `a userinfo call failed: ${JSON.stringify(r)}`);
      } finally { await context.close(); await provider.stop(); await server.stop(); }
    });
  }
});
