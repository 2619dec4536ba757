// A certified OpenID Provider (oidc-provider, from npm) for the demo and the end-to-end
// tests: one public client "demo-spa", PKCE required, rotating refresh tokens, short-lived
// access tokens, the provider's own login form (any login and password), revocation,
// RP-initiated logout and DPoP (RFC 9449): a token request with a DPoP proof gets tokens
// bound to its key (the refresh token too, the client being public), and userinfo then
// wants a proof from that key. Development only: its keys and cookies are not secret.
//
//   node www/oidc/provider.mjs            # http://localhost:8090, for the demo on :8080
//
// Env: OIDC_PORT (8090; 0 = a free port), APP_ORIGINS (comma-separated origins of the app,
// whose "/", "/e2e.html", "/e2e-oidc.html", "/popup-callback.html" and "/leptos.html" (the Leptos
// example) are the registered redirect URIs;
// default http://127.0.0.1:8080), OIDC_ACCESS_TTL (seconds, 60), DPOP_NONCE (1: every DPoP
// proof must carry the provider's nonce; it answers use_dpop_nonce with a DPoP-Nonce header
// otherwise). Prints "listening oidc <issuer>" and then "ready".
// GET /__stats gives counters; POST /__reset clears them. A use_dpop_nonce answer counts as
// a nonce challenge, not as a rejection: the client is expected to retry with the nonce.
import { randomBytes } from "node:crypto";
import http from "node:http";
import Provider from "oidc-provider";

const apps = (process.env.APP_ORIGINS || "http://127.0.0.1:8080").split(",").map((o) => o.trim()).filter(Boolean);
const accessTtl = Number(process.env.OIDC_ACCESS_TTL || 60);
const dpopNonce = process.env.DPOP_NONCE === "1";
const uris = apps.flatMap((o) => [`${o}/`, `${o}/e2e.html`, `${o}/e2e-oidc.html`, `${o}/popup-callback.html`, `${o}/leptos.html`]);

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.OIDC_PORT ?? 8090), "127.0.0.1", resolve));
const issuer = `http://localhost:${server.address().port}`;

const zero = () => ({
  codes: 0, code_rejected: 0, refreshes: 0, refresh_rejected: 0, grants_revoked: 0, revocations: 0,
  userinfo_ok: 0, userinfo_rejected: 0, logins: 0, ended_sessions: 0,
  dpop_tokens: 0, dpop_rejected: 0, dpop_nonce_challenges: 0, codes_bound: 0,
});
let stats = zero();

const page = (title, body) => `<!doctype html><meta charset="utf-8"><title>${title}</title>
<body style="font-family:system-ui;max-width:26rem;margin:3rem auto">${body}</body>`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: "demo-spa",
    token_endpoint_auth_method: "none", // a public client: the browser cannot keep a secret
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    redirect_uris: uris,
    post_logout_redirect_uris: uris,
  }],
  pkce: { required: () => true },
  rotateRefreshToken: () => true,
  // A refresh token for every sign-in of a client allowed the grant (by default, only with
  // offline_access granted through a consent prompt).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  // The demo app is first-party: its grant needs no consent screen.
  async loadExistingGrant(ctx) {
    const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    const found = id && await ctx.oidc.provider.Grant.find(id);
    if (found) return found;
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile offline_access");
    await grant.save();
    return grant;
  },
  clientBasedCORS: (_ctx, origin) => apps.includes(origin),
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, name: id }) }),
  claims: { openid: ["sub"], profile: ["name"] },
  cookies: { keys: ["wasm-session-demo-provider-not-a-secret"] },
  ttl: { AccessToken: accessTtl, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 86_400, Grant: 86_400,
    Session: 86_400, Interaction: 3600 },
  features: {
    devInteractions: { enabled: true },
    // Nonces come from nonceSecret (a fresh one per run: nonces do not outlive the process);
    // without it the provider cannot issue any, so it is set only when they are demanded.
    dPoP: dpopNonce
      ? { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true }
      : { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page("Sign out", `<h1>Sign out of the demo provider?</h1>${form}
          <button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
          <button type="submit" form="op.logoutForm">No, stay signed in</button>`);
      },
      postLogoutSuccessSource: async (ctx) => { ctx.body = page("Signed out", "<h1>Signed out</h1>"); },
    },
  },
  renderError: async (ctx, out) => {
    const text = (s) => String(s ?? "").replace(/[<>&"]/g, "");
    ctx.type = "html";
    ctx.body = page("Error", `<h1>${text(out.error)}</h1><p>${text(out.error_description)}</p>`);
  },
});

/** Counts a DPoP error; true when it was a nonce challenge (the client retries: no rejection). */
function dpopError(err) {
  if (err?.error === "use_dpop_nonce") {
    stats.dpop_nonce_challenges++;
    return true;
  }
  // invalid_dpop_proof, or a bound token without its key: the reason is in error_detail
  // ("failed jkt verification"); the description sent to the client is generic.
  if (err?.error === "invalid_dpop_proof" || /jkt|DPoP/.test(err?.error_detail ?? "")) stats.dpop_rejected++;
  return false;
}

provider.on("grant.success", (ctx) => {
  if (ctx.oidc.params.grant_type === "refresh_token") stats.refreshes++;
  else stats.codes++;
  if (ctx.body?.token_type === "DPoP") stats.dpop_tokens++;
});
provider.on("grant.error", (ctx, err) => {
  if (dpopError(err)) return;
  if (ctx.oidc.params?.grant_type === "refresh_token") stats.refresh_rejected++;
  else stats.code_rejected++;
});
provider.on("grant.revoked", () => { stats.grants_revoked++; });
provider.on("userinfo.error", (_ctx, err) => {
  if (!dpopError(err)) stats.userinfo_rejected++;
});
provider.on("end_session.success", () => { stats.ended_sessions++; });
provider.on("interaction.ended", () => { stats.logins++; });

provider.use(async (ctx, next) => {
  if (ctx.path === "/__stats") {
    ctx.body = stats;
    return;
  }
  if (ctx.path === "/__reset" && ctx.method === "POST") {
    stats = zero();
    ctx.body = stats;
    return;
  }
  // An authorization request that binds its code to a DPoP key (RFC 9449 §10).
  if (ctx.path === "/auth" && ctx.query.dpop_jkt) stats.codes_bound++;
  await next();
  if (ctx.path === "/token/revocation" && ctx.status === 200) stats.revocations++;
  if (ctx.path === "/me" && ctx.status === 200) stats.userinfo_ok++;
});

server.on("request", provider.callback());
console.log(`listening oidc ${issuer}`);
console.log("ready");
