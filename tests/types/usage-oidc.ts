// Compiled with `tsc --strict --noEmit` by tests/e2e/types.test.mjs: the wasm-session/oidc
// entry's .d.ts accepts OpenID Connect configs and sign-in calls, and rejects mistakes.
import init, { Session, type SessionConfig } from "../../pkg/oidc/wasm_session.js";

export async function main(): Promise<void> {
  await init();
  // Everything the main entry takes, too.
  const plain: SessionConfig = { tokenUrl: "/auth/token", storage: "local" };
  new Session(plain);

  // DPoP: bound tokens, and the headers for another HTTP client.
  const bound = new Session({ tokenUrl: "/auth/token", storage: "local", dpop: true });
  const headers: { Authorization?: string; DPoP?: string } = await bound.authHeaders("GET", "/api/me");
  console.log(headers.Authorization, headers.DPoP);
  new Session({ issuer: "https://id.example.com", clientId: "spa", dpop: true });
  // @ts-expect-error DPoP does not apply in cookie mode
  new Session({ mode: "cookie", sessionUrl: "/session", dpop: true });

  // OpenID Connect: discovery, or the endpoints given directly.
  const oidc = new Session({ issuer: "https://id.example.com", clientId: "spa", redirectUri: "https://app.example/cb",
    scope: "openid profile offline_access", postLogoutRedirectUri: "https://app.example/", storage: "session" });
  await oidc.loginWithRedirect({ appState: { back: "/orders/7" }, prompt: "login", loginHint: "ada", extraParams: { ui_locales: "fr" } });
  const { appState }: { appState?: unknown } = await oidc.handleRedirectCallback();
  await oidc.handleRedirectCallback("https://app.example/cb?code=c&state=s");
  const popup: { appState?: unknown } = await oidc.loginWithPopup({ appState: { back: "/" }, prompt: "login", timeoutMs: 60_000 });
  console.log(popup.appState);
  oidc.on("error", (e) => e.error.code === "popup_closed" || e.error.code === "popup_blocked");
  console.log(appState, oidc.idClaims?.sub);
  await oidc.logout({ returnTo: "https://app.example/bye" });
  new Session({ authorizationUrl: "https://id.example.com/authorize", tokenUrl: "https://id.example.com/token", clientId: "spa" });
  oidc.on("error", (e) => {
    if (e.error.code === "oauth_error") console.log(e.error.error, e.error.errorDescription);
  });
  // @ts-expect-error: an issuer needs a client id
  new Session({ issuer: "https://id.example.com" });
  // @ts-expect-error: direct endpoints need the token endpoint too
  new Session({ authorizationUrl: "https://id.example.com/authorize", clientId: "spa" });
  // @ts-expect-error: not a login option
  await oidc.loginWithRedirect({ returnTo: "/" });
  // @ts-expect-error: extra parameters are strings
  await oidc.loginWithRedirect({ extraParams: { max_age: 60 } });
  // @ts-expect-error: the popup's timeout is a number of milliseconds
  await oidc.loginWithPopup({ timeoutMs: "60s" });
  // @ts-expect-error: not a logout option
  await oidc.logout({ federated: true });
}
