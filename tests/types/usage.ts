// Compiled with `tsc --strict --noEmit` by tests/e2e/types.test.mjs: the package's .d.ts
// must accept correct use and reject mistakes (each @ts-expect-error must be an error).
import init, { Session, type SessionConfig, type SessionError, type LogoutReason } from "../../pkg/wasm_session.js";

export async function main(): Promise<void> {
  await init();
  const config: SessionConfig = { tokenUrl: "/auth/token", storage: "local", allowedOrigins: ["https://api.example.com"] };
  const session = new Session(config);

  const off: () => void = session.on("logout", (e) => {
    const reason: LogoutReason = e.reason;
    console.log(reason);
  });
  session.on("error", (e) => {
    const err: SessionError = e.error;
    console.log(err.code, err.message);
  });
  session.on("refresh", (e) => console.log(e.expiresAt.toFixed(0)));
  off();

  await session.login("/auth/login", { username: "demo", password: "demo" });
  session.setTokens({ access_token: "a", expires_in: 3600, refresh_token: "r" });
  const res: Response = await session.fetch("/api/me");
  const res2: Response = await session.fetch(new Request("/api/me"), { method: "GET" });
  const token: string | null = await session.getAccessToken();
  const header: string | null = await session.authHeader();
  const at: number | null = session.expiresAt;
  const authed: boolean = session.isAuthenticated;
  const restored: boolean = await session.ready;
  console.log(res.status, res2.status, token, header, at, authed, restored, session.claims?.sub);
  await session.logout();
  session.dispose();

  // The headers for another HTTP client (Bearer here).
  const headers: { Authorization?: string; DPoP?: string } = await new Session({ tokenUrl: "/auth/token" }).authHeaders("GET", "/api/me");
  console.log(headers.Authorization);
  // @ts-expect-error DPoP is in the wasm-session/oidc entry
  new Session({ tokenUrl: "/auth/token", dpop: true });

  // Cookie mode, idle and absolute timeouts.
  const cookie = new Session({ mode: "cookie", sessionUrl: "/session", idleTimeoutMs: 900_000, idleWarningMs: 60_000, maxSessionMs: 28_800_000 });
  cookie.on("idle_warning", (e) => console.log(e.logoutAt.toFixed(0)));
  cookie.on("active", (e) => console.log(e.type));
  const csrf: string | null = cookie.csrfToken;
  const idleAt: number | null = cookie.idleAt;
  const endsAt: number | null = cookie.sessionEndsAt;
  const mode: "token" | "cookie" = cookie.mode;
  console.log(csrf, idleAt, endsAt, mode, cookie.user);
  const idle: LogoutReason = "idle";
  const absolute: LogoutReason = "absolute";
  console.log(idle, absolute);
  // @ts-expect-error: cookie mode has no token endpoint
  new Session({ mode: "cookie", sessionUrl: "/session", tokenUrl: "/t" });
  // @ts-expect-error: cookie mode keeps nothing in storage
  new Session({ mode: "cookie", sessionUrl: "/session", storage: "local" });
  // @ts-expect-error: sessionUrl is required in cookie mode
  new Session({ mode: "cookie" });
  // @ts-expect-error: not a mode
  new Session({ mode: "bearer", tokenUrl: "/t" });

  // @ts-expect-error: tokenUrl is required
  new Session({ storage: "memory" });
  // @ts-expect-error: not a storage mode
  new Session({ tokenUrl: "/t", storage: "cookies" });
  // @ts-expect-error: unknown option
  new Session({ tokenUrl: "/t", tokenURL: "/t" });
  // @ts-expect-error: not an event
  session.on("signout", () => {});
  // @ts-expect-error: logout events have no expiresAt
  session.on("logout", (e) => e.expiresAt);
  // @ts-expect-error: access_token is required in a token response
  session.setTokens({ expires_in: 60 });

  // OpenID Connect is the wasm-session/oidc entry's (usage-oidc.ts).
  // @ts-expect-error: the main entry takes no issuer
  new Session({ issuer: "https://id.example.com", clientId: "spa" });
  // @ts-expect-error: the main entry has no loginWithRedirect
  await session.loginWithRedirect();
}
