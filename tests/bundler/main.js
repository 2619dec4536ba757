// What an app does with the package from npm: import, init, sign in, call an API.
import init, { Session } from "wasm-session";

const out = document.getElementById("out");
try {
  await init();
  const session = new Session({ tokenUrl: "/auth/token", revokeUrl: "/auth/revoke" });
  await session.ready;
  await session.login("/auth/login", { username: "demo", password: "demo" });
  const me = await (await session.fetch("/api/me")).json();
  // The OpenID Connect entry: its own module, with the sign-in methods the main one lacks.
  const oidc = await import("wasm-session/oidc");
  await oidc.default();
  const signIn = new oidc.Session({ issuer: location.origin + "/issuer", clientId: "spa" });
  const methods = [typeof signIn.loginWithRedirect, typeof session.loginWithRedirect];
  signIn.dispose();
  window.result = { signedIn: session.isAuthenticated, sub: me.sub, claims: session.claims?.sub, oidc: methods };
} catch (e) {
  window.result = { error: `${e.code || e.name}: ${e.message}` };
}
out.textContent = JSON.stringify(window.result);
