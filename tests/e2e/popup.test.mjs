// loginWithPopup against a real OpenID Provider (oidc-provider on a free port), with the
// browsers' popup blockers ON: the popup opened in a click, the provider's login form filled
// in the popup, its redirect page (www/popup-callback.html) handing the URL back; the user
// closing the popup, clicking twice, doing nothing until timeoutMs; the blocker refusing a
// popup opened outside a click; forged callback messages that must be ignored, a callback
// with another state, the provider's access_denied; and the demo's popup button.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startServer, startProvider, chromiumArgs, engines, launchEngine, until } from "./harness.mjs";

/**
 * Launches `engine` with its popup blocker on. Playwright passes --disable-popup-blocking to
 * Chromium and puppeteer sets Firefox's dom.disable_open_during_load to false by default (so
 * the harness's browsers allow every popup); here both are undone, so that these tests show
 * that the popup opened in a click passes a real blocker and one opened outside is refused.
 * The pages are the engines' own (Playwright's and puppeteer's, and the harness's for WebKit):
 * the tests use only what they have in common (`goto`, `evaluate(fn, arg)`, `click`, `url`,
 * `on("popup")`, `isClosed`, `close`), and await `url()` and `isClosed()`, which WebDriver
 * has to ask the browser.
 */
async function launchBlocking(engine) {
  if (engine === "chromium") {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: chromiumArgs,
      ignoreDefaultArgs: ["--disable-popup-blocking"],
    });
    return { newContext: () => browser.newContext(), close: () => browser.close() };
  }
  // WebKitGTK's popup blocker is on as the harness launches it: a window opened by a script
  // is refused, one opened in a click handler (a WebDriver element click) goes through.
  if (engine === "webkit") return launchEngine("webkit");
  if (engine !== "firefox") throw new Error(`unknown browser ${engine}`);
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
    headless: true,
    extraPrefsFirefox: { "dom.disable_open_during_load": true },
  });
  return { newContext: () => browser.createBrowserContext(), close: () => browser.close() };
}

const browsers = {};
before(async () => { for (const e of engines) browsers[e] = await launchBlocking(e); });
after(async () => { for (const b of Object.values(browsers)) await b.close(); });

/** A server, a provider and a browser context (the tabs of one user). */
async function setup(engine) {
  const server = await startServer();
  const provider = await startProvider(server.main);
  const context = await browsers[engine].newContext();
  const app = server.main + "/e2e-oidc.html";
  const redirectUri = server.main + "/popup-callback.html";
  return {
    server, provider, context, app, redirectUri,
    config: { issuer: provider.issuer, clientId: "demo-spa", redirectUri },
    async close() { await context.close(); await provider.stop(); await server.stop(); },
  };
}

/** `evaluate` that tolerates the page navigating or closing meanwhile. */
const attempt = (page, fn, arg) => page.evaluate(fn, arg).catch(() => null);

/**
 * A tab on the fixture page with its session, and a "Sign in" button whose click calls
 * `loginWithPopup(window.popupOptions)`; its outcome lands in `window.popupResult`.
 */
async function openTab(t) {
  const page = await t.context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(t.app);
  await until(() => attempt(page, () => window.fixtureReady === true), { what: "the fixture page" });
  await page.evaluate((config) => {
    window.makeSession(config);
    const button = document.createElement("button");
    button.id = "popup-signin";
    button.textContent = "Sign in";
    // `popupResult` is the latest call's outcome; `outcomes[n]` the n-th call's.
    window.outcomes = {};
    let calls = 0;
    button.onclick = () => {
      const n = ++calls;
      const settle = (result) => {
        window.outcomes[n] = result;
        if (n === calls) window.popupResult = result;
      };
      window.session.loginWithPopup(window.popupOptions).then(
        (r) => settle(r.appState === undefined ? { ok: true } : { ok: true, appState: r.appState }),
        (e) => settle({ code: e.code, error: e.error, message: e.message }),
      );
    };
    document.body.append(button);
  }, t.config);
  return page;
}

/** Clicks the tab's "Sign in" button with `options` and returns the popup it opened. */
async function clickSignIn(page, options = {}) {
  await page.evaluate((o) => { window.popupOptions = o; window.popupResult = null; }, options);
  const popup = new Promise((resolve) => page.once("popup", resolve));
  await page.click("#popup-signin");
  return popup;
}

/** Waits until the popup shows the provider's login form. */
async function loginForm(t, popup) {
  await until(async () => (await popup.url()).startsWith(t.provider.issuer + "/interaction/"),
    { timeout: 20000, what: "the provider's login page in the popup" });
  await until(() => attempt(popup, () => !!document.querySelector("input[name=login]")), { what: "the login form" });
}

/** Signs in on the provider's form in the popup as `login` (or cancels there). */
async function submitForm(popup, { login = "ada", cancel = false } = {}) {
  await attempt(popup, ({ login, cancel }) => {
    if (cancel) return document.querySelector("a[href*='/abort']").click();
    document.querySelector("input[name=login]").value = login;
    document.querySelector("input[name=password]").value = "any password";
    document.querySelector("form").submit();
  }, { login, cancel });
}

/** The outcome of the tab's `loginWithPopup`, once it settled. */
const outcome = (page) => until(() => page.evaluate(() => window.popupResult),
  { timeout: 30000, what: "loginWithPopup to settle" });

const signedIn = (page) => page.evaluate(() => window.session.isAuthenticated);
const sub = (page) => page.evaluate(() => window.session.idClaims?.sub ?? null);
const userinfo = (page, issuer) => page.evaluate(async (url) => {
  const r = await window.session.fetch(url);
  return { status: r.status, body: r.ok ? await r.json() : null };
}, issuer + "/me");

/** Waits for the popup window to be gone (its close event, as the browser reports it). */
const closed = (popup) => until(() => popup.isClosed(), { what: "the popup to close" });

for (const engine of engines) {
  test(`[${engine}] sign in in a popup opened by a click: the promise gets appState, the popup closes, every tab signs in`, async () => {
    const t = await setup(engine);
    try {
      const [a, b] = [await openTab(t), await openTab(t)];
      const popup = await clickSignIn(a, { appState: { back: "/orders/7" } });
      await loginForm(t, popup);
      assert.equal(await a.evaluate(() => window.popupResult), null, "still waiting for the popup");
      await submitForm(popup);
      const result = await outcome(a);
      assert.deepEqual(result, { ok: true, appState: { back: "/orders/7" } }, JSON.stringify(result));
      await closed(popup);
      assert.equal(await a.url(), t.app, "the app's page stayed where it was");
      assert.equal(await sub(a), "ada");
      await until(() => signedIn(b), { what: "the other tab to adopt the sign-in" });
      assert.equal(await sub(b), "ada");
      for (const page of [a, b]) {
        const me = await userinfo(page, t.provider.issuer);
        assert.equal(me.status, 200);
        assert.equal(me.body.sub, "ada");
      }
      const stats = await t.provider.stats();
      assert.equal(stats.codes, 1, JSON.stringify(stats));
      assert.equal(stats.code_rejected, 0);
      assert.equal(await a.evaluate(() => sessionStorage.getItem("wasm-session:default:oidc")), null,
        "the popup's login is kept in memory, never in sessionStorage");
    } finally { await t.close(); }
  });

  test(`[${engine}] the user closes the popup: popup_closed, nobody signed in`, async () => {
    const t = await setup(engine);
    try {
      const [a, b] = [await openTab(t), await openTab(t)];
      const popup = await clickSignIn(a, { appState: 1 });
      await loginForm(t, popup);
      await popup.close();
      const result = await outcome(a);
      assert.equal(result.code, "popup_closed", JSON.stringify(result));
      assert.equal(await signedIn(a), false);
      assert.equal(await signedIn(b), false);
      assert.equal((await t.provider.stats()).codes, 0);
      // A later attempt is not held up by the closed one.
      const again = await clickSignIn(a);
      await loginForm(t, again);
      await submitForm(again, { login: "grace" });
      assert.deepEqual(await outcome(a), { ok: true });
      assert.equal(await sub(a), "grace");
      await until(() => signedIn(b), { what: "the other tab to adopt the sign-in" });
    } finally { await t.close(); }
  });

  test(`[${engine}] a second click while the popup is open: the first call rejects popup_closed, the second signs in`, async () => {
    const t = await setup(engine);
    try {
      const a = await openTab(t);
      const popups = [];
      a.on("popup", (p) => popups.push(p));
      const first = await clickSignIn(a, { appState: 1 });
      await loginForm(t, first);
      await a.evaluate(() => { window.popupOptions = { appState: 2 }; });
      await a.click("#popup-signin");
      const firstOutcome = await until(() => a.evaluate(() => window.outcomes[1]), { what: "the first call to settle" });
      assert.equal(firstOutcome.code, "popup_closed", JSON.stringify(firstOutcome));
      // The second call's window: a new one, or the first one taken over (same name).
      const second = await until(async () => {
        for (const p of popups) if (!(await p.isClosed()) && (await p.url()).startsWith(t.provider.issuer)) return p;
      }, { timeout: 20000, what: "the second popup at the provider" });
      await loginForm(t, second);
      assert.equal(await a.evaluate(() => window.outcomes[2] ?? null), null, "the second call waits for its popup");
      await submitForm(second);
      assert.deepEqual(await until(() => a.evaluate(() => window.outcomes[2]), { what: "the second call to settle" }),
        { ok: true, appState: 2 });
      assert.equal((await t.provider.stats()).codes, 1);
    } finally { await t.close(); }
  });

  test(`[${engine}] the user does nothing: timeout after timeoutMs, the popup is closed`, async () => {
    const t = await setup(engine);
    try {
      const a = await openTab(t);
      const popup = await clickSignIn(a, { timeoutMs: 1000 });
      const result = await outcome(a);
      assert.equal(result.code, "timeout", JSON.stringify(result));
      await closed(popup);
      assert.equal(await signedIn(a), false);
      assert.equal((await t.provider.stats()).codes, 0);
    } finally { await t.close(); }
  });

  test(`[${engine}] outside a click the popup blocker refuses the window: popup_blocked`, async () => {
    const t = await setup(engine);
    try {
      const page = await t.context.newPage();
      const popups = [];
      page.on("popup", (p) => popups.push(p));
      // The page calls loginWithPopup from a timer as soon as it has loaded: no click, no
      // user activation. Nothing is evaluated in the page until it answered (puppeteer's
      // evaluate counts as a user activation in Firefox), so the answer comes as a console line.
      const answer = new Promise((resolve) => page.on("console", (m) => {
        if (m.text().startsWith("popup-result ")) resolve(JSON.parse(m.text().slice("popup-result ".length)));
      }));
      const noGesture = (config) => {
        const timer = setInterval(() => {
          if (!window.fixtureReady) return;
          clearInterval(timer);
          window.makeSession(config);
          const answer = (result) => { window.popupAnswer = result; console.log("popup-result " + JSON.stringify(result)); };
          window.session.loginWithPopup().then(() => answer({ ok: true }), (e) => answer({ code: e.code, message: e.message }));
        }, 10);
      };
      let result;
      if (engine === "webkit") {
        // WebDriver runs no script before the page's own and shows no console, but its
        // evaluate is no user activation in WebKit (a window.open in it is refused): the timer
        // is set from one and the answer read back from the page. A window opened would be
        // one more of the session's.
        await page.goto(t.app);
        await until(() => attempt(page, () => window.fixtureReady === true), { what: "the fixture page" });
        const windows = (await t.context.windows()).length;
        await page.evaluate(noGesture, t.config);
        result = await until(() => page.evaluate(() => window.popupAnswer), { what: "loginWithPopup to settle" });
        assert.equal((await t.context.windows()).length, windows, "a window was opened");
      } else {
        await ("addInitScript" in page ? page.addInitScript(noGesture, t.config) : page.evaluateOnNewDocument(noGesture, t.config));
        await page.goto(t.app);
        result = await answer;
      }
      assert.equal(result.code, "popup_blocked", JSON.stringify(result));
      assert.match(result.message, /click/);
      assert.equal(popups.length, 0, "no window was opened");
      assert.equal(await signedIn(page), false);
    } finally { await t.close(); }
  });

  test(`[${engine}] forged callback messages (another frame of this origin, the popup on the provider's origin) are ignored`, async () => {
    const t = await setup(engine);
    try {
      const a = await openTab(t);
      const popup = await clickSignIn(a, { appState: "real" });
      await loginForm(t, popup);
      // A listener added after the SDK's (which loginWithPopup added) sees each message after
      // it: once it has seen a forged one, the SDK has handled it.
      await a.evaluate(() => {
        window.seen = [];
        addEventListener("message", (e) => { if (e.data?.type === "wasm-session:callback") window.seen.push(e.data.url); });
      });
      const forged = t.app + "?code=x&state=" + "w".repeat(43);
      /** Posts a forged callback with `post`, waits until it was delivered, checks it changed nothing. */
      const forge = async (from, post) => {
        const count = await a.evaluate(() => window.seen.length);
        await post(forged + "&from=" + from);
        await until(() => a.evaluate((n) => window.seen.length > n, count), { what: `the message from ${from} delivered` });
        assert.equal(await a.evaluate(() => window.popupResult), null, `a message from ${from} was taken as the callback`);
        assert.equal(await popup.isClosed(), false, `a message from ${from} closed the popup`);
      };
      // A same-origin iframe in the app's page (of this origin, not the popup).
      await forge("iframe", (url) => a.evaluate((url) => {
        const frame = document.createElement("iframe");
        const message = JSON.stringify({ type: "wasm-session:callback", url });
        frame.srcdoc = `<script>parent.postMessage(${message}, ${JSON.stringify(location.origin)})<\/script>`;
        document.body.append(frame);
      }, url));
      // The app's page to itself.
      await forge("self", (url) => a.evaluate((url) => { postMessage({ type: "wasm-session:callback", url }, location.origin); }, url));
      // The popup itself, while on the provider's origin (the popup, not this origin).
      await forge("provider", (url) => popup.evaluate((url) => { opener.postMessage({ type: "wasm-session:callback", url }, "*"); }, url));
      await submitForm(popup);
      const result = await outcome(a);
      assert.deepEqual(result, { ok: true, appState: "real" }, JSON.stringify(result));
      await closed(popup);
      assert.equal(await sub(a), "ada");
      const stats = await t.provider.stats();
      assert.equal(stats.codes, 1);
      assert.equal(stats.code_rejected, 0, "no forged code reached the provider");
    } finally { await t.close(); }
  });

  test(`[${engine}] the popup comes back with another state: invalid_state, the popup closed, no code exchanged`, async () => {
    const t = await setup(engine);
    try {
      const a = await openTab(t);
      const popup = await clickSignIn(a);
      await loginForm(t, popup);
      // The popup lands on the redirect page with a callback that is not this sign-in's.
      await attempt(popup, (url) => { location.href = url; }, `${t.redirectUri}?code=x&state=${"w".repeat(43)}`);
      const result = await outcome(a);
      assert.equal(result.code, "invalid_state", JSON.stringify(result));
      await closed(popup);
      assert.equal(await signedIn(a), false);
      const stats = await t.provider.stats();
      assert.equal(stats.codes + stats.code_rejected, 0, "nothing was sent to the token endpoint");
    } finally { await t.close(); }
  });

  test(`[${engine}] access_denied at the provider, in the popup: oauth_error, the popup closed`, async () => {
    const t = await setup(engine);
    try {
      const a = await openTab(t);
      const popup = await clickSignIn(a);
      await loginForm(t, popup);
      await submitForm(popup, { cancel: true });
      const result = await outcome(a);
      assert.equal(result.code, "oauth_error", JSON.stringify(result));
      assert.equal(result.error, "access_denied");
      await closed(popup);
      assert.equal(await signedIn(a), false);
      assert.equal((await t.provider.stats()).codes, 0);
    } finally { await t.close(); }
  });
}

for (const engine of engines) {
  test(`[${engine}] demo: "Sign in with a popup", the same "/" as redirect page for both flows`, async () => {
    const t = await setup(engine);
    try {
      const page = await t.context.newPage();
      page.on("pageerror", (e) => console.error("page error:", e.message));
      const demo = `${t.server.main}/?mode=oidc&issuer=${encodeURIComponent(t.provider.issuer)}`;
      await page.goto(demo);
      await until(() => attempt(page, () => window.session !== undefined), { what: "the demo page" });
      const popup = new Promise((resolve) => page.once("popup", resolve));
      await page.click("#popup-button");
      const popupWindow = await popup;
      await loginForm(t, popupWindow);
      await submitForm(popupWindow, { login: "grace" });
      const status = () => page.evaluate(() => document.querySelector("#status").textContent);
      await until(async () => (await status()) === "signed in", { timeout: 20000, what: "the demo signed in" });
      await closed(popupWindow);
      assert.equal(await page.url(), demo, "the demo page stayed where it was");
      assert.match(await page.evaluate(() => document.querySelector("#who").textContent), /grace/);
      assert.equal(await page.evaluate(() => document.querySelector("#signin-error").textContent), "");
      assert.equal((await t.provider.stats()).codes, 1);
    } finally { await t.close(); }
  });
}
