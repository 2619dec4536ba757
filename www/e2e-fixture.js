// The end-to-end tests' fixture (tests/e2e): loads a build of the package (e2e.html the
// main entry, e2e-oidc.html `wasm-session/oidc`) and records the events of its session.
export async function fixture(init, lib) {
  window.wasm = await init();  // exports, for wasm memory figures
  window.lib = lib;
  window.events = [];
  // Creates window.session and records every event it emits in window.events.
  window.makeSession = (config) => {
    const session = new lib.Session(config);
    for (const name of ["login", "refresh", "logout", "expired", "error", "idle_warning", "active"]) {
      session.on(name, (e) => window.events.push({
        type: e.type, reason: e.reason, expiresAt: e.expiresAt, logoutAt: e.logoutAt, at: Date.now(),
        code: e.error && e.error.code, message: e.error && e.error.message,
      }));
    }
    window.session = session;
    return session;
  };
  window.fixtureReady = true;
}
