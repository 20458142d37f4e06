//! The plugin-side SDK: plain Rust traits for each capability, a [`Host`] handle with typed
//! helpers over [`HostServices`](crate::HostServices), and the glue that [`export_plugin!`]
//! puts around them (panic guards, FFI conversions).
//!
//! Every call from the host into a plugin goes through [`guard`]: a panic becomes a
//! [`kind::PANICKED`](crate::kind::PANICKED) error carrying the panic message, the plugin's
//! panic hook is replaced by a quiet one so nothing is printed to the user's terminal, and the
//! panic is logged through the host (at error level) so that it is visible even where the
//! entry point's return type cannot carry an error (`needs_refresh`).
//!
//! Besides the glue:
//! * [`Host`] and its [`Request`] builder: HTTP with headers, forms, JSON and timeouts;
//! * [`api_key`]: the two pieces every `api_key` provider needs (reading the key the host
//!   passes, and a challenge that completes on the first poll);
//! * [`validate`]: the descriptor rules the host enforces, so authors can run them too;
//! * [`check`]: the conformance checks shared by the testkit and `hermes plugins check`.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RBox, ROption, RResult, RStr, RVec, Tuple2},
};

pub mod check;
pub mod validate;

use crate::{
    kind, log_level, AuthFlow, AuthFlow_TO, Challenge, Credential, HostBox, HttpRequest,
    HttpResponse, PluginError, PluginInfo, PluginMod, PluginModRef, PollOutcome, ProviderHandle,
    RemovalPlan, RemovalStep, RemovalStep_TO, Runtime, RuntimeCredential, RuntimeCredential_TO,
    Status, StatusReport, Status_TO,
};
use abi_stable::prefix_type::PrefixTypeTrait;

/// A plugin: its descriptor and a constructor for each of its providers.
///
/// `info` and `provider` run behind the panic guard; `provider` may be called more than once
/// (once per command that uses the provider), so keep it cheap and free of I/O.
pub trait Plugin {
    /// The plugin's descriptor. Must be cheap and make no I/O.
    fn info() -> PluginInfo;
    /// The capabilities of provider `id`, bound to the host.
    fn provider(id: &str, host: Host) -> Result<Capabilities, PluginError>;
}

/// Signing in (see [`crate::AuthFlow`]).
pub trait AuthFlowImpl: Send + Sync + 'static {
    /// Begin a login.
    fn start(&self, region: &str, options: &str) -> Result<Challenge, PluginError>;
    /// One poll.
    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError>;
}

/// Refresh and runtime resolution (see [`crate::RuntimeCredential`]).
pub trait RuntimeImpl: Send + Sync + 'static {
    /// Whether to refresh now.
    fn needs_refresh(&self, cred: &Credential, now_ms: i64) -> bool;
    /// Refresh.
    fn refresh(&self, cred: &Credential) -> Result<Credential, PluginError>;
    /// Where requests go.
    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError>;
}

/// Status without network (see [`crate::Status`]).
pub trait StatusImpl: Send + Sync + 'static {
    /// The state of a credential.
    fn status(&self, cred: Option<&Credential>, now_ms: i64) -> StatusReport;
}

/// Removal clean-up (see [`crate::RemovalStep`]).
pub trait RemovalImpl: Send + Sync + 'static {
    /// What removing `source` involves.
    fn removal(&self, source: &str) -> RemovalPlan;
}

/// The capabilities a provider implements. Status is mandatory; the rest are optional and
/// absent unless set.
pub struct Capabilities {
    handle: ProviderHandle,
}

impl Capabilities {
    /// A provider with only a status capability.
    pub fn new(status: impl StatusImpl) -> Self {
        Self {
            handle: ProviderHandle {
                auth_flow: ROption::RNone,
                runtime: ROption::RNone,
                status: Status_TO::from_value(Guarded::new(status), TD_Opaque),
                removal: ROption::RNone,
            },
        }
    }
    /// Adds a login flow.
    pub fn with_auth_flow(mut self, flow: impl AuthFlowImpl) -> Self {
        self.handle.auth_flow =
            ROption::RSome(AuthFlow_TO::from_value(Guarded::new(flow), TD_Opaque));
        self
    }
    /// Adds refresh and runtime resolution.
    pub fn with_runtime(mut self, rt: impl RuntimeImpl) -> Self {
        self.handle.runtime = ROption::RSome(RuntimeCredential_TO::from_value(
            Guarded::new(rt),
            TD_Opaque,
        ));
        self
    }
    /// Adds a removal step.
    pub fn with_removal(mut self, removal: impl RemovalImpl) -> Self {
        self.handle.removal =
            ROption::RSome(RemovalStep_TO::from_value(Guarded::new(removal), TD_Opaque));
        self
    }
    /// The FFI handle.
    pub fn into_handle(self) -> ProviderHandle {
        self.handle
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The host a provider is being opened for, so that the capabilities built inside
    /// [`Plugin::provider`] can report their panics to it without the author passing it.
    static OPENING_FOR: RefCell<Option<Host>> = const { RefCell::new(None) };
}

static QUIET_HOOK: Once = Once::new();

thread_local! {
    /// How many guards this thread is inside; panics outside any guard are not the SDK's.
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Replace this library's panic hook with one that records the message of a panic inside a
/// [`guard`] instead of printing it. A `cdylib` carries its own copy of `std`, so this does not
/// touch the host's hook; in a plugin's own tests (where the SDK shares the test's `std`)
/// panics outside a guard, such as failed assertions, still reach the previous hook.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARD_DEPTH.with(Cell::get) == 0 {
                return previous(info);
            }
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{location}")));
        }));
    });
}

/// Run `f`, turning a panic into `on_panic(error)`.
pub fn guard<T>(what: &str, f: impl FnOnce() -> T, on_panic: impl FnOnce(PluginError) -> T) -> T {
    install_quiet_hook();
    GUARD_DEPTH.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARD_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    match result {
        Ok(v) => v,
        Err(_) => {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "unknown panic".to_string());
            on_panic(PluginError::new(
                kind::PANICKED,
                "panicked",
                format!("{PANIC_PREFIX}{what}: {msg}"),
            ))
        }
    }
}

fn guard_result<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> RResult<T, PluginError> {
    guard(what, || f().into(), RResult::RErr)
}

/// The prefix of every message [`guard`] makes from a panic. The conformance checks look for
/// it in fallback values and log lines.
pub const PANIC_PREFIX: &str = "plugin panicked in ";

/// A capability behind the panic guard, with the host to report panics to.
struct Guarded<T> {
    inner: T,
    host: Option<Host>,
}

impl<T> Guarded<T> {
    fn new(inner: T) -> Self {
        let host = OPENING_FOR.with(|h| h.borrow().clone());
        Self { inner, host }
    }

    /// [`guard`], and a log line through the host when it caught a panic.
    fn run<R>(
        &self,
        what: &str,
        f: impl FnOnce(&T) -> R,
        on_panic: impl FnOnce(PluginError) -> R,
    ) -> R {
        guard(
            what,
            || f(&self.inner),
            |e| {
                if let Some(h) = &self.host {
                    h.log(log_level::ERROR, &e.message);
                }
                on_panic(e)
            },
        )
    }

    fn run_result<R>(
        &self,
        what: &str,
        f: impl FnOnce(&T) -> Result<R, PluginError>,
    ) -> RResult<R, PluginError> {
        self.run(what, |t| f(t).into(), RResult::RErr)
    }
}

impl<T: AuthFlowImpl> AuthFlow for Guarded<T> {
    fn start(&self, region: RStr<'_>, options: RStr<'_>) -> RResult<Challenge, PluginError> {
        self.run_result("AuthFlow::start", |t| {
            t.start(region.as_str(), options.as_str())
        })
    }
    fn poll(&self, session: RStr<'_>) -> RResult<PollOutcome, PluginError> {
        self.run_result("AuthFlow::poll", |t| t.poll(session.as_str()))
    }
}

impl<T: RuntimeImpl> RuntimeCredential for Guarded<T> {
    fn needs_refresh(&self, cred: &Credential, now_ms: i64) -> bool {
        // A panicking check says "refresh", and the refresh reports the real error.
        self.run(
            "RuntimeCredential::needs_refresh",
            |t| t.needs_refresh(cred, now_ms),
            |_| true,
        )
    }
    fn refresh(&self, cred: &Credential) -> RResult<Credential, PluginError> {
        self.run_result("RuntimeCredential::refresh", |t| t.refresh(cred))
    }
    fn runtime(&self, cred: &Credential) -> RResult<Runtime, PluginError> {
        self.run_result("RuntimeCredential::runtime", |t| t.runtime(cred))
    }
}

impl<T: StatusImpl> Status for Guarded<T> {
    fn status(&self, cred: ROption<&Credential>, now_ms: i64) -> StatusReport {
        self.run(
            "Status::status",
            |t| t.status(cred.into_option(), now_ms),
            |e| {
                let mut r =
                    StatusReport::new(crate::status_state::NOT_LOGGED_IN, "status unavailable");
                r.problems.push(e.message);
                r
            },
        )
    }
}

impl<T: RemovalImpl> RemovalStep for Guarded<T> {
    fn removal(&self, source: RStr<'_>) -> RemovalPlan {
        self.run(
            "RemovalStep::removal",
            |t| t.removal(source.as_str()),
            |e| RemovalPlan {
                clear_provider_state: false,
                suppress_source: false,
                message: e.message,
            },
        )
    }
}

/// The host's services with typed helpers. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostBox>,
}

impl Host {
    /// Wrap the host's services.
    pub fn new(inner: HostBox) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
    /// Make a request.
    pub fn http(&self, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        self.inner.http(request).into_result()
    }
    /// A request to build and [`send`](Request::send).
    ///
    /// ```
    /// # let fake = hermes_plugin_api::testkit::FakeHost::new(0);
    /// # fake.on_request(|_| hermes_plugin_api::testkit::Reply::json(200, "{}"));
    /// # let host = fake.sdk_host();
    /// let resp = host
    ///     .post("https://api.example.com/oauth/token")
    ///     .header("accept", "application/json")
    ///     .form(&[("grant_type", "refresh_token"), ("refresh_token", "rt-…")])
    ///     .timeout_ms(15_000)
    ///     .send()?;
    /// # assert_eq!(fake.requests()[0].timeout_ms, 15_000);
    /// # Ok::<(), hermes_plugin_api::PluginError>(())
    /// ```
    pub fn request(&self, method: &str, url: &str) -> Request<'_> {
        Request {
            host: self,
            req: HttpRequest {
                method: method.into(),
                url: url.into(),
                headers: RVec::new(),
                body: RVec::new(),
                timeout_ms: 0,
            },
        }
    }
    /// A `GET` request to build.
    pub fn get(&self, url: &str) -> Request<'_> {
        self.request("GET", url)
    }
    /// A `POST` request to build.
    pub fn post(&self, url: &str) -> Request<'_> {
        self.request("POST", url)
    }
    /// `POST` a form (fields in the given order) with extra headers and the host's default
    /// timeout (15 s). For another timeout use [`Host::post`] with
    /// [`Request::timeout_ms`].
    pub fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, PluginError> {
        let mut req = self.post(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.form(fields).send()
    }
    /// The current time, unix ms.
    pub fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
    /// Random bytes.
    pub fn random_bytes(&self, n: usize) -> Vec<u8> {
        self.inner.random_bytes(n as u32).into_vec()
    }
    /// A configuration value (declared URL override env var or `providers.<id>.<key>`).
    pub fn config(&self, key: &str) -> Option<String> {
        self.inner
            .config_get(key.into())
            .into_option()
            .map(|s| s.into_string())
            .filter(|s| !s.is_empty())
    }
    /// Log a line at `level` (one of [`log_level`]). Never log secrets: `hermes plugins check`
    /// plants fake ones and fails a plugin whose log lines contain them.
    pub fn log(&self, level: u32, msg: &str) {
        self.inner.log(level, msg.into());
    }
    /// Log at error level.
    pub fn error(&self, msg: &str) {
        self.log(log_level::ERROR, msg);
    }
    /// Log at warn level.
    pub fn warn(&self, msg: &str) {
        self.log(log_level::WARN, msg);
    }
    /// Log at info level.
    pub fn info(&self, msg: &str) {
        self.log(log_level::INFO, msg);
    }
    /// Log at debug level.
    pub fn debug(&self, msg: &str) {
        self.log(log_level::DEBUG, msg);
    }
}

/// An HTTP request being built; see [`Host::request`]. Nothing is sent until
/// [`send`](Request::send).
#[must_use = "a request does nothing until it is sent"]
pub struct Request<'a> {
    host: &'a Host,
    req: HttpRequest,
}

impl Request<'_> {
    /// Adds a header (sent in the order added).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.req.headers.push(Tuple2(name.into(), value.into()));
        self
    }
    /// An `application/x-www-form-urlencoded` body of `fields`, in order.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(fields).into_bytes())
    }
    /// A JSON body (already serialised).
    pub fn json(self, body: &str) -> Self {
        self.header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
    }
    /// A raw body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.req.body = body.into();
        self
    }
    /// The total timeout in ms (0, the default: the host's 15 s; the host caps it at 120 s).
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.req.timeout_ms = ms;
        self
    }
    /// The request as it will be sent.
    pub fn as_http_request(&self) -> &HttpRequest {
        &self.req
    }
    /// Sends it through the host (allow-list, https rule, size caps apply).
    pub fn send(self) -> Result<HttpResponse, PluginError> {
        self.host.http(self.req)
    }
}

/// Constructors for the outcomes a poll can have besides [`PollOutcome::pending`] and
/// [`PollOutcome::approved`].
impl PollOutcome {
    /// The user (or the provider) refused the sign-in; `message` says why, in one line.
    pub fn denied(message: &str) -> Self {
        Self {
            status: crate::poll_status::DENIED,
            message: message.into(),
            ..Self::pending()
        }
    }
    /// The code expired before it was approved.
    pub fn expired(message: &str) -> Self {
        Self {
            status: crate::poll_status::EXPIRED,
            message: message.into(),
            ..Self::pending()
        }
    }
    /// Keep waiting, but poll at most every `interval_ms` from now on (a `slow_down` answer).
    pub fn slow_down(interval_ms: u64) -> Self {
        Self {
            interval_ms,
            ..Self::pending()
        }
    }
}

/// What every `api_key` provider needs: the key the host passes to [`AuthFlowImpl::start`]
/// (`hermes auth add <provider> --api-key-stdin` sends `{"api_key": "..."}` as `options`), and
/// a challenge that completes on the first poll.
///
/// The flow: `start` checks the key and returns [`api_key::challenge`] with a session naming
/// the key (the session is secret: only the plugin reads it, and `Debug` redacts it); the host
/// shows no URL or code (the challenge has none) and polls once; `poll` returns
/// [`PollOutcome::approved`] with the key as the credential's `access_token`.
pub mod api_key {
    use crate::{kind, Challenge, PluginError};

    /// How long an `api_key` challenge stays valid. The host polls at once, so this only
    /// bounds a session that is never polled.
    pub const CHALLENGE_TTL_MS: i64 = 10 * 60_000;
    /// Longest key accepted.
    pub const MAX_KEY_LEN: usize = 4096;

    /// The `api_key` in start's `options`, trimmed; `Ok(None)` when there is none. Malformed
    /// options, or a key with spaces or control characters (a pasted line with a prompt, two
    /// keys), are [`kind::INVALID_INPUT`] errors whose message never repeats the key.
    pub fn from_options(options: &str) -> Result<Option<String>, PluginError> {
        if options.trim().is_empty() {
            return Ok(None);
        }
        let value: serde_json::Value = serde_json::from_str(options).map_err(|_| {
            PluginError::new(
                kind::INVALID_INPUT,
                "bad_options",
                "the sign-in options are not a JSON object",
            )
        })?;
        let Some(obj) = value.as_object() else {
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "bad_options",
                "the sign-in options are not a JSON object",
            ));
        };
        match obj.get("api_key") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => check(s.trim()).map(|k| Some(k.to_string())),
            Some(_) => Err(PluginError::new(
                kind::INVALID_INPUT,
                "bad_api_key",
                "the API key is not a string",
            )),
        }
    }

    /// Whether `key` looks like a single key: non-empty, at most [`MAX_KEY_LEN`] bytes, no
    /// whitespace or control characters. The error never contains the key.
    pub fn check(key: &str) -> Result<&str, PluginError> {
        let bad = |why: &str| {
            PluginError::new(
                kind::INVALID_INPUT,
                "bad_api_key",
                format!("the API key {why}"),
            )
        };
        if key.is_empty() {
            return Err(bad("is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(bad("is too long"));
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "contains spaces or control characters (paste the key alone)",
            ));
        }
        Ok(key)
    }

    /// A challenge with nothing to show (no URL, no code) that the first poll completes.
    /// `session` is what `poll` needs (usually the key and region); keep it plain text the
    /// plugin can parse back, and never log it.
    pub fn challenge(session: &str, now_ms: i64) -> Challenge {
        Challenge {
            user_code: Default::default(),
            verification_uri: Default::default(),
            expires_at_ms: now_ms.saturating_add(CHALLENGE_TTL_MS),
            interval_ms: 0,
            session: session.into(),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of ordered fields.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

extern "C" fn api_version_entry() -> RStr<'static> {
    RStr::from_str(crate::API_VERSION)
}

extern "C" fn describe_entry<P: Plugin>() -> RResult<PluginInfo, PluginError> {
    guard_result("describe", || Ok(P::info()))
}

extern "C" fn provider_entry<P: Plugin>(
    id: RStr<'_>,
    host: HostBox,
) -> RResult<ProviderHandle, PluginError> {
    let host = Host::new(host);
    OPENING_FOR.with(|h| *h.borrow_mut() = Some(host.clone()));
    let out = guard_result("provider", || {
        P::provider(id.as_str(), host.clone()).map(Capabilities::into_handle)
    });
    OPENING_FOR.with(|h| *h.borrow_mut() = None);
    if let RResult::RErr(e) = &out {
        if e.kind == kind::PANICKED {
            host.error(&e.message);
        }
    }
    out
}

/// The root module for plugin `P`. Used by [`export_plugin!`].
pub fn root_module<P: Plugin>() -> PluginModRef {
    PluginMod {
        api_version: api_version_entry,
        describe: describe_entry::<P>,
        provider: provider_entry::<P>,
    }
    .leak_into_prefix()
}

/// Boxes a value; re-exported so generated code needs no `abi_stable` import of its own.
pub fn rbox<T>(v: T) -> RBox<T> {
    RBox::new(v)
}

/// Export a type implementing [`Plugin`] as this library's hermes plugin.
///
/// The crate must be a `cdylib` and depend on `abi_stable` directly (its export attribute
/// refers to it by absolute path).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The interface version, readable before any layout check.
        #[no_mangle]
        pub extern "C" fn hermes_plugin_api_version() -> *const ::std::os::raw::c_char {
            $crate::API_VERSION_CSTR.as_ptr()
        }

        #[::abi_stable::export_root_module]
        fn hermes_plugin_root_module() -> $crate::PluginModRef {
            $crate::sdk::root_module::<$plugin>()
        }
    };
}
