//! A plugin as plain Rust: the [`Plugin`] trait and one trait per capability, and the glue that
//! turns them into the FFI objects of the root module ([`root_module`]).
//!
//! Every call from the host into a plugin goes through [`guard`]: a panic becomes a
//! [`kind::PANICKED`] error carrying the panic message, the plugin's panic hook is replaced by a
//! quiet one so nothing is printed to the user's terminal, and the panic is logged through the
//! host (at error level) so that it is visible even where the entry point's return type cannot
//! carry an error (`needs_refresh`).

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RStr},
};

use abi_stable::prefix_type::PrefixTypeTrait;
use hermes_plugin_api::{
    AuthFlow, AuthFlow_TO, Challenge, Credential, HostBox, PluginError, PluginInfo, PluginMod,
    PluginModRef, PollOutcome, ProviderHandle, RemovalPlan, RemovalStep, RemovalStep_TO, Runtime,
    RuntimeCredential, RuntimeCredential_TO, Status, Status_TO, StatusReport, kind, log_level,
    status_state,
};

use crate::Host;

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

/// Signing in (see [`hermes_plugin_api::AuthFlow`]).
pub trait AuthFlowImpl: Send + Sync + 'static {
    /// Begin a login in `region` (empty: the default) with the JSON `options` the host passes.
    fn start(&self, region: &str, options: &str) -> Result<Challenge, PluginError>;
    /// One poll of the login `start` began; `session` is the challenge's.
    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError>;
}

/// Refresh and runtime resolution (see [`hermes_plugin_api::RuntimeCredential`]).
pub trait RuntimeImpl: Send + Sync + 'static {
    /// Whether to refresh before using `cred` at `now_ms` (a panic here counts as yes).
    fn needs_refresh(&self, cred: &Credential, now_ms: i64) -> bool;
    /// A fresh credential (network); terminal failures set `relogin_required`.
    fn refresh(&self, cred: &Credential) -> Result<Credential, PluginError>;
    /// Where requests with `cred` go and how they present it.
    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError>;
}

/// Status without network (see [`hermes_plugin_api::Status`]).
pub trait StatusImpl: Send + Sync + 'static {
    /// The state of `cred` (or of having none) at `now_ms`, without network.
    fn status(&self, cred: Option<&Credential>, now_ms: i64) -> StatusReport;
}

/// Removal clean-up (see [`hermes_plugin_api::RemovalStep`]).
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
    /// Adds a login flow (`hermes auth add`, the dashboard).
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
    /// Adds a step the host asks before removing a credential source.
    pub fn with_removal(mut self, removal: impl RemovalImpl) -> Self {
        self.handle.removal =
            ROption::RSome(RemovalStep_TO::from_value(Guarded::new(removal), TD_Opaque));
        self
    }
    /// The FFI objects, each behind the panic guard, as the root module returns them.
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
                let mut r = StatusReport::new(status_state::NOT_LOGGED_IN, "status unavailable");
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

extern "C" fn api_version_entry() -> RStr<'static> {
    RStr::from_str(hermes_plugin_api::API_VERSION)
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
    if let RResult::RErr(e) = &out
        && e.kind == kind::PANICKED
    {
        host.error(&e.message);
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
