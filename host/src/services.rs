//! The services plugins call ([`HostServices`]): HTTP through [`crate::net`] under the
//! provider's [`Policy`], the clock, randomness, logging and configuration values. A panic
//! in a service is caught here and becomes an error (or an empty answer), never an unwind
//! across the boundary.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use hermes_plugin_api::{
    kind, log_level, HostBox, HostServices, HostServices_TO, HttpRequest, HttpResponse, PluginError,
};

use crate::config::Env;
use crate::net::{http_blocking, Policy, DEFAULT_TIMEOUT, MAX_TIMEOUT};
use crate::output::Output;
use crate::plugins::ProviderDesc;

/// The deadline of every request a plugin makes while it refreshes a token, whatever it asked
/// for. The server rotates the token pair when it answers, so a refresh abandoned while its
/// answer can still arrive throws away the only copy of the new refresh token: the refresh
/// waits as long as a server can reasonably take, independently of interactive timeouts.
pub const REFRESH_DEADLINE: Duration = Duration::from_secs(120);

thread_local! {
    static REFRESHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While alive, the plugin requests made on this thread are token refreshes and get
/// [`REFRESH_DEADLINE`]. The refresh coordinator holds one around `RuntimeCredential::refresh`
/// (plugins call host services synchronously, on the calling thread).
pub struct RefreshScope {
    was: bool,
}

impl RefreshScope {
    /// Mark this thread as refreshing.
    pub fn enter() -> RefreshScope {
        RefreshScope {
            was: REFRESHING.with(|r| r.replace(true)),
        }
    }
}

impl Drop for RefreshScope {
    fn drop(&mut self) {
        REFRESHING.with(|r| r.set(self.was));
    }
}

/// The timeout a plugin request gets: the refresh deadline inside a [`RefreshScope`];
/// otherwise what it asked for (15 s when nothing), at most [`MAX_TIMEOUT`] and at most the
/// configured interactive timeout.
fn effective_timeout_ms(asked_ms: u64, interactive_cap: Option<Duration>) -> u64 {
    if REFRESHING.with(|r| r.get()) {
        return REFRESH_DEADLINE.as_millis() as u64;
    }
    let asked = match asked_ms {
        0 => DEFAULT_TIMEOUT,
        ms => Duration::from_millis(ms).min(MAX_TIMEOUT),
    };
    let t = match interactive_cap {
        Some(cap) => asked.min(cap),
        None => asked,
    };
    (t.as_millis() as u64).max(1)
}
#[derive(Clone)]
pub struct ProviderServices {
    policy: Policy,
    config: Arc<BTreeMap<String, String>>,
    out: Output,
    clock: crate::timefmt::Clock,
    /// `HERMES_HTTP_TIMEOUT_MS`, if set.
    interactive_timeout: Option<Duration>,
}

impl ProviderServices {
    /// Services for `desc`: its allow-list, its declared URL overrides from the environment,
    /// and its configuration values.
    pub fn new(
        desc: &ProviderDesc,
        env: &Env,
        config: BTreeMap<String, String>,
        out: Output,
    ) -> Self {
        let mut values = config;
        // Only variables the plugin declared (URL overrides, credential variables) reach it.
        let declared = desc
            .url_overrides
            .iter()
            .map(|o| &o.env)
            .chain(&desc.credential_env);
        for name in declared {
            if let Some(v) = env.var(name) {
                values.insert(name.clone(), v.to_string());
            }
        }
        ProviderServices {
            policy: Policy::of(desc).with_configured(desc, &values),
            config: Arc::new(values),
            out,
            clock: crate::timefmt::system_clock(),
            interactive_timeout: env.http_timeout,
        }
    }
    /// Use `clock` for `now_ms` (tests that age tokens without sleeping).
    pub fn with_clock(mut self, clock: crate::timefmt::Clock) -> Self {
        self.clock = clock;
        self
    }
    /// The request policy (for the host's own requests on this provider's behalf).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    /// The object handed to the plugin across the ABI.
    pub fn into_box(self) -> HostBox {
        HostServices_TO::from_value(self, TD_Opaque)
    }
    fn guard<T>(&self, what: &str, f: impl FnOnce() -> T, fallback: impl FnOnce() -> T) -> T {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
            self.out
                .warn(&format!("internal error in host service {what}"));
            fallback()
        })
    }
}

impl HostServices for ProviderServices {
    fn http(&self, mut request: HttpRequest) -> RResult<HttpResponse, PluginError> {
        request.timeout_ms = effective_timeout_ms(request.timeout_ms, self.interactive_timeout);
        // Each request (and redirect hop) is logged by `log_request`.
        self.guard(
            "http",
            || http_blocking(&self.policy, request),
            || {
                Err(PluginError::new(
                    kind::BUG,
                    "host_panic",
                    "internal error in the host's HTTP service",
                ))
            },
        )
        .into()
    }
    fn now_ms(&self) -> i64 {
        (self.clock)()
    }
    fn random_bytes(&self, n: u32) -> RVec<u8> {
        let mut buf = vec![0u8; (n as usize).min(1 << 20)];
        if getrandom::fill(&mut buf).is_err() {
            // Without an OS random source nothing secure can be made; an empty answer makes
            // the plugin fail loudly instead of using predictable bytes.
            return RVec::new();
        }
        buf.into()
    }
    fn log(&self, level: u32, message: RStr<'_>) {
        let msg = format!(
            "[{}] {}",
            self.policy.provider,
            crate::text::line(message.as_str(), 500)
        );
        match level {
            log_level::ERROR | log_level::WARN => self.out.log(1, &msg),
            log_level::INFO => self.out.log(1, &msg),
            log_level::DEBUG => self.out.log(2, &msg),
            _ => self.out.log(3, &msg),
        }
    }
    fn config_get(&self, key: RStr<'_>) -> ROption<RString> {
        self.config
            .get(key.as_str())
            .map(|v| RString::from(v.as_str()))
            .into()
    }
}
