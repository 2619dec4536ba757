// The steps wasm-session does in plain JavaScript, imported by the Rust modules named above
// each function (`#[wasm_bindgen(module = "/src/browser.js")]`). They carry out a request,
// a lock, a message or a parse and report what happened; every decision about what that
// means is made in Rust. Nothing here throws into Rust. `scripts/fold-snippets.mjs` folds
// this file into the package's glue.

// Used by src/http.rs.
export function ws_post(url, body, type, ms) {
  const abort = new AbortController();
  let late = false;
  const timer = setTimeout(() => { late = true; abort.abort(); }, ms);
  const headers = { accept: "application/json" };
  if (type) headers["content-type"] = type;
  else body = new URLSearchParams(body);
  const init = { method: "POST", body, headers, credentials: "same-origin", cache: "no-store", redirect: "error", signal: abort.signal };
  return fetch(url, init)
    .then(async (r) => {
      const text = await r.text();
      let json;
      try { if (text.length <= 262144) json = JSON.parse(text); } catch {} // a token response is a few KB
      return [r.status, json, Date.parse(r.headers.get("date"))];
    })
    .catch(() => late)
    .finally(() => clearTimeout(timer));
}

// Used by src/tabs.rs.
export function ws_lock(name, ms) {
  const locks = globalThis.navigator && navigator.locks;
  if (!locks || typeof locks.request !== "function") return null;
  const take = (options) => new Promise((granted) => {
    let release;
    const held = new Promise((r) => (release = r));
    const settled = () => granted(null); // after release, abort or steal: too late if not yet granted
    try {
      locks.request(name, options, () => (granted(release), held)).then(settled, settled);
    } catch { settled(); }
  });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  return take({ signal: abort.signal }).then((release) => {
    clearTimeout(timer);
    return release || take({ steal: true });
  });
}

// Used by src/tabs.rs.
export function ws_bus(name, key, receive) {
  try {
    const channel = new BroadcastChannel(name);
    channel.onmessage = (e) => receive(e.data);
    return {
      storage: false,
      post: (m) => { try { channel.postMessage(m); } catch {} },
      close: () => { channel.onmessage = null; channel.close(); },
    };
  } catch {}
  let storage;
  try { storage = localStorage; } catch {}
  if (!storage) return null;
  const listener = (e) => {
    if (e.key === key && e.newValue) try { receive(JSON.parse(e.newValue)); } catch {}
  };
  addEventListener("storage", listener);
  return {
    storage: true,
    post: (m) => { try { storage.setItem(key, JSON.stringify(m)); storage.removeItem(key); } catch {} },
    close: () => removeEventListener("storage", listener),
  };
}

// Used by src/token.rs.
export function ws_json(bytes) {
  try { return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)); } catch {}
}

// Used by src/page.rs.
export function ws_url(raw, base) {
  try {
    const u = new URL(raw, base);
    return [u.href, u.origin, u.protocol, u.hostname, !!(u.username || u.password),
      u.pathname === "/" && !u.search && !u.hash];
  } catch { return null; }
}

// Used by src/store.rs.
export function ws_storage(local, probe) {
  let s;
  try { s = local ? localStorage : sessionStorage; } catch {}
  if (!s) return false;
  try { s.setItem(probe, "1"); s.removeItem(probe); } catch { return true; }
  return s;
}
