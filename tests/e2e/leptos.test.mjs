// The Leptos example (examples/leptos, built into www/leptos/ by scripts/build-example.sh): a
// Rust app on wasm-session's Rust API, signing in with OpenID Connect against the real
// provider. Two tabs of one context: sign-in in one, the session shared with the other, an
// API call through session.fetch there, and logout reaching both.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, startProvider, launchEngine, engines, until } from "./harness.mjs";

const browsers = {};
before(async () => { for (const e of engines) browsers[e] = await launchEngine(e); });
after(async () => { for (const b of Object.values(browsers)) await b.close(); });

/** `evaluate` that tolerates the page navigating away meanwhile. */
const attempt = (page, fn, arg) => page.evaluate(fn, arg).catch(() => null);
const text = (page, id) => attempt(page, (id) => document.getElementById(id)?.textContent ?? null, id);
const click = (page, id) => attempt(page, (id) => { document.getElementById(id).click(); }, id);
const shows = (page, id, want, what) =>
  until(async () => (await text(page, id)) === want, { timeout: 20000, what: `${what}: #${id} "${want}"` });

for (const engine of engines) {
  test(`[${engine}] the Leptos example signs in, shares the session with a second tab and logs out in both`, async () => {
    const server = await startServer();
    const provider = await startProvider(server.main);
    const context = await browsers[engine].newContext();
    const app = `${server.main}/leptos.html`;
    try {
      const a = await context.newPage();
      await a.goto(`${app}?issuer=${encodeURIComponent(provider.issuer)}`);
      await shows(a, "status", "Signed out", "tab a at start");

      // Sign-in through the provider's login form, back on the page with the code.
      await click(a, "login");
      await until(async () => (await a.url()).startsWith(provider.issuer + "/interaction/"), { timeout: 20000, what: "the provider's login page" });
      await until(() => attempt(a, () => !!document.querySelector("input[name=login]")), { what: "the login form" });
      await attempt(a, () => {
        document.querySelector("input[name=login]").value = "ada";
        document.querySelector("input[name=password]").value = "any password";
        document.querySelector("form").submit();
      });
      await until(async () => (await a.url()).startsWith(app), { timeout: 20000, what: "the redirect back to the app" });
      await shows(a, "status", "Signed in as ada", "tab a after sign-in");
      assert.match(await text(a, "expiry"), /^Access token valid until /);
      assert.equal(new URL(await a.url()).search, "", "the callback's parameters stay in the address bar");

      // A second tab gets the session from the first (memory storage: over the channel).
      const b = await context.newPage();
      await b.goto(`${app}?issuer=${encodeURIComponent(provider.issuer)}`);
      await shows(b, "status", "Signed in as ada", "tab b");
      await click(b, "call");
      await until(async () => (await text(b, "answer"))?.startsWith("200 "), { timeout: 20000, what: "the API's answer in tab b" });
      assert.equal(JSON.parse((await text(b, "answer")).slice(4)).sub, "ada");

      // Logout in tab a: tab b follows at once; tab a goes by the provider and comes back.
      await click(a, "logout");
      await shows(b, "status", "Signed out", "tab b after logout in tab a");
      await until(async () => (await a.url()).startsWith(provider.issuer + "/session/end"), { timeout: 20000, what: "the provider's logout page" });
      await until(() => attempt(a, () => !!document.querySelector("button[name=logout]")), { what: "the logout form" });
      await attempt(a, () => document.querySelector("button[name=logout]").click());
      await until(async () => (await a.url()).startsWith(app), { timeout: 20000, what: "the redirect back after logout" });
      await shows(a, "status", "Signed out", "tab a after logout");
      assert.equal(await text(b, "error"), "", "tab b showed an error");
    } finally {
      await context.close();
      await provider.stop();
      await server.stop();
    }
  });
}
