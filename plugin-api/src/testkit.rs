//! A fake host for plugin tests: scripted HTTP, an injected clock and seeded randomness.
//!
//! ```
//! use hermes_plugin_api::testkit::{FakeHost, Reply};
//! let host = FakeHost::new(1_700_000_000_000);
//! host.on_request(|req| {
//!     assert!(req.url.ends_with("/token"));
//!     Reply::json(200, r#"{"ok":true}"#)
//! });
//! let sdk_host = host.sdk_host();
//! let resp = sdk_host.post_form("https://example.test/token", &[("a", "b")], &[]).unwrap();
//! assert_eq!(resp.status, 200);
//! assert_eq!(host.requests().len(), 1);
//! ```

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RStr, RString, RVec, Tuple2},
};

use crate::{sdk, HostBox, HostServices, HostServices_TO, HttpRequest, HttpResponse, PluginError};

/// A recorded request, decoded for assertions.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// URL.
    pub url: String,
    /// Headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Recorded {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Form fields of the body, in order, decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (url_decode(k), url_decode(v))
            })
            .collect()
    }
    /// One form field.
    pub fn field(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the scripted responder answers.
pub enum Reply {
    /// A response.
    Response(u16, Vec<u8>),
    /// A host-side error (timeout, dropped connection, refused).
    Error(PluginError),
}

impl Reply {
    /// A JSON body with a status.
    pub fn json(status: u16, body: &str) -> Self {
        Reply::Response(status, body.as_bytes().to_vec())
    }
    /// A transient network failure.
    pub fn dropped() -> Self {
        Reply::Error(PluginError::transient("network", "connection closed before a response"))
    }
}

type Responder = dyn Fn(&Recorded) -> Reply + Send + Sync;

struct Inner {
    now: AtomicI64,
    seed: AtomicU64,
    responder: Mutex<Option<Arc<Responder>>>,
    requests: Mutex<Vec<Recorded>>,
    logs: Mutex<Vec<(u32, String)>>,
    config: Mutex<Vec<(String, String)>>,
}

/// A fake [`HostServices`]. Clones share state.
#[derive(Clone)]
pub struct FakeHost {
    inner: Arc<Inner>,
}

impl FakeHost {
    /// A fake host whose clock reads `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self {
            inner: Arc::new(Inner {
                now: AtomicI64::new(now_ms),
                seed: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
                responder: Mutex::new(None),
                requests: Mutex::new(Vec::new()),
                logs: Mutex::new(Vec::new()),
                config: Mutex::new(Vec::new()),
            }),
        }
    }
    /// Script the HTTP answers. Without a responder every request fails as `no_network`.
    pub fn on_request(&self, f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        *self.inner.responder.lock().unwrap() = Some(Arc::new(f));
    }
    /// Set the clock.
    pub fn set_now(&self, now_ms: i64) {
        self.inner.now.store(now_ms, Ordering::SeqCst);
    }
    /// Move the clock.
    pub fn advance(&self, ms: i64) {
        self.inner.now.fetch_add(ms, Ordering::SeqCst);
    }
    /// Set a configuration value returned by `config_get`.
    pub fn set_config(&self, key: &str, value: &str) {
        self.inner.config.lock().unwrap().push((key.into(), value.into()));
    }
    /// The requests made so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }
    /// The log lines so far.
    pub fn logs(&self) -> Vec<(u32, String)> {
        self.inner.logs.lock().unwrap().clone()
    }
    /// The FFI object to hand to a provider.
    pub fn host_box(&self) -> HostBox {
        HostServices_TO::from_value(self.clone(), TD_Opaque)
    }
    /// The SDK handle over this fake.
    pub fn sdk_host(&self) -> sdk::Host {
        sdk::Host::new(self.host_box())
    }
}

impl HostServices for FakeHost {
    fn http(&self, request: HttpRequest) -> RResult<HttpResponse, PluginError> {
        let rec = Recorded {
            method: request.method.to_string(),
            url: request.url.to_string(),
            headers: request
                .headers
                .iter()
                .map(|Tuple2(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: String::from_utf8_lossy(&request.body).into_owned(),
        };
        self.inner.requests.lock().unwrap().push(rec.clone());
        let responder = self.inner.responder.lock().unwrap().clone();
        let Some(responder) = responder else {
            return RResult::RErr(PluginError::transient("no_network", "the fake host has no responder"));
        };
        match responder(&rec) {
            Reply::Response(status, body) => RResult::ROk(HttpResponse {
                status,
                headers: RVec::new(),
                body: body.into(),
                truncated: false,
                final_url: rec.url.into(),
            }),
            Reply::Error(e) => RResult::RErr(e),
        }
    }
    fn now_ms(&self) -> i64 {
        self.inner.now.load(Ordering::SeqCst)
    }
    fn random_bytes(&self, n: u32) -> RVec<u8> {
        // splitmix64: deterministic, so tests can pin PKCE values.
        (0..n)
            .map(|_| {
                let mut z = self
                    .inner
                    .seed
                    .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
                    .wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u8
            })
            .collect()
    }
    fn log(&self, level: u32, message: RStr<'_>) {
        self.inner.logs.lock().unwrap().push((level, message.to_string()));
    }
    fn config_get(&self, key: RStr<'_>) -> ROption<RString> {
        self.inner
            .config
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(k, _)| k == key.as_str())
            .map(|(_, v)| RString::from(v.as_str()))
            .into()
    }
}
