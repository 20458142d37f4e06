//! A fake host for plugin tests (scripted HTTP, an injected clock, seeded randomness) and the
//! conformance suite ([`conformance`]).
//!
//! Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! hermes-plugin-sdk = { version = "1", features = ["testkit"] }
//! ```
//!
//! ```
//! use hermes_plugin_sdk::testkit::{FakeHost, Reply};
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

use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RStr, RString, RVec, Tuple2},
};

use crate::check::{self, CheckHost, DebugProbe, Report};
use crate::{
    HostBox, HostServices, HostServices_TO, HttpRequest, HttpResponse, Plugin, PluginError,
};

/// The plugin author guide (`docs/plugin-authors.md`): its Rust blocks are this crate's
/// doctests, so every example in it compiles and runs.
#[cfg(doctest)]
#[doc = include_str!("../../docs/plugin-authors.md")]
pub struct PluginAuthorsGuide;

/// The `device_code` template of `hermes plugins new` (the `api_key` one is in the guide).
#[cfg(doctest)]
#[doc = concat!("```\n", include_str!("../../host/src/cli/templates/device_code.rs"), "```")]
pub struct DeviceCodeTemplate;

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A recorded request, decoded for assertions.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`, … as the plugin wrote it.
    pub method: String,
    /// The absolute URL, before any redirect.
    pub url: String,
    /// Headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The timeout the plugin asked for, ms (0: the host's default).
    pub timeout_ms: u64,
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
    /// The value of the form field `name`, decoded; the first when repeated.
    pub fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
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
    /// A response: status and body (no headers, not truncated, final URL = request URL).
    Response(u16, Vec<u8>),
    /// A whole response, for what [`Reply::Response`] leaves out: headers, a body the host
    /// `truncated` at its size cap, or the `final_url` after redirects (an empty `final_url`
    /// is replaced by the request's URL).
    Full(HttpResponse),
    /// A host-side error (timeout, dropped connection, refused).
    Error(PluginError),
}

impl Reply {
    /// A response with `status` and `body` (any text; named for the common case).
    pub fn json(status: u16, body: &str) -> Self {
        Reply::Response(status, body.as_bytes().to_vec())
    }
    /// A whole response with this status and body, to adjust before returning it:
    /// `Reply::Full(HttpResponse { truncated: true, ..Reply::response(200, "{") })`.
    pub fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: RVec::new(),
            body: body.as_bytes().to_vec().into(),
            truncated: false,
            final_url: RString::new(),
        }
    }
    /// A transient network failure, as the host reports a dropped connection.
    pub fn dropped() -> Self {
        Reply::Error(PluginError::transient(
            "network",
            "connection closed before a response",
        ))
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

impl Default for FakeHost {
    /// A fake host whose clock reads 2023-11-14T22:13:20Z (1 700 000 000 000 ms).
    fn default() -> Self {
        Self::new(1_700_000_000_000)
    }
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
    /// The same fake with its random bytes seeded by `seed`: two fakes with one seed hand out
    /// the same bytes, so tests can pin values derived from them (PKCE verifiers, states).
    pub fn with_seed(self, seed: u64) -> Self {
        self.inner.seed.store(seed, Ordering::SeqCst);
        self
    }
    /// Script the HTTP answers. Without a responder every request fails as `no_network`.
    pub fn on_request(&self, f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        *lock(&self.inner.responder) = Some(Arc::new(f));
    }
    /// Set the clock to `now_ms` (unix ms).
    pub fn set_now(&self, now_ms: i64) {
        self.inner.now.store(now_ms, Ordering::SeqCst);
    }
    /// Move the clock by `ms` (negative goes back).
    pub fn advance(&self, ms: i64) {
        self.inner.now.fetch_add(ms, Ordering::SeqCst);
    }
    /// Set a configuration value returned by `config_get`.
    pub fn set_config(&self, key: &str, value: &str) {
        lock(&self.inner.config).push((key.into(), value.into()));
    }
    /// The requests made so far, in order, including those the responder refused.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.requests).clone()
    }
    /// The log lines so far, with their level ([`crate::log_level`]).
    pub fn logs(&self) -> Vec<(u32, String)> {
        lock(&self.inner.logs).clone()
    }
    /// The FFI object to hand to a provider.
    pub fn host_box(&self) -> HostBox {
        HostServices_TO::from_value(self.clone(), TD_Opaque)
    }
    /// The SDK handle over this fake.
    pub fn sdk_host(&self) -> crate::Host {
        crate::Host::new(self.host_box())
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
            timeout_ms: request.timeout_ms,
        };
        lock(&self.inner.requests).push(rec.clone());
        let responder = lock(&self.inner.responder).clone();
        let Some(responder) = responder else {
            return RResult::RErr(PluginError::transient(
                "no_network",
                "the fake host has no responder",
            ));
        };
        match responder(&rec) {
            Reply::Response(status, body) => RResult::ROk(HttpResponse {
                status,
                headers: RVec::new(),
                body: body.into(),
                truncated: false,
                final_url: rec.url.into(),
            }),
            Reply::Full(mut resp) => {
                if resp.final_url.is_empty() {
                    resp.final_url = rec.url.into();
                }
                RResult::ROk(resp)
            }
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
        lock(&self.inner.logs).push((level, message.to_string()));
    }
    fn config_get(&self, key: RStr<'_>) -> ROption<RString> {
        lock(&self.inner.config)
            .iter()
            .rev()
            .find(|(k, _)| k == key.as_str())
            .map(|(_, v)| RString::from(v.as_str()))
            .into()
    }
}

impl CheckHost for FakeHost {
    fn host_box(&self) -> HostBox {
        FakeHost::host_box(self)
    }
    fn requests(&self) -> Vec<String> {
        lock(&self.inner.requests)
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect()
    }
    fn logs(&self) -> Vec<String> {
        lock(&self.inner.logs)
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }
    fn now_ms(&self) -> i64 {
        HostServices::now_ms(self)
    }
}

/// Run the conformance checks on plugin `P` and panic with every finding if any fails; returns
/// the report (which may carry warnings) when all pass. Call it from a `#[test]` function in
/// your crate's `tests/conformance.rs`:
///
/// ```
/// # use hermes_plugin_sdk::prelude::*;
/// # struct MyPlugin;
/// # impl sdk::Plugin for MyPlugin {
/// #     fn info() -> PluginInfo {
/// #         let mut p = ProviderInfo::new("mine", "Mine", flow::EXTERNAL, api_mode::ANTHROPIC_MESSAGES);
/// #         p.regions.push(RegionInfo { name: "global".into(), portal_base_url: "".into(), inference_base_url: "https://api.mine.example".into() });
/// #         PluginInfo::new("mine", "0.1.0", "Mine", vec![p])
/// #     }
/// #     fn provider(_id: &str, _host: sdk::Host) -> Result<sdk::Capabilities, PluginError> {
/// #         Ok(sdk::Capabilities::new(S))
/// #     }
/// # }
/// # struct S;
/// # impl sdk::StatusImpl for S {
/// #     fn status(&self, _c: Option<&Credential>, _now: i64) -> StatusReport {
/// #         StatusReport::new(status_state::NOT_LOGGED_IN, "not logged in")
/// #     }
/// # }
/// let report = hermes_plugin_sdk::testkit::conformance::<MyPlugin>();
/// assert!(report.passed());
/// ```
///
/// See [`check`] for what is checked, and [`Conformance`] to add your own types to the
/// secrets check.
#[track_caller]
pub fn conformance<P: Plugin>() -> Report {
    Conformance::<P>::new().assert()
}

/// The conformance checks with options; [`conformance`] is `Conformance::new().assert()`.
pub struct Conformance<P> {
    host: FakeHost,
    probes: Vec<DebugProbe>,
    _plugin: PhantomData<fn() -> P>,
}

impl<P: Plugin> Default for Conformance<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Plugin> Conformance<P> {
    /// The checks over a fresh [`FakeHost`] with no HTTP responder (every request fails).
    pub fn new() -> Self {
        Self {
            host: FakeHost::default(),
            probes: Vec::new(),
            _plugin: PhantomData,
        }
    }
    /// Adds one of your own secret-holding types to the secrets check: `render` builds the
    /// object around the secret it is given and returns its `Debug` form, which must not show
    /// the secret. The host cannot see your types; only this check can.
    pub fn debug_of(mut self, name: &str, render: impl Fn(&str) -> String + 'static) -> Self {
        self.probes.push((name.to_string(), Box::new(render)));
        self
    }
    /// Run the checks and return the report, passed or not.
    pub fn report(&self) -> Report {
        check::run(crate::root_module::<P>(), &self.host, &self.probes)
    }
    /// Run the checks and panic with the whole report if any failed.
    #[track_caller]
    pub fn assert(&self) -> Report {
        let report = self.report();
        if !report.passed() {
            panic!("the plugin fails the hermes conformance checks:\n{report}");
        }
        report
    }
}
