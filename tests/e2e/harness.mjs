// Shared pieces of the end-to-end tests: the real local server on free ports, Debian's
// Chromium through playwright-core, Firefox through puppeteer-core, WebKit through
// selenium-webdriver (harness-webkit.mjs), and tabs (pages of one browser context).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function spawnServer(env) {
  const bin = process.env.WS_SERVER_BIN || path.join(root, "target/debug/wasm-session-server");
  const child = spawn(bin, [], {
    cwd: root,
    env: { ...process.env, PORT: "0", API_PORT: "0", FOREIGN_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const origins = {};
  const lines = createInterface({ input: child.stdout });
  await new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      const m = line.match(/^listening (\w+) (\S+)/);
      if (m) origins[m[1]] = m[2];
      if (line.startsWith("ready")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, origins };
}

/** Starts the server (main, api and foreign origins on free ports) with extra env. */
export async function startServer(env = {}) {
  let { child, origins } = await spawnServer(env);
  const call = async (origin, method, p, body) => {
    const res = await fetch(origin + p, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  };
  const port = (url) => new URL(url).port;
  const server = {
    ...origins,
    stats: (origin = origins.main) => call(origin, "GET", "/__stats"),
    reset: async () => {
      await call(origins.main, "POST", "/__reset");
      await call(origins.foreign, "POST", "/__reset");
    },
    faults: (spec) => call(origins.main, "POST", "/__faults", spec),
    /** Form POST to the token endpoint from outside the browser. */
    token: async (form) => {
      const res = await fetch(origins.main + "/auth/token", { method: "POST", body: new URLSearchParams(form) });
      return { status: res.status, body: await res.json() };
    },
    async stop() {
      // A child ended by a signal has a null exitCode but a signalCode: it is gone too.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill();
        await once(child, "exit").catch(() => {});
      }
    },
    /** Starts the server again on the same ports (sessions survive only with STATE_FILE). */
    async restart() {
      ({ child } = await spawnServer({
        ...env, PORT: port(origins.main), API_PORT: port(origins.api), FOREIGN_PORT: port(origins.foreign),
      }));
    },
  };
  return server;
}

/**
 * Starts the OpenID Provider of www/oidc/provider.mjs (oidc-provider) on a free port, with
 * `appOrigin`'s "/", "/e2e.html" and "/e2e-oidc.html" as redirect URIs and `accessTtl`-second access tokens;
 * `env` adds to its environment (e.g. `{ DPOP_NONCE: "1" }`).
 */
export async function startProvider(appOrigin, { accessTtl = 60, env = {} } = {}) {
  const child = spawn(process.execPath, [path.join(root, "www/oidc/provider.mjs")], {
    cwd: root,
    env: { ...process.env, OIDC_PORT: "0", APP_ORIGINS: appOrigin, OIDC_ACCESS_TTL: String(accessTtl), ...env },
    stdio: ["ignore", "pipe", "ignore"],
  });
  let issuer;
  const lines = createInterface({ input: child.stdout });
  await new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      const m = line.match(/^listening oidc (\S+)/);
      if (m) issuer = m[1];
      if (line.startsWith("ready")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`provider exited with ${code}`)));
  });
  return {
    issuer,
    stats: async () => (await fetch(issuer + "/__stats")).json(),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill();
        await once(child, "exit").catch(() => {});
      }
    },
  };
}

export const chromiumArgs = [
  "--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--no-first-run", "--disable-quic",
];

/** Launches Debian's Chromium. Never downloads a browser. */
export function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: chromiumArgs });
}

/**
 * The browsers the cross-browser tests run in: `WS_BROWSERS` (default
 * "chromium,firefox,webkit"), e.g. `WS_BROWSERS=webkit make test-e2e` for one alone.
 */
export const engines = (process.env.WS_BROWSERS || "chromium,firefox,webkit").split(",").map((s) => s.trim()).filter(Boolean);

/**
 * `test` for what runs in Chromium alone (time driven by Playwright's clock, the demo page
 * through Playwright's own API, the Vite build): skipped, saying so, when WS_BROWSERS leaves
 * Chromium out.
 */
export function chromiumTest(name, ...rest) {
  const fn = rest.pop();
  const options = rest[0] ?? {};
  return test(name, engines.includes("chromium") ? options : { ...options, skip: "Chromium is not in WS_BROWSERS" }, fn);
}

/**
 * Launches `engine`: Chromium through playwright-core, Debian's Firefox ESR through
 * puppeteer-core over WebDriver BiDi, or WebKitGTK's MiniBrowser through WebKitWebDriver
 * (classic WebDriver, harness-webkit.mjs), behind the part of Playwright's API the tests use
 * (`newContext`, `addInitScript`, `newPage`, `cookies`, `goto`, `url`, `evaluate`,
 * `waitForFunction`, `close`). `page.url()` is awaited: WebDriver has to ask the browser.
 */
export async function launchEngine(engine) {
  if (engine === "chromium") return launch();
  if (engine === "webkit") return (await import("./harness-webkit.mjs")).launchWebKit();
  if (engine !== "firefox") throw new Error(`unknown browser ${engine}`);
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
    headless: true,
  });
  return {
    async newContext() {
      const context = await browser.createBrowserContext();
      const scripts = [];
      return {
        async addInitScript(fn) { scripts.push(fn); },
        async newPage() {
          const page = await context.newPage();
          for (const fn of scripts) await page.evaluateOnNewDocument(fn);
          return firefoxPage(page);
        },
        cookies: () => context.cookies(),
        close: () => context.close(),
      };
    },
    close: () => browser.close(),
  };
}

/** A puppeteer page with Playwright's argument order. */
function firefoxPage(page) {
  return {
    on: (event, f) => page.on(event, f),
    goto: (url) => page.goto(url),
    url: () => page.url(),
    reload: () => page.reload(),
    close: () => page.close(),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    waitForFunction: (fn, arg, options = {}) =>
      page.waitForFunction(fn, { polling: 50, timeout: options.timeout ?? 30000 }, arg),
  };
}

/** Opens a tab on the fixture page and waits until the package is loaded. */
export async function openTab(context, server, pagePath = "/e2e.html") {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(server.main + pagePath);
  await page.waitForFunction(() => window.fixtureReady === true);
  return page;
}

/**
 * Records in every page of `context` each `fetch` as it leaves, with the page clock's time then
 * and whether it carried an `Authorization` header (`window.sentRequests`). The session looks
 * `fetch` up when it calls it, so this sees each request it starts, at once, even one the
 * network never carries (offline): a test can assert that none left without waiting to see
 * whether one arrives.
 */
export function recordRequests(context) {
  return context.addInitScript(() => {
    const real = window.fetch;
    window.sentRequests = [];
    window.fetch = function (input, init) {
      try {
        const request = input instanceof Request ? input : null;
        const url = new URL(request ? request.url : String(input), location.href);
        const auth = new Headers(init?.headers ?? request?.headers).has("authorization");
        window.sentRequests.push({ path: url.pathname, at: Date.now(), auth });
      } catch { /* fetch itself reports a bad URL */ }
      return real.call(window, input, init);
    };
  });
}

/** When (page clock) `page` sent requests to `path`, recorded by `recordRequests`. */
export const sentTo = (page, path) =>
  page.evaluate((path) => window.sentRequests.filter((r) => r.path === path).map((r) => r.at), path);

/**
 * Notes in `page` the refresh deadline of each token set its session holds from now on
 * (`window.dues`), for `refreshedOnTime`. Call it before the sign-in, or before the first
 * refresh can fall due.
 */
export const noteDeadlines = (page) => page.evaluate(() => {
  const note = () => window.dues.push(session.refreshAt);
  window.dues = [];
  if (session.isAuthenticated) note();
  session.on("login", note);
  session.on("refresh", note);
});

/**
 * One refresh per lifetime, on the pages' clock: the k-th token request sent from any of
 * `pages` left no earlier than the k-th token set was due (`noteDeadlines`). A second refresh
 * in one lifetime leaves before the deadline of the token set the first one brought.
 * Returns the send times.
 */
export async function refreshedOnTime(pages) {
  const sends = (await Promise.all(pages.map((p) => sentTo(p, "/auth/token")))).flat().sort((a, b) => a - b);
  const dues = [...new Set((await Promise.all(pages.map((p) => p.evaluate(() => window.dues)))).flat())].sort((a, b) => a - b);
  sends.forEach((at, k) => {
    if (!(at >= dues[k])) throw new Error(`refresh ${k + 1} left at ${at}, ${dues[k] - at} ms before its token set was due ` +
      `(sends ${sends}, deadlines ${dues})`);
  });
  return sends;
}

/** Polls `fn` in Node until it returns a truthy value (bounded). */
export async function until(fn, { timeout = 10000, interval = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** `promise`, or an error naming `what` if it has not settled after `ms` (Node's clock). */
export function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
