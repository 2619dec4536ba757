// The wasm-session demo: plain JS module, no build step.
import init, { Session } from "/pkg/wasm_session.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const storage = ["memory", "session", "local"].includes(params.get("storage")) ? params.get("storage") : "memory";

await init();
const session = new Session({
  tokenUrl: "/auth/token",
  revokeUrl: "/auth/revoke",
  clientId: "demo-spa",
  storage,
  retryBaseMs: 500,
  retryMaxMs: 4000,
});
window.session = session; // for poking around in the console

// ---- timeline -------------------------------------------------------------------------
const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false }) + "." + String(t % 1000).padStart(3, "0");
function log(kind, detail) {
  const li = document.createElement("li");
  li.innerHTML = `<time></time><span class="kind ${kind}"></span><span></span>`;
  li.children[0].textContent = clock(Date.now());
  li.children[1].textContent = kind;
  li.children[2].textContent = detail;
  $("timeline").prepend(li);
}
$("clear-log").onclick = () => { $("timeline").textContent = ""; };

session.on("login", (e) => { log("login", `signed in; token valid until ${clock(e.expiresAt)}`); render(); });
session.on("refresh", (e) => { log("refresh", `new token, valid until ${clock(e.expiresAt)}`); render(); });
session.on("logout", (e) => { log("logout", `reason: ${e.reason}`); render(); });
session.on("expired", () => { log("expired", "the access token expired before a refresh succeeded"); render(); });
session.on("error", (e) => log("error", `${e.error.code}: ${e.error.message.replace("wasm-session: ", "")}`));

// ---- rendering --------------------------------------------------------------------------
const seconds = (ms) => (ms == null ? "–" : `${(Math.max(0, ms) / 1000).toFixed(1)} s`);
function render() {
  const signedIn = session.isAuthenticated;
  $("status").textContent = signedIn ? "signed in" : "signed out";
  $("status").className = "pill " + (signedIn ? "in" : "out");
  const claims = session.claims;
  $("who").textContent = claims ? `${claims.name || claims.sub} (${claims.sub})` : "–";
  $("claims").textContent = claims ? JSON.stringify(claims, null, 2) : "–";
  for (const id of ["signout", "call-api", "refresh-now"]) $(id).disabled = !signedIn;
  $("signin").hidden = signedIn;
  $("signed-in-note").hidden = !signedIn;
  tick();
}
function tick() {
  const expiresIn = session.expiresIn;
  $("expires-in").textContent = seconds(expiresIn);
  const lifetime = session.claims ? (session.claims.exp - session.claims.iat) * 1000 : 0;
  $("life").value = expiresIn && lifetime ? Math.min(1, expiresIn / lifetime) : 0;
  const refreshAt = session.refreshAt;
  $("refresh-in").textContent = refreshAt == null ? "–" : seconds(refreshAt - Date.now());
}
setInterval(tick, 200);

// ---- actions ----------------------------------------------------------------------------
$("signin").onsubmit = async (e) => {
  e.preventDefault();
  $("signin-error").textContent = "";
  const form = new FormData(e.target);
  try {
    await session.login("/auth/login", { username: form.get("username"), password: form.get("password") });
  } catch (err) {
    $("signin-error").textContent = err.code === "login_failed" ? "Wrong username or password." : err.message;
  }
};
$("signout").onclick = () => session.logout();
$("new-tab").onclick = () => window.open(location.href, "_blank");
$("refresh-now").onclick = () => session.refresh().catch(() => {}); // failures arrive as events
$("call-api").onclick = async () => {
  try {
    const res = await session.fetch("/api/me");
    const body = await res.text();
    $("api-result").textContent = `HTTP ${res.status}\n${body}`;
    log("api", `GET /api/me → ${res.status}`);
  } catch (err) {
    $("api-result").textContent = `${err.code || err.name}: ${err.message}`;
    log("api", `GET /api/me failed: ${err.code || err.name}`);
  }
};

$("storage").value = storage;
$("storage").onchange = (e) => {
  params.set("storage", e.target.value);
  location.search = params.toString();
};

async function fault(spec, note) {
  await fetch("/__faults", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(spec) });
  $("fault-note").textContent = note;
  log("fault", note);
}
$("fault-503").onclick = () => fault({ count: 3, status: 503 }, "the next 3 refresh calls answer 503");
$("fault-hang").onclick = () => fault({ count: 1, hang_ms: 15000 }, "the next refresh call hangs 15 s (request timeout is 10 s)");
$("fault-reject").onclick = async () => {
  await fault({ count: 1, status: 400 }, "the next refresh call answers invalid_grant");
  session.refresh().catch(() => {});
};

await session.ready;
render();
