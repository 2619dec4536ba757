// The bad-input table (also in the README): every input gets a clear error or is ignored
// safely; none crashes the module (the session still works afterwards).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchEngine, engines, openTab } from "./harness.mjs";

for (const engine of engines) describe(engine, () => {
  let browser, server, context, page;
  before(async () => {
    browser = await launchEngine(engine);
    server = await startServer();
    context = await browser.newContext();
    // wasm-session/oidc: the main entry's validation is the same code, without the OpenID
    // Connect options (refused, see "the main entry" below).
    page = await openTab(context, server, "/e2e-oidc.html");
  });
  after(async () => { await context?.close(); await browser?.close(); await server?.stop(); });

  let tried = 0;
  after(() => console.log(`bad inputs tried: ${tried}`));

  /** Outcome of `new Session(config)`: "ok" or "<code>: <message>". */
  const CONFIGS = [
    ["not an object", "undefined", "invalid_config", "(config)"],
    ["missing tokenUrl", "{}", "invalid_config", "tokenUrl"],
    ["tokenUrl wrong type", "{ tokenUrl: 42 }", "invalid_config", "tokenUrl"],
    ["unknown key (typo)", "{ tokenUrl: '/t', tokenUrI: '/t' }", "invalid_config", "tokenUrI"],
    ["relative URL", "{ tokenUrl: '/auth/token' }", "ok"],
    ["absolute https URL", "{ tokenUrl: 'https://auth.example.com/token' }", "ok"],
    ["http to a non-local host", "{ tokenUrl: 'http://auth.example.com/token' }", "invalid_config", "tokenUrl"],
    ["javascript: URL", "{ tokenUrl: 'javascript:alert(1)' }", "invalid_config", "tokenUrl"],
    ["URL with credentials", "{ tokenUrl: 'https://u:p@auth.example.com/t' }", "invalid_config", "tokenUrl"],
    ["http revokeUrl to a non-local host", "{ tokenUrl: '/t', revokeUrl: 'http://auth.example.com/r' }", "invalid_config", "revokeUrl"],
    ["empty namespace", "{ tokenUrl: '/t', namespace: '' }", "invalid_config", "namespace"],
    ["namespace with spaces", "{ tokenUrl: '/t', namespace: 'my app' }", "invalid_config", "namespace"],
    ["unknown storage", "{ tokenUrl: '/t', storage: 'cookies' }", "invalid_config", "storage"],
    ["allowedOrigins not an array", "{ tokenUrl: '/t', allowedOrigins: 'https://a.example' }", "invalid_config", "allowedOrigins"],
    ["allowed origin with a path", "{ tokenUrl: '/t', allowedOrigins: ['https://api.example.com/v1'] }", "invalid_config", "allowedOrigins"],
    ["allowed origin over http", "{ tokenUrl: '/t', allowedOrigins: ['http://api.example.com'] }", "invalid_config", "allowedOrigins"],
    ["number as string", "{ tokenUrl: '/t', refreshLeadMs: '60000' }", "invalid_config", "refreshLeadMs"],
    ["negative timeout", "{ tokenUrl: '/t', requestTimeoutMs: -1 }", "invalid_config", "requestTimeoutMs"],
    ["NaN", "{ tokenUrl: '/t', retryBaseMs: NaN }", "invalid_config", "retryBaseMs"],
    ["crossTab as string", "{ tokenUrl: '/t', crossTab: 'yes' }", "invalid_config", "crossTab"],
    ["unknown mode", "{ tokenUrl: '/t', mode: 'bearer' }", "invalid_config", "mode"],
    ["cookie mode without sessionUrl", "{ mode: 'cookie' }", "invalid_config", "sessionUrl"],
    ["cookie mode with tokenUrl", "{ mode: 'cookie', sessionUrl: '/s', tokenUrl: '/t' }", "invalid_config", "tokenUrl"],
    ["cookie mode with storage", "{ mode: 'cookie', sessionUrl: '/s', storage: 'local' }", "invalid_config", "storage"],
    ["cookie mode, http sessionUrl to a non-local host", "{ mode: 'cookie', sessionUrl: 'http://app.example/s' }", "invalid_config", "sessionUrl"],
    ["sessionUrl in token mode", "{ tokenUrl: '/t', sessionUrl: '/s' }", "invalid_config", "sessionUrl"],
    ["csrfHeader with a colon", "{ mode: 'cookie', sessionUrl: '/s', csrfHeader: 'X-CSRF: 1' }", "invalid_config", "csrfHeader"],
    ["cookie mode", "{ mode: 'cookie', sessionUrl: '/session' }", "ok"],
    ["idleTimeoutMs too short", "{ tokenUrl: '/t', idleTimeoutMs: 500 }", "invalid_config", "idleTimeoutMs"],
    ["idleWarningMs without idleTimeoutMs", "{ tokenUrl: '/t', idleWarningMs: 5000 }", "invalid_config", "idleWarningMs"],
    ["idleWarningMs not shorter", "{ tokenUrl: '/t', idleTimeoutMs: 60000, idleWarningMs: 60000 }", "invalid_config", "idleWarningMs"],
    ["maxSessionMs as string", "{ tokenUrl: '/t', maxSessionMs: '8h' }", "invalid_config", "maxSessionMs"],
    ["idle and absolute timeouts", "{ tokenUrl: '/t', idleTimeoutMs: 900000, idleWarningMs: 60000, maxSessionMs: 28800000 }", "ok"],
    ["issuer without clientId", "{ issuer: 'https://id.example.com' }", "invalid_config", "clientId"],
    ["issuer not a string", "{ issuer: ['https://id.example.com'], clientId: 'spa' }", "invalid_config", "issuer"],
    ["issuer over http to a non-local host", "{ issuer: 'http://id.example.com', clientId: 'spa' }", "invalid_config", "issuer"],
    ["issuer with a query", "{ issuer: 'https://id.example.com/?tenant=a', clientId: 'spa' }", "invalid_config", "issuer"],
    ["issuer relative", "{ issuer: '/oidc', clientId: 'spa' }", "invalid_config", "issuer"],
    ["authorizationUrl without tokenUrl", "{ authorizationUrl: 'https://id.example.com/auth', clientId: 'spa' }", "invalid_config", "tokenUrl"],
    ["redirectUri without issuer", "{ tokenUrl: '/t', redirectUri: '/cb' }", "invalid_config", "redirectUri"],
    ["redirectUri javascript:", "{ issuer: 'https://id.example.com', clientId: 'spa', redirectUri: 'javascript:alert(1)' }", "invalid_config", "redirectUri"],
    ["scope with a quote", "{ issuer: 'https://id.example.com', clientId: 'spa', scope: 'openid \"x' }", "invalid_config", "scope"],
    ["cookie mode with an issuer", "{ mode: 'cookie', sessionUrl: '/s', issuer: 'https://id.example.com', clientId: 'spa' }", "invalid_config", "issuer"],
    ["OpenID Connect with discovery", "{ issuer: 'https://id.example.com', clientId: 'spa' }", "ok"],
    ["OpenID Connect with endpoints", "{ authorizationUrl: 'https://id.example.com/auth', tokenUrl: 'https://id.example.com/token', clientId: 'spa' }", "ok"],
  ];

  test("config: wrong types, unknown keys, bad URLs and ranges give invalid_config naming the field", async () => {
    for (const [name, config, code, field] of CONFIGS) {
      tried++;
      const r = await page.evaluate((src) => {
        try { const s = new lib.Session(eval(`(${src})`)); s.dispose(); return { code: "ok" }; }
        catch (e) { return { code: e.code, message: e.message, isError: e instanceof Error }; }
      }, config);
      assert.equal(r.code, code, `${name}: ${JSON.stringify(r)}`);
      if (field) {
        assert.ok(r.isError && r.message.includes(field), `${name}: message "${r.message}" should name ${field}`);
      }
    }
  });

  const b64 = (s) => Buffer.from(s).toString("base64url");
  const TOKEN_RESPONSES = [
    ["missing access_token", { expires_in: 60 }, "invalid_token_response", "access_token"],
    ["access_token not a string", { access_token: 7, expires_in: 60 }, "invalid_token_response", "access_token"],
    ["expires_in negative", { access_token: "a", expires_in: -5 }, "invalid_token_response", "expires_in"],
    ["expires_in zero", { access_token: "a", expires_in: 0 }, "invalid_token_response", "expires_in"],
    ["expires_in huge", { access_token: "a", expires_in: 1e12 }, "invalid_token_response", "expires_in"],
    ["expires_in not numeric", { access_token: "a", expires_in: "soon" }, "invalid_token_response", "expires_in"],
    ["expires_in numeric string", { access_token: "a", expires_in: "3600" }, "ok"],
    ["wrong token_type", { access_token: "a", expires_in: 60, token_type: "MAC" }, "invalid_token_response", "token_type"],
    ["opaque token, no expires_in", { access_token: "opaque" }, "invalid_token_response", "expires_in"],
    ["JWT with bad base64, expires_in given", { access_token: "eyJ.!!!.sig", expires_in: 60 }, "ok"],
    ["JWT with non-JSON claims, no expires_in", { access_token: `eyJh.${b64("not json")}.sig` }, "invalid_token_response", "expires_in"],
    // Valid JSON with an exp, but one byte is not UTF-8: the claims are unreadable.
    ["JWT claims not UTF-8, no expires_in", { access_token: `eyJh.${Buffer.concat([Buffer.from('{"exp":9999999999,"n":"'), Buffer.from([0xff]), Buffer.from('"}')]).toString("base64url")}.sig` }, "invalid_token_response", "expires_in"],
    ["1 MB token", { access_token: "x".repeat(1 << 20), expires_in: 60 }, "invalid_token_response", "access_token"],
    ["token with a newline", { access_token: "a\nb", expires_in: 60 }, "invalid_token_response", "access_token"],
    ["not an object", "<html>error</html>", "invalid_argument", "setTokens"],
  ];

  test("token responses: each bad one is refused naming the field, and the session is unchanged", async () => {
    for (const [name, response, code, field] of TOKEN_RESPONSES) {
      tried++;
      const r = await page.evaluate((response) => {
        const s = new lib.Session({ tokenUrl: "/auth/token", crossTab: false });
        s.setTokens({ access_token: "good", expires_in: 60 });
        let out;
        try { s.setTokens(response); out = { code: "ok", token: s.accessToken }; }
        catch (e) { out = { code: e.code, message: e.message, token: s.accessToken }; }
        s.dispose();
        return out;
      }, response);
      assert.equal(r.code, code, `${name}: ${JSON.stringify(r).slice(0, 200)}`);
      if (field) {
        assert.ok(r.message.includes(field), `${name}: "${r.message}" should name ${field}`);
        assert.equal(r.token, "good", `${name}: the session changed`);
      }
    }
  });

  test("claims: a JWT's payload is decoded; opaque, malformed and non-UTF-8 payloads give null", async () => {
    const jwt = (payload) => `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(payload).toString("base64url")}.sig`;
    const cases = [
      [jwt('{"sub":"ann","exp":9999999999,"name":"Zo\u00eb \u2713"}'), { sub: "ann", exp: 9999999999, name: "Zoë ✓" }],
      [jwt(Buffer.from('{"sub":"ann","name":"Zoë ✓"}')), { sub: "ann", name: "Zoë ✓" }],
      ["opaque", null],
      [jwt("[1,2]"), null], // claims are a JSON object (RFC 7519 §7.2)
      [jwt("not json"), null],
      [jwt(Buffer.concat([Buffer.from('{"n":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])), null],
    ];
    for (const [token, claims] of cases) {
      tried++;
      const got = await page.evaluate((token) => {
        const s = new lib.Session({ tokenUrl: "/auth/token", crossTab: false });
        s.setTokens({ access_token: token, id_token: token, expires_in: 60 });
        const out = [s.claims, s.idClaims];
        s.dispose();
        return out;
      }, token);
      assert.deepEqual(got[0] && { ...got[0] }, claims, token);
      assert.deepEqual(got[1] && { ...got[1] }, claims, `id_token ${token}`);
    }
  });

  const REPLIES = [
    ["502 with an HTML page", "status=502&body=html", "login_failed"],
    ["200 with an empty body", "status=200&body=empty", "invalid_token_response"],
    ["200 with an HTML page", "status=200&body=html", "invalid_token_response"],
    ["200 with truncated JSON", "status=200&body=garbage", "invalid_token_response"],
    ["200 with a JSON array", "status=200&body=json", "invalid_token_response"],
    ["200 with a 1 MB body", "status=200&body=huge", "invalid_token_response"],
  ];

  test("server replies: malformed login and refresh answers are clear errors, never crashes", async () => {
    for (const [name, query, code] of REPLIES) {
      tried++;
      const r = await page.evaluate(async (query) => {
        const s = new lib.Session({ tokenUrl: "/auth/token", crossTab: false });
        try { await s.login("/__reply?" + query, {}); return { code: "ok" }; }
        catch (e) { return { code: e.code, message: e.message, auth: s.isAuthenticated }; }
        finally { s.dispose(); }
      }, query);
      assert.equal(r.code, code, `${name}: ${JSON.stringify(r)}`);
      assert.equal(r.auth, false);
    }
    // The same answers from the refresh endpoint: retried as refresh_failed, the session lives.
    for (const fault of [{ count: 1, status: 503 }, { count: 1, status: 200 }]) {
      tried++;
      await server.faults(fault);
      const r = await page.evaluate(async () => {
        const s = new lib.Session({ tokenUrl: "/auth/token", crossTab: false });
        await s.login("/auth/login", { username: "demo", password: "demo" });
        const errors = [];
        s.on("error", (e) => errors.push(e.error.code));
        const code = await s.refresh().then(() => "ok", (e) => e.code);
        const out = { code, errors, auth: s.isAuthenticated };
        s.dispose();
        return out;
      });
      assert.deepEqual(r, { code: "refresh_failed", errors: ["refresh_failed"], auth: true }, JSON.stringify(fault));
    }
  });

  const SESSIONS = [
    ["no csrfToken", { expiresAt: "+" }, "csrfToken"],
    ["csrfToken not a string", { csrfToken: 5, expiresAt: "+" }, "csrfToken"],
    ["csrfToken with a space", { csrfToken: "a b", expiresAt: "+" }, "csrfToken"],
    ["no expiresAt", { csrfToken: "c" }, "expiresAt"],
    ["expiresAt in the past", { csrfToken: "c", expiresAt: 1000 }, "expiresAt"],
    ["expiresAt as a date string", { csrfToken: "c", expiresAt: "2030-01-01" }, "expiresAt"],
    ["loginAt in the future", { csrfToken: "c", expiresAt: "+", loginAt: "++" }, "loginAt"],
    ["a good session", { csrfToken: "c", expiresAt: "+", loginAt: "-", user: { sub: "demo" } }, null],
  ];

  test("cookie mode: malformed session bodies are refused naming the field; nothing is kept", async () => {
    for (const [name, body, field] of SESSIONS) {
      tried++;
      const r = await page.evaluate(async (body) => {
        const now = Date.now();
        const times = { "+": now + 600_000, "++": now + 300_000, "-": now - 1000 };
        const json = JSON.stringify(body, (_, v) => (typeof v === "string" && v in times ? times[v] : v));
        const s = new lib.Session({ mode: "cookie", sessionUrl: "/session", crossTab: false });
        try { await s.login(`/__reply?body=text&text=${encodeURIComponent(json)}`, {}); return { code: "ok", auth: s.isAuthenticated }; }
        catch (e) { return { code: e.code, message: e.message, auth: s.isAuthenticated }; }
        finally { s.dispose(); }
      }, body);
      if (field) {
        assert.equal(r.code, "invalid_token_response", `${name}: ${JSON.stringify(r)}`);
        assert.ok(r.message.includes(field), `${name}: "${r.message}" should name ${field}`);
        assert.equal(r.auth, false);
      } else {
        assert.deepEqual(r, { code: "ok", auth: true }, name);
      }
    }
  });

  // OpenID Connect: options, discovery documents, callbacks, stored logins and ID tokens.
  // Each call fails before any navigation; the session is signed out afterwards.
  const doc = (fields) => Buffer.from(JSON.stringify({
    issuer: "$ISSUER", authorization_endpoint: "$ISSUER/auth", token_endpoint: "$ISSUER/token", ...fields,
  })).toString("base64url");
  const LOGINS = [
    ["options not an object", "'yes'", null, "invalid_argument", "loginWithRedirect(options)"],
    ["unknown option", "{ returnTo: '/' }", null, "invalid_argument", "loginWithRedirect(options)"],
    ["extraParams replacing state", "{ extraParams: { state: 'x' } }", null, "invalid_argument", "extraParams"],
    ["extraParams with a number", "{ extraParams: { max_age: 60 } }", null, "invalid_argument", "extraParams"],
    ["empty prompt", "{ prompt: '' }", null, "invalid_argument", "prompt"],
    ["appState not JSON data", "{ appState: { n: 1n } }", null, "invalid_argument", "appState"],
    ["no issuer configured", "{}", "none", "invalid_config", "issuer"],
    ["discovery: no document (404)", "{}", "/nowhere", "invalid_discovery", "(document)"],
    ["discovery: another issuer", "{}", doc({ issuer: "https://id.example.com" }), "invalid_discovery", "issuer"],
    ["discovery: no token_endpoint", "{}", doc({ token_endpoint: undefined }), "invalid_discovery", "token_endpoint"],
    ["discovery: no S256", "{}", doc({ code_challenge_methods_supported: ["plain"] }), "invalid_discovery", "code_challenge_methods_supported"],
    ["discovery: http endpoint off this machine", "{}", doc({ authorization_endpoint: "http://id.example.com/auth" }), "invalid_discovery", "authorization_endpoint"],
    ["discovery: endpoint not a string", "{}", doc({ revocation_endpoint: 5 }), "invalid_discovery", "revocation_endpoint"],
  ];

  test("loginWithRedirect: bad options and bad discovery documents are coded errors naming the field", async () => {
    for (const [name, options, issuerDoc, code, field] of LOGINS) {
      tried++;
      const r = await page.evaluate(async ({ options, issuerDoc }) => {
        const config = issuerDoc === "none" ? { tokenUrl: "/auth/token" }
          : { issuer: location.origin + (issuerDoc?.startsWith("/") ? issuerDoc : "/__issuers/" + (issuerDoc ?? "x")), clientId: "spa" };
        const s = new lib.Session({ ...config, crossTab: false });
        try { await s.loginWithRedirect(eval(`(${options})`)); return { code: "ok" }; }
        catch (e) { return { code: e.code, message: e.message, auth: s.isAuthenticated, at: location.pathname }; }
        finally { s.dispose(); }
      }, { options, issuerDoc });
      assert.equal(r.code, code, `${name}: ${JSON.stringify(r)}`);
      assert.ok(r.message.includes(field), `${name}: "${r.message}" should name ${field}`);
      assert.equal(r.at, "/e2e-oidc.html", `${name}: the page navigated`);
    }
  });

  const jwt = (claims) => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
  const idClaims = (over) => ({ iss: "ISSUER", aud: "spa", nonce: "n".repeat(43), exp: "+", iat: "-", ...over });
  const CALLBACKS = [
    ["url not a string", { url: 42 }, "invalid_argument", "handleRedirectCallback(url)"],
    ["not a callback", { url: "/e2e-oidc.html?page=2" }, "invalid_argument", "neither code nor error"],
    ["no sign-in in progress", { url: "/e2e-oidc.html?code=c&state=" + "s".repeat(43), pending: null }, "invalid_state", "no sign-in"],
    ["wrong state", { url: "/e2e-oidc.html?code=c&state=" + "t".repeat(43) }, "invalid_state", "state"],
    ["stored login not JSON", { pending: "{oops" }, "invalid_state", "not JSON"],
    ["stored verifier too short", { pending: { verifier: "v".repeat(20) } }, "invalid_state", "verifier"],
    ["stored login of another version", { pending: { v: 9 } }, "invalid_state", "version"],
    ["another provider's iss", { url: "/e2e-oidc.html?code=c&iss=https%3A%2F%2Fevil.example&state=" + "s".repeat(43) }, "invalid_state", "iss"],
    ["token endpoint refuses the code", { reply: "status=400&body=text&text=" + encodeURIComponent('{"error":"invalid_grant"}') }, "login_failed", "invalid_grant"],
    ["no id_token with scope openid", { token: {} }, "invalid_id_token", "id_token"],
    ["id_token not a JWT", { token: { id_token: "opaque" } }, "invalid_id_token", "id_token"],
    ["id_token for another client", { token: { id_token: jwt(idClaims({ aud: "other" })) } }, "invalid_id_token", "aud"],
    ["id_token from another issuer", { token: { id_token: jwt(idClaims({ iss: "https://evil.example" })) } }, "invalid_id_token", "iss"],
    ["id_token with another nonce", { token: { id_token: jwt(idClaims({ nonce: "m".repeat(43) })) } }, "invalid_id_token", "nonce"],
    ["id_token expired", { token: { id_token: jwt(idClaims({ exp: "--" })) } }, "invalid_id_token", "exp"],
    ["id_token issued in the future", { token: { id_token: jwt(idClaims({ iat: "++" })) } }, "invalid_id_token", "iat"],
    ["a good callback", { token: { id_token: jwt(idClaims({})) } }, "ok"],
  ];

  test("handleRedirectCallback: bad callbacks, stored logins and ID tokens are coded errors; nothing is signed in", async () => {
    for (const [name, c, code, field] of CALLBACKS) {
      tried++;
      const r = await page.evaluate(async (c) => {
        const now = Math.floor(Date.now() / 1000);
        const times = { "+": now + 600, "-": now - 10, "--": now - 3600, "++": now + 3600 };
        const issuer = "http://id.localhost";
        const token = { access_token: "a", token_type: "Bearer", expires_in: 60, ...c.token };
        const text = JSON.stringify(token, (_, v) => (typeof v === "string" && v in times ? times[v] : v === "ISSUER" ? issuer : v))
          .replace(/"(eyJ[^."]*)\.([^."]*)\.sig"/g, (_, h, p) => {
            // Claims inside the JWT get the same substitutions.
            const claims = JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/")));
            for (const k of Object.keys(claims)) claims[k] = claims[k] in times ? times[claims[k]] : claims[k] === "ISSUER" ? issuer : claims[k];
            return `"${h}.${btoa(JSON.stringify(claims)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}.sig"`;
          });
        const tokenUrl = "/__reply?" + (c.reply ?? "body=text&text=" + encodeURIComponent(text));
        const s = new lib.Session({ issuer, authorizationUrl: issuer + "/auth", tokenUrl, clientId: "spa", crossTab: false });
        const pending = { v: 1, state: "s".repeat(43), nonce: "n".repeat(43), verifier: "v".repeat(43), redirect_uri: location.href };
        const stored = c.pending === null ? null : typeof c.pending === "string" ? c.pending : JSON.stringify({ ...pending, ...c.pending });
        if (stored === null) sessionStorage.removeItem("wasm-session:default:oidc");
        else sessionStorage.setItem("wasm-session:default:oidc", stored);
        const url = c.url ?? "/e2e-oidc.html?code=c&state=" + "s".repeat(43);
        try { await s.handleRedirectCallback(url); return { code: "ok", auth: s.isAuthenticated }; }
        catch (e) { return { code: e.code, message: e.message, auth: s.isAuthenticated }; }
        finally { s.dispose(); sessionStorage.removeItem("wasm-session:default:oidc"); }
      }, c);
      assert.equal(r.code, code, `${name}: ${JSON.stringify(r)}`);
      if (field) {
        assert.ok(r.message.includes(field), `${name}: "${r.message}" should name ${field}`);
        assert.equal(r.auth, false, `${name}: signed in anyway`);
      } else {
        assert.equal(r.auth, true, name);
      }
    }
  });

  const record = (fields, tokens) => JSON.stringify({
    v: 2, ns: "default", stamp: { seq: 1, origin: "t" },
    tokens: { access_token: "a", issued_at: 1, expires_at: 9e12, ...tokens }, ...fields,
  });
  const STORED = [
    ["not JSON", "{garbage"],
    ["JSON of another shape", "[1,2,3]"],
    ["empty object", "{}"],
    ["another namespace's data", record({ ns: "other" })],
    ["token with a space", record({}, { access_token: "a b" })],
    ["times as strings", record({}, { issued_at: "1", expires_at: "9e12" })],
    ["no stamp", record({ stamp: undefined })],
  ];

  test("storage contents: garbage, other namespaces' data and invalid tokens are discarded with an error event", async () => {
    for (const [name, stored] of STORED) {
      tried++;
      const r = await page.evaluate(async (stored) => {
        localStorage.clear();
        localStorage.setItem("wasm-session:default", stored);
        localStorage.setItem("wasm-session:other", stored);
        const s = new lib.Session({ tokenUrl: "/auth/token", storage: "local", crossTab: false });
        const errors = [];
        s.on("error", (e) => errors.push(e.error.code));
        await s.ready; // the restore is over: what it found is known
        const out = { auth: s.isAuthenticated, errors, kept: localStorage.getItem("wasm-session:default"),
          other: localStorage.getItem("wasm-session:other") === stored };
        s.dispose();
        localStorage.clear();
        return out;
      }, stored);
      assert.deepEqual(r, { auth: false, errors: ["storage"], kept: null, other: true }, name);
    }
  });

  test("storage of another format version (an older or newer release in another tab) is left alone", async () => {
    for (const v of [1, 3]) {
      tried++;
      const stored = JSON.stringify({ v, ns: "default", anything: "else" });
      const r = await page.evaluate(async (stored) => {
        localStorage.clear();
        localStorage.setItem("wasm-session:default", stored);
        const s = new lib.Session({ tokenUrl: "/auth/token", storage: "local", crossTab: false });
        const errors = [];
        s.on("error", (e) => errors.push(e.error.code));
        await s.ready; // the restore is over: what it found is known
        const out = { auth: s.isAuthenticated, errors, kept: localStorage.getItem("wasm-session:default") === stored };
        s.dispose();
        localStorage.clear();
        return out;
      }, stored);
      assert.deepEqual(r, { auth: false, errors: ["storage"], kept: true }, `v${v}`);
    }
  });

  test("storage that is blocked or refuses writes: memory instead, with a storage error event", async () => {
    // "blocked": reading `localStorage` throws (cookies blocked). "full": the storage exists
    // but every write throws (private mode, quota).
    const BROKEN = [["blocked", "local"], ["full", "session"]];
    for (const [name, storage] of BROKEN) {
      tried++;
      const r = await page.evaluate(async ([name, storage]) => {
        const setItem = Storage.prototype.setItem;
        const local = Object.getOwnPropertyDescriptor(window, "localStorage");
        if (name === "blocked") Object.defineProperty(window, "localStorage", { configurable: true, get() { throw new DOMException("no", "SecurityError"); } });
        else Storage.prototype.setItem = () => { throw new DOMException("full", "QuotaExceededError"); };
        try {
          const s = new lib.Session({ tokenUrl: "/auth/token", storage, crossTab: false });
          const errors = [];
          s.on("error", (e) => errors.push([e.error.code, /using memory/.test(e.error.message)]));
          await s.ready;
          s.setTokens({ access_token: "works", expires_in: 60 });
          const out = { mode: s.storage, errors, token: s.accessToken, stored: sessionStorage.length };
          s.dispose();
          return out;
        } finally {
          Storage.prototype.setItem = setItem;
          Object.defineProperty(window, "localStorage", local);
        }
      }, [name, storage]);
      assert.deepEqual(r, { mode: "memory", errors: [["storage", true]], token: "works", stored: 0 }, name);
    }
    assert.equal(await page.evaluate(() => typeof localStorage.getItem), "function", "storage restored");
  });

  test("the module still works after all of the above", async () => {
    const status = await page.evaluate(async () => {
      const s = new lib.Session({ tokenUrl: "/auth/token" });
      await s.login("/auth/login", { username: "demo", password: "demo" });
      return (await s.fetch("/api/me")).status;
    });
    assert.equal(status, 200);
  });

  test("the main entry (no OpenID Connect, no DPoP) refuses their options, naming each and the entry that has them", async () => {
    const main = await openTab(context, server);
    try {
      const r = await main.evaluate(() => {
        const options = { issuer: "https://id.example.com", authorizationUrl: "https://id.example.com/auth",
          redirectUri: "/cb", scope: "openid", endSessionUrl: "https://id.example.com/end",
          postLogoutRedirectUri: "/", dpop: true };
        const refused = Object.entries(options).map(([k, v]) => {
          try { new lib.Session({ tokenUrl: "/auth/token", clientId: "spa", [k]: v }).dispose(); return [k, "ok"]; }
          catch (e) { return [k, e.code, e.message]; }
        });
        const s = new lib.Session({ tokenUrl: "/auth/token" });
        const methods = ["loginWithRedirect", "loginWithPopup", "handleRedirectCallback"].map((m) => typeof s[m]);
        s.dispose();
        return { refused, methods };
      });
      for (const [name, code, message] of r.refused) {
        tried++;
        assert.equal(code, "invalid_config", `${name}: ${message}`);
        assert.ok(message.includes(name) && message.includes("wasm-session/oidc"), `${name}: "${message}"`);
      }
      assert.deepEqual(r.methods, ["undefined", "undefined", "undefined"]);
    } finally {
      await main.close();
    }
  });
});
