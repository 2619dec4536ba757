// WebKit for the end-to-end tests: WebKitGTK's MiniBrowser driven by WebKitWebDriver
// (Debian's webkit2gtk-driver) over classic WebDriver through selenium-webdriver, under an
// Xvfb of its own (MiniBrowser has no headless mode), behind the part of Playwright's API the
// tests use. A context is one WebDriver session (its own browser process and website data:
// WebKitWebDriver serves one session at a time, so each context gets its own driver); its
// windows are the tabs (they share BroadcastChannel, Web Locks, storage and cookies).
//
// What classic WebDriver cannot do, and Debian's WebKitGTK 2.50 has no WebDriver BiDi
// (a session asking for `webSocketUrl` is refused):
// - no script before the page's own: `addInitScript` scripts run right after each `goto` and
//   `reload`, before the test makes a session (the package looks up `fetch`,
//   BroadcastChannel and `navigator.locks` when a session is made or calls them, not at load);
// - no `clock` (Playwright's fake clock): tests that drive time skip WebKit, or only print;
// - no page events: no `pageerror` or `console`; a window that appears with a `click` is
//   reported as its page's `popup`, and `isClosed()` asks the browser (awaited);
// - one command at a time per session: `evaluate` starts the function in the page and polls
//   for its result in short slices, so that long-running calls in several tabs run at once.
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { Builder, By } from "selenium-webdriver";

const MINIBROWSER = process.env.MINIBROWSER || "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const DRIVER = process.env.WEBKITWEBDRIVER || "WebKitWebDriver";

const children = new Set();
// Nothing the harness started outlives the test process, whether it ends or is stopped (the
// test runner's timeout, ^C). MiniBrowser goes with its X server.
const killChildren = () => { for (const c of children) c.kill("SIGKILL"); };
process.on("exit", killChildren);
for (const [signal, n] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]]) {
  process.once(signal, () => { killChildren(); process.exit(128 + n); });
}

function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

async function stop(child) {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill();
    await once(child, "exit").catch(() => {});
  }
}

/** Starts Xvfb on a display number it picks itself (`-displayfd`); returns it and the child. */
async function startXvfb() {
  const child = track(spawn("Xvfb", ["-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], {
    stdio: ["ignore", "ignore", "pipe", "pipe"],
  }));
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  const display = await new Promise((resolve, reject) => {
    let out = "";
    child.stdio[3].on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(":" + out.trim());
    });
    child.on("exit", (code) => reject(new Error(`Xvfb exited with ${code}: ${err.slice(-500)}`)));
  });
  return { display, child };
}

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

/** Starts a WebKitWebDriver on a free port and waits until it answers. */
async function startDriver(display) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = track(spawn(DRIVER, [`--port=${port}`], {
      env: { ...process.env, DISPLAY: display }, stdio: ["ignore", "ignore", "inherit"],
    }));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10000;
    while (child.exitCode === null && Date.now() < deadline) {
      try {
        if ((await fetch(url + "/status")).ok) return { url, child };
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop(child);
    // The port may have been taken between picking and binding it: try another.
    if (attempt === 2) throw new Error(`${DRIVER} did not start`);
  }
}

const UNDEFINED = "\u0000undefined";
const NUMBER = "\u0000number:";

/** Undoes the page side's marks for values JSON has no word for (undefined, NaN, ±Infinity). */
function revive(v) {
  if (v === UNDEFINED) return undefined;
  if (typeof v === "string" && v.startsWith(NUMBER)) return Number(v.slice(NUMBER.length));
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === "object") {
    for (const k of Object.keys(v)) v[k] = revive(v[k]);
  }
  return v;
}

/**
 * The page half of `evaluate`: runs the test's function (its source pasted into the script, so
 * the driver compiles it and a page's CSP cannot refuse it), keeps its outcome in a slot, and
 * answers within `wait` ms: the outcome, or null while it runs.
 */
const START = (src) => `
  const [arg, hasArg, id, wait] = arguments;
  const slots = window.__wsEval || (window.__wsEval = {});
  const slot = slots[id] = {};
  const mark = (k, x) => x === undefined ? ${JSON.stringify(UNDEFINED)}
    : typeof x === "number" && !Number.isFinite(x) ? ${JSON.stringify(NUMBER)} + x : x;
  slot.promise = Promise.resolve()
    .then(() => (${src})(hasArg ? arg : undefined))
    .then((v) => { slot.result = ["ok", JSON.stringify([v], mark)]; },
          (e) => { slot.result = ["error", String(e && e.name || "Error"), String(e && e.message || e)]; });
  ${ANSWER}`;
const ANSWER = `
  return Promise.race([slot.promise, new Promise((r) => setTimeout(r, wait))]).then(() => {
    if (!slot.result) return null;
    delete slots[id];
    return slot.result;
  });`;
const POLL = `
  const [id, wait] = arguments;
  const slots = window.__wsEval;
  const slot = slots && slots[id];
  if (!slot) return ["gone"];
  ${ANSWER}`;

let evalIds = 0;

/** Launches the webkit engine: an Xvfb now, a driver and a MiniBrowser per context. */
export async function launchWebKit() {
  const xvfb = await startXvfb();
  const contexts = new Set();
  return {
    async newContext() {
      const context = await newContext(xvfb.display);
      contexts.add(context);
      const close = context.close;
      context.close = async () => { contexts.delete(context); await close(); };
      return context;
    },
    async close() {
      for (const c of [...contexts]) await c.close();
      await stop(xvfb.child);
    },
  };
}

async function newContext(display) {
  const driverProcess = await startDriver(display);
  const driver = await new Builder().usingServer(driverProcess.url).withCapabilities({
    browserName: "MiniBrowser",
    "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] },
  }).build();
  // The session's first window stays open and blank: closing every tab must not end the
  // session (WebDriver ends it with its last window).
  const first = await driver.getWindowHandle();
  let current = first;
  const pages = new Set();
  const initScripts = [];

  // One WebDriver command at a time, each in the window it is meant for.
  let queue = Promise.resolve();
  const inSession = (command) => {
    const run = queue.then(command);
    queue = run.catch(() => {});
    return run;
  };
  const inWindow = (handle, command) => inSession(async () => {
    if (current !== handle) {
      await driver.switchTo().window(handle);
      current = handle;
    }
    return command();
  });

  async function evaluate(handle, fn, arg) {
    const id = ++evalIds;
    const src = typeof fn === "function" ? fn.toString() : `() => (${fn})`;
    let answer = await inWindow(handle, () => driver.executeScript(START(src), arg ?? null, arg !== undefined, id, 50));
    // A function still running is asked again, less and less often (up to every 250 ms):
    // each question is a round trip through the browser's processes, which on a loaded
    // machine compete with the pages they drive.
    for (let pause = 10; answer === null; pause = Math.min(pause * 2, 200)) {
      await new Promise((r) => setTimeout(r, pause));
      answer = await inWindow(handle, () => driver.executeScript(POLL, id, 50));
    }
    if (answer[0] === "ok") return revive(JSON.parse(answer[1]))[0];
    if (answer[0] === "gone") throw new Error("evaluate: the page navigated away before the function returned");
    const e = new Error(`evaluate: ${answer[1]}: ${answer[2]}`);
    e.name = answer[1];
    throw e;
  }

  const handles = () => inSession(() => driver.getAllWindowHandles());

  /** A tab the test opened (`newPage`), or a popup a page opened (`opened`). */
  function pageFor(handle, { opened = false } = {}) {
    const afterLoad = async () => { for (const s of initScripts) await evaluate(handle, s); };
    const listeners = [];
    let gone = false;
    const page = {
      on(event, f) { if (event === "popup") listeners.push({ f }); },
      once(event, f) { if (event === "popup") listeners.push({ f, once: true }); },
      async goto(url) { await inWindow(handle, () => driver.get(url)); await afterLoad(); },
      async reload() { await inWindow(handle, () => driver.navigate().refresh()); await afterLoad(); },
      url: () => inWindow(handle, () => driver.getCurrentUrl()),
      /**
       * A real click (WebDriver's element click sends input events: a user activation, so the
       * popup blocker lets a window it opens through). A window that appears with it is
       * reported as a "popup" of this page; classic WebDriver has no event for one.
       */
      async click(selector) {
        const before = new Set(await handles());
        await inWindow(handle, async () => (await driver.findElement(By.css(selector))).click());
        // window.open ran in the click handler: its window is there, or soon after.
        for (let i = 0; i < 10; i++) {
          const fresh = (await handles()).filter((h) => !before.has(h));
          if (fresh.length) {
            for (const h of fresh) {
              const popup = pageFor(h, { opened: true });
              for (const l of [...listeners]) {
                if (l.once) listeners.splice(listeners.indexOf(l), 1);
                l.f(popup);
              }
            }
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      /** Whether the window is gone (asked of the browser: awaited, unlike Playwright's). */
      async isClosed() { return gone || !(await handles()).includes(handle); },
      evaluate: (fn, arg) => evaluate(handle, fn, arg),
      async waitForFunction(fn, arg, { timeout = 30000 } = {}) {
        const deadline = Date.now() + timeout;
        for (;;) {
          const value = await evaluate(handle, fn, arg);
          if (value) return { jsonValue: async () => value };
          if (Date.now() > deadline) throw new Error(`waitForFunction: timed out after ${timeout} ms: ${fn}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      async close() {
        if (gone) return;
        gone = true;
        pages.delete(page);
        await inWindow(handle, async () => {
          await driver.close();
          await driver.switchTo().window(first);
          current = first;
        });
      },
      handle,
    };
    if (!opened) pages.add(page);
    return page;
  }

  async function newPage() {
    const handle = await inWindow(first, async () => {
      await driver.switchTo().newWindow("window");
      current = await driver.getWindowHandle();
      return current;
    });
    return pageFor(handle);
  }

  let closed = false;
  return {
    async addInitScript(fn) { initScripts.push(fn); },
    newPage,
    /** The session's windows: its tabs, their popups and the blank first window. */
    windows: handles,
    /** The cookies of the first open tab's site (classic WebDriver shows the current document's). */
    async cookies() {
      const [page] = pages;
      if (!page) return [];
      return inWindow(page.handle, () => driver.manage().getCookies());
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      await driver.quit().catch(() => {});
      await stop(driverProcess.child);
    },
  };
}
