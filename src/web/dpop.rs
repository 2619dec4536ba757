//! DPoP (RFC 9449) in the browser: the key (an ECDSA P-256 `CryptoKey` made with
//! `extractable: false`, kept in IndexedDB in `session` and `local` modes by structured
//! clone, never written in `memory` mode), its public JWK and RFC 7638 thumbprint, and the
//! proofs (JSON by serde, base64url by `base64`, the ES256 signature by WebCrypto). What
//! to do with the key is the machine's ([`crate::core::machine::KeyOp`]); this file holds
//! it and carries that out.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::core::error::Error;
use crate::core::machine::{Input, Key};
use crate::core::protocol::valid_nonce;
use crate::core::token::skew;

use super::callbacks::callback;
use super::sink::Kept;

/// The `dpop` option joins the config's type (TypeScript merges the two declarations).
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TS_DPOP: &'static str = r#"
interface CommonConfig {
  /** DPoP (RFC 9449): bind the tokens to a non-extractable key of this browser; proofs on every request. Token and OpenID Connect modes. Default false. */
  dpop?: boolean;
}
"#;

/// The object store of a namespace's database, and the records in it: the session's key,
/// and the key of a sign-in that left for the provider (until the page comes back).
const STORE: &str = "keys";
const RECORD: &str = "dpop";
const SIGN_IN_RECORD: &str = "dpop-sign-in";

/// The public part of a P-256 key, as a JWK (RFC 7517): what a proof's header carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Jwk {
    kty: String,
    crv: String,
    x: String,
    y: String,
}

/// A key: the private `CryptoKey` (not extractable: it can sign, never be read) and the
/// public JWK.
#[derive(Clone)]
pub struct KeyPair {
    private: web_sys::CryptoKey,
    jwk: Jwk,
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    jwk: &'a Jwk,
}

#[derive(Serialize)]
struct Claims<'a> {
    jti: String,
    htm: &'a str,
    htu: String,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
}

fn failed(why: &'static str) -> Error {
    Error::Dpop(why)
}

fn subtle() -> Result<web_sys::SubtleCrypto, Error> {
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    crypto.map(|c| c.subtle()).ok_or(failed("needs crypto.subtle (a secure context: https or localhost)"))
}

fn object(pairs: &[(&str, &JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &(*k).into(), v);
    }
    o
}

async fn sha256(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let digest = subtle()?.digest_with_str_and_u8_array("SHA-256", bytes).map_err(|_| failed("SHA-256 failed"))?;
    let digest = JsFuture::from(digest).await.map_err(|_| failed("SHA-256 failed"))?;
    Ok(Uint8Array::new(&digest).to_vec())
}

/// base64url(SHA-256(`token`)): a proof's `ath`, binding it to the access token it goes with.
pub async fn ath(token: &str) -> Result<String, Error> {
    Ok(URL_SAFE_NO_PAD.encode(sha256(token.as_bytes()).await?))
}

/// A proof's `jti`: 16 random bytes (`crypto.getRandomValues`), base64url.
fn jti() -> Result<String, Error> {
    let crypto = web_sys::window().and_then(|w| w.crypto().ok()).ok_or(failed("needs crypto.getRandomValues"))?;
    let mut bytes = [0u8; 16];
    crypto.get_random_values_with_u8_array(&mut bytes).map_err(|_| failed("needs crypto.getRandomValues"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// JSON text of a serde value, through the browser's `JSON.stringify`.
fn json<T: Serialize>(value: &T) -> Result<String, Error> {
    let v = serde_wasm_bindgen::to_value(value).map_err(|_| failed("could not encode a proof"))?;
    js_sys::JSON::stringify(&v).ok().and_then(|s| s.as_string()).ok_or(failed("could not encode a proof"))
}

impl KeyPair {
    /// A new key, and its RFC 7638 thumbprint (for `dpop_jkt`).
    pub async fn generate() -> Result<(KeyPair, String), Error> {
        let subtle = subtle()?;
        let algorithm = object(&[("name", &"ECDSA".into()), ("namedCurve", &"P-256".into())]);
        let usages = Array::of1(&"sign".into());
        let made = subtle
            .generate_key_with_object(&algorithm, false, &usages)
            .map_err(|_| failed("this browser cannot make an ECDSA P-256 key"))?;
        let pair: web_sys::CryptoKeyPair = JsFuture::from(made)
            .await
            .map_err(|_| failed("this browser cannot make an ECDSA P-256 key"))?
            .unchecked_into();
        // The public half is always exportable; the private one was made non-extractable.
        let exported =
            subtle.export_key("jwk", &pair.get_public_key()).map_err(|_| failed("could not export the public key"))?;
        let exported = JsFuture::from(exported).await.map_err(|_| failed("could not export the public key"))?;
        let jwk: Jwk =
            serde_wasm_bindgen::from_value(exported).map_err(|_| failed("the public key is not an EC JWK"))?;
        // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#, jwk.crv, jwk.kty, jwk.x, jwk.y);
        let jkt = URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()).await?);
        Ok((KeyPair { private: pair.get_private_key(), jwk }, jkt))
    }

    /// The key as a JS object for IndexedDB and the channel (structured clone keeps the
    /// private key non-extractable).
    pub fn to_js(&self) -> JsValue {
        let jwk = serde_wasm_bindgen::to_value(&self.jwk).unwrap_or(JsValue::NULL);
        object(&[("privateKey", self.private.as_ref()), ("jwk", &jwk)]).into()
    }

    /// A key read back from IndexedDB or a message: a signing ECDSA `CryptoKey` and an EC
    /// public JWK, else `None`.
    pub fn from_js(v: &JsValue) -> Option<KeyPair> {
        let private: web_sys::CryptoKey = Reflect::get(v, &"privateKey".into()).ok()?.dyn_into().ok()?;
        let algorithm: JsValue = private.algorithm().ok()?.into();
        let name = Reflect::get(&algorithm, &"name".into()).ok()?.as_string()?;
        let signs = private.usages().iter().any(|u| u.as_string().as_deref() == Some("sign"));
        let jwk: Jwk = serde_wasm_bindgen::from_value(Reflect::get(v, &"jwk".into()).ok()?).ok()?;
        let b64 = |s: &str| s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let ok = name == "ECDSA" && signs && jwk.kty == "EC" && jwk.crv == "P-256" && b64(&jwk.x) && b64(&jwk.y);
        ok.then_some(KeyPair { private, jwk })
    }

    /// A proof for `htm` `url` (query and fragment left out), at `iat` (epoch s), for the
    /// access token whose hash is `ath`, with the server's `nonce`.
    pub async fn proof(
        &self,
        htm: &str,
        url: &str,
        iat: f64,
        ath: Option<String>,
        nonce: Option<String>,
    ) -> Result<String, Error> {
        let target = web_sys::Url::new(url).map_err(|_| failed("a proof's URL is not absolute"))?;
        target.set_search("");
        target.set_hash("");
        let jti = jti()?;
        let claims = Claims { jti, htm, htu: target.href(), iat: iat.max(0.0) as u64, ath, nonce };
        let header = Header { typ: "dpop+jwt", alg: "ES256", jwk: &self.jwk };
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(json(&header)?), URL_SAFE_NO_PAD.encode(json(&claims)?));
        let algorithm = object(&[("name", &"ECDSA".into()), ("hash", &"SHA-256".into())]);
        let signing = subtle()?
            .sign_with_object_and_u8_array(&algorithm, &self.private, input.as_bytes())
            .map_err(|_| failed("the key cannot sign (sign in again)"))?;
        // WebCrypto's ECDSA signature is raw r‖s, as JWS wants it (RFC 7518 §3.4).
        let signature = JsFuture::from(signing).await.map_err(|_| failed("the key cannot sign (sign in again)"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(Uint8Array::new(&signature).to_vec())))
    }
}

/// One session's keys, shared by its parts (a handle: clones are the same keys).
#[derive(Clone)]
pub struct Keys(Rc<KeyState>);

/// The current key, the one made for a sign-in under way, the one that came with the last
/// keyed message; and where the key is stored.
pub struct KeyState {
    current: RefCell<Option<KeyPair>>,
    signing_in: RefCell<Option<KeyPair>>,
    incoming: RefCell<Option<KeyPair>>,
    /// The IndexedDB database of the namespace, in `session` and `local` modes.
    db: Option<String>,
    /// How far this clock is ahead of the auth server's (ms), from its `Date` headers.
    skew_ms: Cell<f64>,
    /// Counts the keys adopted: a stored key read meanwhile must not replace a newer one.
    adopted: Cell<u32>,
    /// The last access token's `ath`: a token serves many requests, its hash is made once.
    last_ath: RefCell<Option<(String, String)>>,
}

impl std::ops::Deref for Keys {
    type Target = KeyState;
    fn deref(&self) -> &KeyState {
        &self.0
    }
}

impl Keys {
    /// The keys of namespace `ns`; `stored`: kept in IndexedDB.
    pub fn new(ns: &str, stored: bool) -> Keys {
        Keys(Rc::new(KeyState {
            current: RefCell::default(),
            signing_in: RefCell::default(),
            incoming: RefCell::default(),
            db: stored.then(|| format!("wasm-session:{ns}:dpop")),
            skew_ms: Cell::new(0.0),
            adopted: Cell::new(0),
            last_ath: RefCell::default(),
        }))
    }

    /// The current key.
    pub fn current(&self) -> Option<KeyPair> {
        self.current.borrow().clone()
    }

    /// The key for a sign-in under way (made by [`Keys::new_sign_in`]).
    pub fn signing_in(&self) -> Option<KeyPair> {
        self.signing_in.borrow().clone()
    }

    /// Is the key kept in IndexedDB (`session` and `local` modes)?
    pub fn stored(&self) -> bool {
        self.db.is_some()
    }

    /// Makes the key of a new sign-in; returns its thumbprint. The current key stays until
    /// the sign-in lands (`KeyOp::AdoptSignIn`). `across_redirect`: the page is about to
    /// leave for the provider; the key waits in IndexedDB for the page that comes back
    /// ([`Keys::resume_sign_in`]).
    pub async fn new_sign_in(&self, across_redirect: bool) -> Result<String, Error> {
        let (pair, jkt) = KeyPair::generate().await?;
        if let (true, Some(db)) = (across_redirect, &self.db) {
            idb(db, SIGN_IN_RECORD, Some(&pair.to_js()), true)
                .await
                .map_err(|_| failed("could not keep the sign-in's key in IndexedDB"))?;
        }
        *self.signing_in.borrow_mut() = Some(pair);
        Ok(jkt)
    }

    /// Back from the provider: the key the page that left made for this sign-in (its
    /// thumbprint bound the code), taken out of IndexedDB; else (memory mode, or it is gone)
    /// a new one, and only the tokens are bound.
    pub async fn resume_sign_in(&self) -> Result<(), Error> {
        if let Some(db) = &self.db {
            let kept = idb(db, SIGN_IN_RECORD, None, false).await.ok().and_then(|v| KeyPair::from_js(&v));
            let _ = idb(db, SIGN_IN_RECORD, None, true).await;
            if let Some(pair) = kept {
                *self.signing_in.borrow_mut() = Some(pair);
                return Ok(());
            }
        }
        self.new_sign_in(false).await.map(drop)
    }

    /// A key came beside a message (see `tabs`).
    pub fn arrived(&self, pair: KeyPair) {
        *self.incoming.borrow_mut() = Some(pair);
    }

    /// `KeyOp::AdoptSignIn` / `KeyOp::AdoptSent`: that key is this tab's now, and stored.
    pub fn adopt(&self, from_sign_in: bool) {
        let slot = if from_sign_in { &self.signing_in } else { &self.incoming };
        let Some(pair) = slot.borrow_mut().take() else { return };
        let value = pair.to_js();
        *self.current.borrow_mut() = Some(pair);
        self.adopted.set(self.adopted.get().wrapping_add(1));
        if let Some(db) = self.db.clone() {
            super::callbacks::spawn(async move {
                let _ = idb(&db, RECORD, Some(&value), true).await;
            });
        }
    }

    /// `KeyOp::Drop`: forgets the key, and with `stored` deletes the stored copy.
    pub fn forget(&self, stored: bool) {
        self.current.borrow_mut().take();
        if let (true, Some(db)) = (stored, self.db.clone()) {
            super::callbacks::spawn(async move {
                let _ = idb(&db, RECORD, None, true).await;
            });
        }
    }

    /// `KeyOp::Load`: reads the stored key; the answer goes to `kept` as [`Input::Key`].
    pub fn load(&self, kept: Kept) {
        let keys = self.clone();
        let adopted = self.adopted.get();
        super::callbacks::spawn(async move {
            let found = match keys.db.as_deref() {
                None => Key::Missing,
                Some(db) => match idb(db, RECORD, None, false).await {
                    Ok(v) if v.is_undefined() || v.is_null() => Key::Missing,
                    Ok(v) => match KeyPair::from_js(&v) {
                        Some(pair) => {
                            if keys.adopted.get() == adopted {
                                *keys.current.borrow_mut() = Some(pair);
                            }
                            Key::Present
                        }
                        None => Key::Unusable,
                    },
                    Err(_) => Key::Unusable,
                },
            };
            kept.send(Input::Key(found));
        });
    }

    /// `ath` for `token`, hashed once per token.
    async fn ath(&self, token: &str) -> Result<String, Error> {
        if let Some((_, hash)) = self.last_ath.borrow().as_ref().filter(|(t, _)| t == token) {
            return Ok(hash.clone());
        }
        let hash = ath(token).await?;
        *self.last_ath.borrow_mut() = Some((token.to_string(), hash.clone()));
        Ok(hash)
    }

    /// Reports a response's `DPoP-Nonce` (for `url`) to the machine, which keeps and
    /// shares it.
    pub fn note_nonce(&self, kept: &Kept, url: &str, nonce: Option<String>) {
        if let (Some(nonce), Some(origin)) = (nonce.filter(|n| valid_nonce(n)), origin(url)) {
            kept.send(Input::Nonce { origin, nonce });
        }
    }

    /// The auth server's `Date` (epoch ms) seen at `now`: proofs' `iat` follow its clock.
    pub fn server_date(&self, now: f64, date: Option<f64>) {
        if date.is_some() {
            self.skew_ms.set(skew(now, date));
        }
    }

    /// `iat` for a proof: this clock corrected by the skew seen in the server's `Date`.
    pub fn iat(&self) -> f64 {
        ((js_sys::Date::now() - self.skew_ms.get()) / 1000.0).floor()
    }

    /// The `DPoP` header for `htm` `url` with `pair` (the current key if `None`), for
    /// `token` if given, with the nonce the machine knows for `url`'s origin. `None`
    /// without a key.
    pub async fn header(
        &self,
        kept: &Kept,
        pair: Option<KeyPair>,
        htm: &str,
        url: &str,
        token: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let Some(pair) = pair.or_else(|| self.current()) else { return Ok(None) };
        let nonce = origin(url).and_then(|o| kept.nonce(&o));
        let ath = match token {
            Some(t) => Some(self.ath(t).await?),
            None => None,
        };
        pair.proof(htm, url, self.iat(), ath, nonce).await.map(Some)
    }
}

/// The session's keys, in namespace `ns`; `stored`: kept in IndexedDB.
pub fn for_session(ns: &str, stored: bool) -> Option<Keys> {
    Some(Keys::new(ns, stored))
}

/// The origin of an absolute URL.
pub fn origin(url: &str) -> Option<String> {
    web_sys::Url::new(url).ok().map(|u| u.origin())
}

/// A request's promise: resolves (with the event) at success, rejects at error.
fn settled(target: &web_sys::IdbRequest) -> Promise {
    Promise::new(&mut |resolve, reject| {
        target.set_onsuccess(Some(&resolve));
        target.set_onerror(Some(&reject));
    })
}

/// One IndexedDB operation on `record` of database `db`: a read (`write` false), a write of
/// `value`, or a delete (`write` with no value). A read gives the record.
async fn idb(db: &str, record: &str, value: Option<&JsValue>, write: bool) -> Result<JsValue, JsValue> {
    let factory = web_sys::window().and_then(|w| w.indexed_db().ok().flatten()).ok_or(JsValue::NULL)?;
    let open = factory.open_with_u32(db, 1)?;
    let upgrade = callback({
        let open = open.clone();
        move |_| {
            if let Ok(db) = open.result().and_then(|r| r.dyn_into::<web_sys::IdbDatabase>()) {
                let _ = db.create_object_store(STORE);
            }
        }
    });
    open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    JsFuture::from(settled(&open)).await?;
    drop(upgrade);
    let database: web_sys::IdbDatabase = open.result()?.dyn_into()?;
    let mode = if write { web_sys::IdbTransactionMode::Readwrite } else { web_sys::IdbTransactionMode::Readonly };
    let tx = database.transaction_with_str_and_mode(STORE, mode)?;
    let store = tx.object_store(STORE)?;
    let request = match (write, value) {
        (false, _) => store.get(&record.into())?,
        (true, Some(v)) => store.put_with_key(v, &record.into())?,
        (true, None) => store.delete(&record.into())?,
    };
    JsFuture::from(settled(&request)).await?;
    let result = request.result()?;
    database.close();
    Ok(result)
}
