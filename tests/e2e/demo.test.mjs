// The demo page (www/index.html) driven like a person would: sign in, watch it live, sign out.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { startServer, startProvider, launch, chromiumTest as test, root } from "./harness.mjs";

let browser, server, context;
const consoleErrors = [];
before(async () => {
  browser = await launch();
  server = await startServer({ ACCESS_TTL: "4" });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
});
after(async () => { await context?.close(); await browser?.close(); await server?.stop(); });

async function openDemo() {
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  await page.goto(server.main + "/");
  await page.waitForFunction(() => window.session !== undefined);
  return page;
}

const timeline = (page) => page.locator("#timeline li .kind").allTextContents();

test("demo: sign in, live countdown, refresh in the timeline, API call, sign out everywhere", async () => {
  const page = await openDemo();
  assert.equal(await page.textContent("#status"), "signed out");
  await page.click("#signin-button");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "signed in");
  assert.match(await page.textContent("#who"), /Demo User \(demo\)/);
  assert.match(await page.textContent("#claims"), /"jti"/);

  const first = await page.textContent("#expires-in");
  await page.waitForFunction((t) => document.querySelector("#expires-in").textContent !== t, first);
  const [a, b] = [first, await page.textContent("#expires-in")].map((s) => parseFloat(s));
  assert.ok(b < a, `countdown moved down (${a} -> ${b})`);

  // A 4 s token is refreshed at 3 s: it shows up in the timeline.
  await page.waitForFunction(() => [...document.querySelectorAll("#timeline .kind")].some((k) => k.textContent === "refresh"),
    null, { timeout: 8000 });

  await page.click("#call-api");
  await page.waitForFunction(() => document.querySelector("#api-result").textContent.startsWith("HTTP"));
  assert.match(await page.textContent("#api-result"), /HTTP 200[\s\S]*"sub":"demo"/);

  await page.screenshot({ path: path.join(root, "www/screenshot.png"), fullPage: true });

  const other = await openDemo();
  await other.waitForFunction(() => document.querySelector("#status").textContent === "signed in");
  await page.click("#signout");
  await other.waitForFunction(() => document.querySelector("#status").textContent === "signed out");
  assert.ok((await timeline(other)).includes("logout"));
  assert.match(await other.textContent("#timeline"), /reason: other_tab/);
  assert.equal(await other.textContent("#claims"), "–");
  await other.close();
  await page.close();
  assert.deepEqual(consoleErrors, [], "the demo logged console errors");
});

test("demo with the DPoP switch on: the token is bound, the API call carries a proof the server accepts", async () => {
  const page = await context.newPage();
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  await page.goto(server.main + "/?dpop=on");
  await page.waitForFunction(() => window.session !== undefined);
  assert.equal(await page.inputValue("#dpop"), "on");
  const before = await server.stats();
  await page.click("#signin-button");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "signed in");
  await page.click("#call-api");
  await page.waitForFunction(() => document.querySelector("#api-result").textContent.startsWith("HTTP"));
  assert.match(await page.textContent("#api-result"), /HTTP 200[\s\S]*"sub":"demo"/);
  const stats = await server.stats();
  assert.ok(stats.dpop_ok > before.dpop_ok, "the server verified DPoP proofs");
  assert.equal(stats.dpop_rejected, before.dpop_rejected);
  await page.click("#signout");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "signed out");
  await page.close();
  assert.deepEqual(consoleErrors, [], "the demo logged console errors");
});

test("demo: wrong password shows an error; a rejected refresh token signs out", async () => {
  const page = await openDemo();
  await page.fill("input[name=password]", "wrong");
  await page.click("#signin-button");
  await page.waitForFunction(() => document.querySelector("#signin-error").textContent !== "");
  assert.equal(await page.textContent("#signin-error"), "Wrong username or password.");
  await page.fill("input[name=password]", "demo");
  await page.click("#signin-button");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "signed in");
  await page.click("#fault-reject");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "signed out");
  assert.match(await page.textContent("#timeline"), /reason: refresh_rejected/);
  await page.close();
});

test("demo: cookie mode with an idle timeout shows the countdown, warns, and signs out when idle", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.clock.install();
  try {
    const page = await ctx.newPage();
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    await page.goto(server.main + "/?mode=cookie&idle=60");
    await page.waitForFunction(() => window.session !== undefined);
    assert.equal(await page.inputValue("#mode"), "cookie");
    assert.equal(await page.isDisabled("#storage"), true, "cookie mode keeps nothing in storage");
    await page.click("#signin-button");
    await page.waitForFunction(() => document.querySelector("#status").textContent === "signed in");
    assert.match(await page.textContent("#who"), /Demo User \(demo\)/);
    assert.match(await page.textContent("#claims"), /No token in the page/);
    await page.click("#call-counter");
    await page.waitForFunction(() => document.querySelector("#api-result").textContent.startsWith("HTTP"));
    assert.match(await page.textContent("#api-result"), /HTTP 200[\s\S]*"count":1/);
    await page.clock.runFor(1_000);
    assert.ok(parseFloat(await page.textContent("#idle-in")) > 55, "the idle countdown is shown");
    await page.clock.runFor(46_000); // a quarter of the timeout before the end: the warning
    await page.waitForFunction(() => !document.querySelector("#idle-warning").hidden);
    await page.mouse.move(200, 200);
    await page.mouse.down();
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelector("#idle-warning").hidden);
    await page.clock.runFor(61_000);
    await page.waitForFunction(() => document.querySelector("#status").textContent === "signed out");
    assert.match(await page.textContent("#timeline"), /reason: idle/);
  } finally { await ctx.close(); }
});

test("demo: Sign in with OpenID Connect at the provider, userinfo, sign out at the provider", async () => {
  const provider = await startProvider(server.main);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await ctx.newPage();
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    await page.goto(`${server.main}/?mode=oidc&storage=session&issuer=${encodeURIComponent(provider.issuer)}`);
    await page.waitForFunction(() => window.session !== undefined);
    assert.equal(await page.textContent("#signin-button"), "Sign in with OpenID Connect");
    await page.click("#signin-button");
    await page.waitForURL(/\/interaction\//);
    await page.fill("input[name=login]", "grace");
    await page.fill("input[name=password]", "any");
    await page.click("button[type=submit]");
    await page.waitForURL((url) => url.href === server.main + "/");
    await page.waitForFunction(() => document.querySelector("#status")?.textContent === "signed in");
    assert.match(await page.textContent("#who"), /grace/);
    assert.match(await page.textContent("#claims"), /"nonce"/);
    await page.click("#call-api");
    await page.waitForFunction(() => document.querySelector("#api-result").textContent.startsWith("HTTP"));
    assert.match(await page.textContent("#api-result"), /HTTP 200[\s\S]*"sub":"grace"/);
    await page.click("#signout");
    await page.waitForURL(/\/session\/end/);
    await page.click("button[name=logout]");
    await page.waitForURL((url) => url.href === server.main + "/");
    await page.waitForFunction(() => document.querySelector("#status")?.textContent === "signed out");
    const stats = await provider.stats();
    assert.deepEqual([stats.codes, stats.revocations, stats.ended_sessions], [1, 1, 1]);
  } finally { await ctx.close(); await provider.stop(); }
});
