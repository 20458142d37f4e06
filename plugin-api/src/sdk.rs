//! The plugin-side SDK: plain Rust traits for each capability, a [`Host`] handle with typed
//! helpers over [`HostServices`](crate::HostServices), and the glue that [`export_plugin!`]
//! puts around them (panic guards, FFI conversions).
//!
//! Every call from the host into a plugin goes through [`guard`]: a panic becomes a
//! [`kind::PANICKED`](crate::kind::PANICKED) error carrying the panic message, and the plugin's
//! panic hook is replaced by a quiet one so nothing is printed to the user's terminal.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec, Tuple2},
};

use crate::{
    kind, log_level, AuthFlow, AuthFlow_TO, Challenge, Credential, HostBox, HttpRequest,
    HttpResponse, PluginError, PluginInfo, PluginMod, PluginModRef, PollOutcome, ProviderHandle,
    RemovalPlan, RemovalStep, RemovalStep_TO, Runtime, RuntimeCredential, RuntimeCredential_TO,
    Status, StatusReport, Status_TO,
};
use abi_stable::prefix_type::PrefixTypeTrait;

/// A plugin: its descriptor and a constructor for each of its providers.
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
                status: Status_TO::from_value(Guarded(status), TD_Opaque),
                removal: ROption::RNone,
            },
        }
    }
    /// Adds a login flow.
    pub fn with_auth_flow(mut self, flow: impl AuthFlowImpl) -> Self {
        self.handle.auth_flow = ROption::RSome(AuthFlow_TO::from_value(Guarded(flow), TD_Opaque));
        self
    }
    /// Adds refresh and runtime resolution.
    pub fn with_runtime(mut self, rt: impl RuntimeImpl) -> Self {
        self.handle.runtime =
            ROption::RSome(RuntimeCredential_TO::from_value(Guarded(rt), TD_Opaque));
        self
    }
    /// Adds a removal step.
    pub fn with_removal(mut self, removal: impl RemovalImpl) -> Self {
        self.handle.removal =
            ROption::RSome(RemovalStep_TO::from_value(Guarded(removal), TD_Opaque));
        self
    }
    /// The FFI handle.
    pub fn into_handle(self) -> ProviderHandle {
        self.handle
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static QUIET_HOOK: Once = Once::new();

/// Replace this library's panic hook with one that records the message instead of printing
/// it. A `cdylib` carries its own copy of `std`, so this does not touch the host's hook.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
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
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "unknown panic".to_string());
            on_panic(PluginError::new(
                kind::PANICKED,
                "panicked",
                format!("plugin panicked in {what}: {msg}"),
            ))
        }
    }
}

fn guard_result<T>(what: &str, f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    guard(what, || f().into(), RResult::RErr)
}

struct Guarded<T>(T);

impl<T: AuthFlowImpl> AuthFlow for Guarded<T> {
    fn start(&self, region: RStr<'_>, options: RStr<'_>) -> RResult<Challenge, PluginError> {
        guard_result("AuthFlow::start", || self.0.start(region.as_str(), options.as_str()))
    }
    fn poll(&self, session: RStr<'_>) -> RResult<PollOutcome, PluginError> {
        guard_result("AuthFlow::poll", || self.0.poll(session.as_str()))
    }
}

impl<T: RuntimeImpl> RuntimeCredential for Guarded<T> {
    fn needs_refresh(&self, cred: &Credential, now_ms: i64) -> bool {
        // A panicking check says "refresh", and the refresh reports the real error.
        guard("RuntimeCredential::needs_refresh", || self.0.needs_refresh(cred, now_ms), |_| true)
    }
    fn refresh(&self, cred: &Credential) -> RResult<Credential, PluginError> {
        guard_result("RuntimeCredential::refresh", || self.0.refresh(cred))
    }
    fn runtime(&self, cred: &Credential) -> RResult<Runtime, PluginError> {
        guard_result("RuntimeCredential::runtime", || self.0.runtime(cred))
    }
}

impl<T: StatusImpl> Status for Guarded<T> {
    fn status(&self, cred: ROption<&Credential>, now_ms: i64) -> StatusReport {
        guard(
            "Status::status",
            || self.0.status(cred.into_option(), now_ms),
            |e| {
                let mut r = StatusReport::new(crate::status_state::NOT_LOGGED_IN, "status unavailable");
                r.problems.push(e.message);
                r
            },
        )
    }
}

impl<T: RemovalImpl> RemovalStep for Guarded<T> {
    fn removal(&self, source: RStr<'_>) -> RemovalPlan {
        guard(
            "RemovalStep::removal",
            || self.0.removal(source.as_str()),
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
        Self { inner: Arc::new(inner) }
    }
    /// Make a request.
    pub fn http(&self, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        self.inner.http(request).into_result()
    }
    /// `POST` a form (fields in the given order) with extra headers.
    pub fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, PluginError> {
        let mut hs: RVec<Tuple2<RString, RString>> = headers
            .iter()
            .map(|(k, v)| Tuple2(RString::from(*k), RString::from(*v)))
            .collect();
        hs.push(Tuple2(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        self.http(HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: hs,
            body: form_encode(fields).into_bytes().into(),
            timeout_ms: 0,
        })
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
    /// Log at debug level.
    pub fn debug(&self, msg: &str) {
        self.inner.log(log_level::DEBUG, msg.into());
    }
    /// Log at warn level.
    pub fn warn(&self, msg: &str) {
        self.inner.log(log_level::WARN, msg.into());
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
    guard_result("provider", || {
        P::provider(id.as_str(), Host::new(host)).map(Capabilities::into_handle)
    })
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
