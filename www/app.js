// The wasm-session demo: plain JS module, no build step. It shows every feature, so it loads
// the wasm-session/oidc entry (with OpenID Connect).
import init, { Session } from "/pkg/oidc/wasm_session.js";

const $ = (id) => document.getElementById(id);
const here = new URLSearchParams(location.search);
// The OpenID Provider sends the browser back to "/" with only its own parameters: the demo's
// settings wait in sessionStorage meanwhile.
const callback = here.has("state") && (here.has("code") || here.has("error"));
// In the sign-in popup of loginWithPopup, the provider sends the window back here too (one
// redirectUri for both flows): the URL goes to the page that opened the popup, which checks
// it and closes this window; nothing else runs here. "Open another tab" opens tabs without an
// opener, so only the popup has one.
if (callback && window.opener) {
  window.opener.postMessage({ type: "wasm-session:callback", url: location.href }, location.origin);
  document.body.textContent = "Signing in…";
  await new Promise(() => {});
}
const params = callback ? new URLSearchParams(sessionStorage.getItem("demo:settings") || "mode=oidc") : here;
if (!callback) sessionStorage.setItem("demo:settings", here.toString());
const pick = (name, allowed) => (allowed.includes(params.get(name)) ? params.get(name) : allowed[0]);
const mode = pick("mode", ["token", "cookie", "oidc"]);
// `make demo` starts the OpenID Provider (www/oidc/provider.mjs) here.
const issuer = params.get("issuer") || "http://localhost:8090";
const storage = mode === "cookie" ? "memory" : pick("storage", ["memory", "session", "local"]);
const idle = Number(pick("idle", ["", "60", "300"])) * 1000 || undefined;
// DPoP: tokens bound to a key of this browser, a signed proof on every request (token and
// OpenID Connect modes; the demo server and the provider both accept it).
const dpop = mode === "cookie" ? "" : pick("dpop", ["", "on"]);

await init();
const common = {
  retryBaseMs: 500,
  retryMaxMs: 4000,
  idleTimeoutMs: idle,
  idleWarningMs: idle && idle / 4,
};
// Token mode: OAuth tokens in the page. Cookie mode: an HttpOnly session cookie the page
// never sees, and a CSRF token in memory.
// OpenID Connect: sign in at the provider (authorization code + PKCE), tokens in the page.
const configs = {
  cookie: { mode: "cookie", sessionUrl: "/session", ...common },
  token: { tokenUrl: "/auth/token", revokeUrl: "/auth/revoke", clientId: "demo-spa", storage, dpop: !!dpop, ...common },
  oidc: { issuer, clientId: "demo-spa", redirectUri: location.origin + "/", postLogoutRedirectUri: location.origin + "/", storage,
    dpop: !!dpop, ...common },
};
const session = new Session(configs[mode]);
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
session.on("idle_warning", (e) => { log("idle", `no activity: signing out at ${clock(e.logoutAt)}`); $("idle-warning").hidden = false; });
session.on("active", () => { log("active", "activity: the idle sign-out is off"); $("idle-warning").hidden = true; });

// ---- rendering --------------------------------------------------------------------------
const seconds = (ms) => (ms == null ? "–" : `${(Math.max(0, ms) / 1000).toFixed(1)} s`);
function render() {
  const signedIn = session.isAuthenticated;
  $("status").textContent = signedIn ? "signed in" : "signed out";
  $("status").className = "pill " + (signedIn ? "in" : "out");
  const who = session.claims || session.user || session.idClaims;
  $("who").textContent = who ? `${who.name || who.sub} (${who.sub})` : "–";
  const shown = mode === "oidc" ? session.idClaims : session.claims;
  $("claims").textContent = mode === "cookie"
    ? (signedIn ? `No token in the page. CSRF token (memory only): ${session.csrfToken}` : "–")
    : (shown ? JSON.stringify(shown, null, 2) : "–");
  if (!signedIn) $("idle-warning").hidden = true;
  for (const id of ["signout", "call-api", "call-counter", "refresh-now"]) $(id).disabled = !signedIn;
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
  const idleAt = session.idleAt;
  $("idle-in").textContent = idleAt == null ? "–" : seconds(idleAt - Date.now());
}
setInterval(tick, 200);

// ---- actions ----------------------------------------------------------------------------
$("signin").onsubmit = async (e) => {
  e.preventDefault();
  $("signin-error").textContent = "";
  const form = new FormData(e.target);
  try {
    if (mode === "oidc") return await session.loginWithRedirect({ appState: { at: Date.now() } });
    const url = mode === "cookie" ? "/session/login" : "/auth/login";
    await session.login(url, { username: form.get("username"), password: form.get("password") });
  } catch (err) {
    $("signin-error").textContent = err.code === "login_failed" ? "Wrong username or password." : err.message;
  }
};
// Called right in the click: the popup opens before anything is awaited, so blockers allow it.
const popupErrors = {
  popup_blocked: "The browser blocked the popup: allow popups for this page, or sign in with the other button.",
  popup_closed: "The popup was closed before the sign-in finished.",
  timeout: "The sign-in in the popup took too long (2 minutes).",
};
$("popup-button").onclick = () => {
  $("signin-error").textContent = "";
  session.loginWithPopup({ appState: { at: Date.now() } }).then(
    () => log("popup", "signed in in a popup; this page stayed as it was"),
    (err) => {
      $("signin-error").textContent = popupErrors[err.code] || `${err.code}: ${err.message.replace("wasm-session: ", "")}`;
      log("error", `${err.code}: ${err.error || err.message}`);
    },
  );
};
$("signout").onclick = () => session.logout();
$("new-tab").onclick = () => window.open(location.href, "_blank", "noopener");
$("refresh-now").onclick = () => session.refresh().catch(() => {}); // failures arrive as events
async function callApi(method, path) {
  try {
    const res = await session.fetch(path, { method });
    const body = await res.text();
    $("api-result").textContent = `HTTP ${res.status}\n${body}`;
    log("api", `${method} ${path} → ${res.status}`);
  } catch (err) {
    $("api-result").textContent = `${err.code || err.name}: ${err.message}`;
    log("api", `${method} ${path} failed: ${err.code || err.name}`);
  }
}
// With OpenID Connect, the API is the provider's userinfo endpoint (the demo API trusts
// only the local server's tokens).
$("call-api").onclick = () => callApi("GET", mode === "oidc" ? issuer + "/me" : "/api/me");
$("call-counter").onclick = () => callApi("POST", "/api/counter");
if (mode === "cookie") {
  $("claims-title").textContent = "Session";
  $("api-note").innerHTML = "Calls go through <code>session.fetch</code>: the cookie goes along, and the CSRF header on POST, PUT, PATCH and DELETE.";
}

if (mode === "oidc") {
  $("claims-title").textContent = "ID token claims";
  $("call-api").textContent = "GET userinfo";
  $("call-counter").hidden = true;
  $("hard-cases").hidden = true;
  $("credentials").hidden = true;
  $("signin-button").textContent = "Sign in with OpenID Connect";
  $("popup-button").hidden = false;
  $("signin-hint").textContent = `At the provider (${issuer}, started by make demo): any username and password.`;
}
if (callback && mode === "oidc") {
  try {
    await session.handleRedirectCallback();
  } catch (err) {
    $("signin-error").textContent = `${err.code}: ${err.message.replace("wasm-session: ", "")}`;
    log("error", `${err.code}: ${err.error || err.message}`);
  }
}

// Settings live in the URL: changing one reloads the page with it.
for (const [name, value] of [["mode", mode], ["storage", storage], ["idle", idle ? String(idle / 1000) : ""], ["dpop", dpop]]) {
  $(name).value = value;
  $(name).onchange = (e) => {
    params.set(name, e.target.value);
    location.search = params.toString();
  };
}
$("storage").disabled = mode === "cookie";
$("dpop").disabled = mode === "cookie";

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
