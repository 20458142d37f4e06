//! The stable interface between `hermes` and its provider plugins: the types whose layout is
//! frozen for the whole 1.x series, and the rules a plugin's descriptor must follow.
//!
//! This crate is the contract and nothing else. Plugins are written with the SDK,
//! `hermes-plugin-sdk`, which re-exports all of it and adds the plain-Rust capability traits,
//! the `export_plugin!` macro, the panic guards, the conformance checks and a fake host for
//! tests. A host depends on this crate for the types and on the SDK only for the checks it runs.
//!
//! A provider plugin is a `cdylib` that exports one root module ([`PluginMod`]) and the plain C
//! symbol [`API_VERSION_SYMBOL`]. The host loads it at run time with `abi_stable`, checks
//! [`API_VERSION`] with semver *before* the layout check, and then talks to it only through the
//! types in this crate.
//!
//! # The contract
//!
//! * [`PluginInfo`] / [`ProviderInfo`] describe a plugin as **data**: ids, aliases, flow kind,
//!   api mode, regions, models, the hosts it may reach and the env vars that override its URLs.
//!   The host does everything generic (registry, aliases, doctor, the model catalog) from it
//!   without calling plugin code. [`validate`] holds the rules a descriptor must follow; the
//!   host refuses a plugin that breaks them.
//! * A provider exposes up to four capabilities, each a `#[sabi_trait]` object:
//!   [`AuthFlow`], [`RuntimeCredential`], [`Status`] (mandatory) and [`RemovalStep`].
//!   A capability a provider does not have is `RNone`, never a stub.
//! * All I/O goes through [`HostServices`], which the host implements: HTTP (with the host's
//!   allow-list, https rule, timeouts and size caps), the clock, randomness, logging and
//!   configuration. Plugins stay synchronous and have no async runtime of their own.
//! * Errors cross the boundary as [`PluginError`], whose `kind` is a `u32` ([`kind`]) so that
//!   new kinds can be added without breaking old hosts.
//!
//! # Evolution rules
//!
//! The interface is versioned on its own ([`API_VERSION`], 1.0.0), independent of the host's
//! release number. Within 1.x the layout of every type in this crate is frozen: no field and
//! no trait method is added, removed or reordered, and no type moves to another crate (the
//! layout check compares the crate each type comes from). Growth goes into the JSON `extension`
//! fields (unknown keys are ignored by both sides). A host accepts any plugin whose interface
//! major version equals its own; a new major is a new, incompatible ABI.

#![deny(missing_docs)]
// abi_stable's `#[sabi_trait]` expands to impls of foreign traits inside functions.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec, Tuple2},
    StableAbi,
};

pub mod validate;

pub use abi_stable;

/// The version of this interface. Plugins record it at build time; the host checks it with
/// semver before anything else.
pub const API_VERSION: &str = "1.0.0";

/// [`API_VERSION`] as a C string, exported by every plugin as `hermes_plugin_api_version` so
/// the host can read it before the layout check.
pub const API_VERSION_CSTR: &std::ffi::CStr = c"1.0.0";

/// A fingerprint of this interface's source (FNV-1a of this file). A host records it beside
/// each plugin file it has layout-checked, so that it can skip repeating the check while
/// neither the file nor the interface changed.
pub const INTERFACE_FINGERPRINT: u64 = fnv1a(include_bytes!("lib.rs"));

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// The name of the plain C symbol holding the interface version.
pub const API_VERSION_SYMBOL: &[u8] = b"hermes_plugin_api_version\0";

/// The constants and data types a host or plugin names most often, and the `abi_stable`
/// containers they are made of.
pub mod prelude {
    pub use crate::{
        api_mode, auth_scheme, flow, kind, poll_status, status_state, Challenge, Credential,
        HttpRequest, HttpResponse, ModelInfo, PluginError, PluginInfo, PollOutcome, ProviderInfo,
        RegionInfo, RemovalPlan, Runtime, StatusReport, UrlOverride,
    };
    pub use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec, Tuple2};
}

/// Error kinds carried by [`PluginError::kind`]. Unknown values must be treated like `TERMINAL`.
pub mod kind {
    /// Worth retrying later: timeouts, dropped connections, 429, 5xx, malformed bodies.
    pub const TRANSIENT: u32 = 1;
    /// The operation failed for good; retrying will not help.
    pub const TERMINAL: u32 = 2;
    /// The caller passed something the plugin cannot use.
    pub const INVALID_INPUT: u32 = 3;
    /// A bug in the plugin (a broken invariant it detected itself).
    pub const BUG: u32 = 4;
    /// The plugin panicked; the SDK caught it at the boundary.
    pub const PANICKED: u32 = 5;
    /// The capability or option is not supported by this provider.
    pub const UNSUPPORTED: u32 = 6;
    /// The host refused the request (allow-list, https rule, size cap).
    pub const REFUSED: u32 = 7;

    /// A stable lower-case name for a kind, for messages and JSON.
    pub fn name(kind: u32) -> &'static str {
        match kind {
            TRANSIENT => "transient",
            TERMINAL => "terminal",
            INVALID_INPUT => "invalid_input",
            BUG => "bug",
            PANICKED => "panicked",
            UNSUPPORTED => "unsupported",
            REFUSED => "refused",
            _ => "unknown",
        }
    }
}

/// Login flow kinds ([`ProviderInfo::flow`]).
pub mod flow {
    /// Device code: the user opens a URL and enters a code; the host polls.
    pub const DEVICE_CODE: &str = "device_code";
    /// A static API key supplied by the user.
    pub const API_KEY: &str = "api_key";
    /// Authorization code + PKCE with a loopback redirect.
    pub const PKCE_REDIRECT: &str = "pkce_redirect";
    /// Credentials managed by another tool.
    pub const EXTERNAL: &str = "external";
    /// Every flow kind this interface version knows.
    pub const ALL: &[&str] = &[DEVICE_CODE, API_KEY, PKCE_REDIRECT, EXTERNAL];
}

/// Inference API modes ([`ProviderInfo::api_mode`]).
pub mod api_mode {
    /// The Anthropic Messages API (`POST {base}/v1/messages`).
    pub const ANTHROPIC_MESSAGES: &str = "anthropic_messages";
    /// The OpenAI chat completions API.
    pub const CHAT_COMPLETIONS: &str = "chat_completions";
    /// Every api mode this interface version knows.
    pub const ALL: &[&str] = &[ANTHROPIC_MESSAGES, CHAT_COMPLETIONS];
}

/// How a [`Runtime`] presents its secret.
pub mod auth_scheme {
    /// `Authorization: Bearer <token>`.
    pub const BEARER: u32 = 1;
    /// `x-api-key: <token>`.
    pub const X_API_KEY: u32 = 2;
}

/// [`PollOutcome::status`] values.
pub mod poll_status {
    /// Not yet approved; poll again after the interval.
    pub const PENDING: u32 = 1;
    /// Approved; the outcome carries the credential.
    pub const APPROVED: u32 = 2;
    /// The user denied access; the host stops polling and saves nothing.
    pub const DENIED: u32 = 3;
    /// The code expired before approval.
    pub const EXPIRED: u32 = 4;
}

/// [`StatusReport::state`] values.
pub mod status_state {
    /// No credential, or one with nothing usable in it.
    pub const NOT_LOGGED_IN: u32 = 1;
    /// A credential usable as it is, without a refresh.
    pub const VALID: u32 = 2;
    /// The access token expired but will be refreshed on next use.
    pub const REFRESH_ON_NEXT_USE: u32 = 3;
    /// The login is dead; the user must sign in again.
    pub const RELOGIN_REQUIRED: u32 = 4;
}

/// An error crossing the plugin boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    /// A stable machine-readable code, e.g. `refresh_failed`.
    pub code: RString,
    /// One line for people; never a secret (the host prints it).
    pub message: RString,
    /// One of [`kind`].
    pub kind: u32,
    /// The credential is dead and the user must sign in again.
    pub relogin_required: bool,
}

impl PluginError {
    /// An error of `kind` (one of [`kind`]) that does not ask for a relogin.
    pub fn new(kind: u32, code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: RString::from(message.into()),
            kind,
            relogin_required: false,
        }
    }
    /// A [`kind::TRANSIENT`] error: the host keeps the login and may retry later.
    pub fn transient(code: &str, message: impl Into<String>) -> Self {
        Self::new(kind::TRANSIENT, code, message)
    }
    /// A [`kind::TERMINAL`] error that leaves the login in place.
    pub fn terminal(code: &str, message: impl Into<String>) -> Self {
        Self::new(kind::TERMINAL, code, message)
    }
    /// A terminal error after which the user must sign in again.
    pub fn relogin(code: &str, message: impl Into<String>) -> Self {
        Self {
            relogin_required: true,
            ..Self::terminal(code, message)
        }
    }
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == kind::TRANSIENT
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

/// A region of a provider, with its base URLs (a provider serving China from other hosts has
/// two).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region name, e.g. `global`.
    pub name: RString,
    /// Base URL of the login portal (empty when the flow has none).
    pub portal_base_url: RString,
    /// Base URL of the inference API.
    pub inference_base_url: RString,
}

/// A model offered by a provider, as `hermes model` lists it and the catalog sizes requests.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Model id exactly as sent to the API (matched case-insensitively when a user names it).
    pub id: RString,
    /// Context window in tokens, as `hermes model` shows it.
    pub context_window: u64,
    /// The most tokens one answer may have; `hermes chat` asks for no more unless told to.
    pub max_output: u64,
}

/// An environment variable that overrides one of the provider's URLs.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct UrlOverride {
    /// The variable's name, e.g. `MINIMAX_PORTAL_BASE_URL`.
    pub env: RString,
    /// What it overrides: `portal` or `inference`.
    pub target: RString,
}

/// A provider, described as data.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Canonical id, lower-case `[a-z0-9-]`, unique across all plugins.
    pub id: RString,
    /// Name shown to people in status lines and the dashboard, e.g. `MiniMax (OAuth)`.
    pub display_name: RString,
    /// Other names accepted wherever a provider is named (case-insensitive).
    pub aliases: RVec<RString>,
    /// One of [`flow`].
    pub flow: RString,
    /// One of [`api_mode`]. The host always uses this, whatever configuration says.
    pub api_mode: RString,
    /// Regions; the first is the default.
    pub regions: RVec<RegionInfo>,
    /// Models offered, in the order `hermes model` lists them; the first is the default.
    pub models: RVec<ModelInfo>,
    /// A small, fast model for auxiliary tasks (empty when none).
    pub aux_model: RString,
    /// Where users read about this provider.
    pub docs_url: RString,
    /// Hosts the plugin may reach (exact names). Loopback is always allowed.
    pub allowed_hosts: RVec<RString>,
    /// Env vars that override URLs; the host also lets the user set them in `config.yaml`.
    pub url_overrides: RVec<UrlOverride>,
    /// Refresh a credential when this many milliseconds of life remain.
    pub refresh_skew_ms: u64,
    /// Forward-compatible extension data (a JSON object, or empty).
    pub extension: RString,
}

impl ProviderInfo {
    /// A descriptor with the required fields; the rest empty.
    pub fn new(id: &str, display_name: &str, flow: &str, api_mode: &str) -> Self {
        Self {
            id: id.into(),
            display_name: display_name.into(),
            aliases: RVec::new(),
            flow: flow.into(),
            api_mode: api_mode.into(),
            regions: RVec::new(),
            models: RVec::new(),
            aux_model: RString::new(),
            docs_url: RString::new(),
            allowed_hosts: RVec::new(),
            url_overrides: RVec::new(),
            refresh_skew_ms: 60_000,
            extension: RString::new(),
        }
    }

    /// The region with this name (case-insensitive).
    pub fn region(&self, name: &str) -> Option<&RegionInfo> {
        self.regions
            .iter()
            .find(|r| r.name.as_str().eq_ignore_ascii_case(name))
    }
}

/// A plugin and the providers it brings.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// Plugin id (also the install directory name).
    pub id: RString,
    /// The plugin's own version (semver).
    pub version: RString,
    /// One line about the plugin, shown by `hermes plugins info`.
    pub description: RString,
    /// Providers in this plugin (at least one); ids are unique across all installed plugins.
    pub providers: RVec<ProviderInfo>,
    /// Forward-compatible extension data (a JSON object, or empty).
    pub extension: RString,
}

impl PluginInfo {
    /// A plugin descriptor without an extension.
    pub fn new(id: &str, version: &str, description: &str, providers: Vec<ProviderInfo>) -> Self {
        Self {
            id: id.into(),
            version: version.into(),
            description: description.into(),
            providers: providers.into(),
            extension: RString::new(),
        }
    }
}

/// A stored credential as the host hands it to a plugin and takes it back.
///
/// The host knows the typed fields; `state` is the plugin's own record (a JSON object), which
/// the host stores beside them, plus the host's read-only facts under [`HOST_STATE_KEY`].
/// `Debug` never shows the secrets.
#[repr(C)]
#[derive(StableAbi, Clone, Default, PartialEq, Eq)]
pub struct Credential {
    /// The access token or API key (secret).
    pub access_token: RString,
    /// The refresh token (secret; empty when none).
    pub refresh_token: RString,
    /// Access token expiry in unix milliseconds; 0 when it does not expire.
    pub expires_at_ms: i64,
    /// Region name, one of the provider's [`RegionInfo::name`]s (may be empty: the default).
    pub region: RString,
    /// Base URL inference requests go to (may be empty: the region's).
    pub base_url: RString,
    /// A human label for this login (may be empty).
    pub label: RString,
    /// The plugin's own state, a JSON object (may be empty).
    pub state: RString,
}

/// The key under which the host adds its own facts about a login to [`Credential::state`]
/// when it hands a credential to a plugin: an object with `source` (`oauth` for the main
/// login, `manual:<provider>` for an extra account) and, when the login was signed out by a
/// dead refresh token, `last_auth_error` (`code`, `message`, `relogin_required`, `at`).
///
/// Everything else in `state` is the plugin's own: the host never puts its own keys there
/// (tokens, expiry, label, pool bookkeeping), and it ignores this key and its own keys in the
/// `state` a plugin returns.
pub const HOST_STATE_KEY: &str = "_hermes";

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_token", &mask(&self.access_token))
            .field("refresh_token", &mask(&self.refresh_token))
            .field("expires_at_ms", &self.expires_at_ms)
            .field("region", &self.region)
            .field("base_url", &self.base_url)
            .field("label", &self.label)
            .field("state", &"<redacted>")
            .finish()
    }
}

/// The masked form of a secret for people: first 3 and last 4 characters, or `…` alone when
/// it is too short to show any of it safely.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    if chars.len() < 12 {
        return "…".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A started login, shown to the user while the host polls.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The code the user types (device-code flows).
    pub user_code: RString,
    /// Where the user goes to approve (empty for flows with nothing to show).
    pub verification_uri: RString,
    /// When the code stops working, unix ms.
    pub expires_at_ms: i64,
    /// How long to wait between polls, ms.
    pub interval_ms: u64,
    /// Opaque state only the plugin reads (holds the PKCE verifier: secret).
    pub session: RString,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("interval_ms", &self.interval_ms)
            .field("session", &"<redacted>")
            .finish()
    }
}

/// The result of one poll: still pending, approved with a credential, denied or expired.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PollOutcome {
    /// One of [`poll_status`].
    pub status: u32,
    /// The new credential when approved.
    pub credential: ROption<Credential>,
    /// A message from the provider to show the user (may be empty).
    pub message: RString,
    /// A new poll interval in ms, or 0 to keep the current one.
    pub interval_ms: u64,
}

impl PollOutcome {
    /// Not approved yet: the host polls again after the challenge's interval.
    pub fn pending() -> Self {
        Self {
            status: poll_status::PENDING,
            credential: ROption::RNone,
            message: RString::new(),
            interval_ms: 0,
        }
    }
    /// Approved: the host stores `cred` and shows `message` (may be empty).
    pub fn approved(cred: Credential, message: &str) -> Self {
        Self {
            status: poll_status::APPROVED,
            credential: ROption::RSome(cred),
            message: message.into(),
            interval_ms: 0,
        }
    }
    /// The user (or the provider) refused the sign-in; `message` says why, in one line.
    pub fn denied(message: &str) -> Self {
        Self {
            status: poll_status::DENIED,
            message: message.into(),
            ..Self::pending()
        }
    }
    /// The code expired before it was approved.
    pub fn expired(message: &str) -> Self {
        Self {
            status: poll_status::EXPIRED,
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

/// Where and how requests with a credential go.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// Base URL of the inference API.
    pub base_url: RString,
    /// One of [`auth_scheme`].
    pub auth_scheme: u32,
    /// The secret to present (access token or key).
    pub secret: RString,
    /// Extra headers for every request (name, value).
    pub extra_headers: RVec<Tuple2<RString, RString>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("base_url", &self.base_url)
            .field("auth_scheme", &self.auth_scheme)
            .field("secret", &mask(&self.secret))
            .field("extra_headers", &self.extra_headers)
            .finish()
    }
}

/// What a provider says about a credential, without any network call.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    /// One of [`status_state`].
    pub state: u32,
    /// Region of the credential (may be empty).
    pub region: RString,
    /// Access token expiry, unix ms (0 when unknown or none).
    pub expires_at_ms: i64,
    /// One line, e.g. `logged in, region global`.
    pub summary: RString,
    /// Problems, one line each, each with the command that fixes it.
    pub problems: RVec<RString>,
}

impl StatusReport {
    /// A report with a state and a summary.
    pub fn new(state: u32, summary: &str) -> Self {
        Self {
            state,
            region: RString::new(),
            expires_at_ms: 0,
            summary: summary.into(),
            problems: RVec::new(),
        }
    }
    /// Whether the credential can be used (possibly after a refresh).
    pub fn logged_in(&self) -> bool {
        self.state == status_state::VALID || self.state == status_state::REFRESH_ON_NEXT_USE
    }
}

/// What the host must do when a credential source is removed.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct RemovalPlan {
    /// Clear the provider's stored login (`providers.<id>` in `auth.json`).
    pub clear_provider_state: bool,
    /// Record the source as suppressed so that it is not seeded again.
    pub suppress_source: bool,
    /// A message for the user (may be empty).
    pub message: RString,
}

/// An HTTP request a plugin asks the host to make.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: RString,
    /// Absolute URL. https, or http to a loopback host.
    pub url: RString,
    /// Headers (name, value), sent in this order (may hold secrets: `Debug` shows only the count).
    pub headers: RVec<Tuple2<RString, RString>>,
    /// Body bytes (may hold secrets: `Debug` shows only the length).
    pub body: RVec<u8>,
    /// Total timeout in ms (0: the host's default, 15 s).
    pub timeout_ms: u64,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies and headers may carry secrets: never shown.
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The host's answer to an [`HttpRequest`].
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code of the final response (after redirects).
    pub status: u16,
    /// Headers (lower-case name, value).
    pub headers: RVec<Tuple2<RString, RString>>,
    /// Body bytes, at most the host's cap.
    pub body: RVec<u8>,
    /// The body was longer than the cap and was cut.
    pub truncated: bool,
    /// The URL of the final response after redirects.
    pub final_url: RString,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("truncated", &self.truncated)
            .field("final_url", &self.final_url)
            .finish()
    }
}

/// Log levels for [`HostServices::log`].
pub mod log_level {
    /// Something failed; the host shows it with `-v`, and the SDK uses it for caught panics.
    pub const ERROR: u32 = 1;
    /// Something the user may want to know about, though the operation went on.
    pub const WARN: u32 = 2;
    /// Progress worth a line with `-v`.
    pub const INFO: u32 = 3;
    /// Detail for debugging a plugin, shown with `-vv`.
    pub const DEBUG: u32 = 4;
    /// Everything else, shown with `-vvv`.
    pub const TRACE: u32 = 5;
}

/// Services the host provides to a provider. Every method is safe to call from any thread.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Make an HTTP request under the host's rules (allow-list, https, timeout, size cap).
    fn http(&self, request: HttpRequest) -> RResult<HttpResponse, PluginError>;
    /// The current time, unix ms (injectable in tests).
    fn now_ms(&self) -> i64;
    /// `n` cryptographically random bytes (seeded in tests).
    fn random_bytes(&self, n: u32) -> RVec<u8>;
    /// Log a line; the host decides where it goes and never shows it unasked.
    fn log(&self, level: u32, message: RStr<'_>);
    /// A configuration value for this provider: one of its declared URL override env vars, or a
    /// key under `providers.<id>` in `config.yaml`.
    #[sabi(last_prefix_field)]
    fn config_get(&self, key: RStr<'_>) -> ROption<RString>;
}

/// The host's services as a provider receives them.
pub type HostBox = HostServices_TO<'static, RBox<()>>;

/// Signing in: `start` makes a [`Challenge`], which the host shows and then polls.
#[sabi_trait]
pub trait AuthFlow: Send + Sync {
    /// Begin a login in `region` (empty: the default). `options` is a JSON object (may be
    /// empty); for `api_key` flows it carries `{"api_key": "..."}`.
    fn start(&self, region: RStr<'_>, options: RStr<'_>) -> RResult<Challenge, PluginError>;
    /// One poll of a started login. Returns an error of code `timeout` once the challenge's
    /// deadline has passed.
    #[sabi(last_prefix_field)]
    fn poll(&self, session: RStr<'_>) -> RResult<PollOutcome, PluginError>;
}

/// Keeping a credential usable.
#[sabi_trait]
pub trait RuntimeCredential: Send + Sync {
    /// Whether the credential should be refreshed now.
    fn needs_refresh(&self, credential: &Credential, now_ms: i64) -> bool;
    /// Refresh the credential (network). Terminal failures set `relogin_required`.
    fn refresh(&self, credential: &Credential) -> RResult<Credential, PluginError>;
    /// Where and how to send requests with it.
    #[sabi(last_prefix_field)]
    fn runtime(&self, credential: &Credential) -> RResult<Runtime, PluginError>;
}

/// Reporting on a credential, with no network.
#[sabi_trait]
pub trait Status: Send + Sync {
    /// The state of `credential` (or of having none) at `now_ms`.
    #[sabi(last_prefix_field)]
    fn status(&self, credential: ROption<&Credential>, now_ms: i64) -> StatusReport;
}

/// Cleaning up when a credential source is removed.
#[sabi_trait]
pub trait RemovalStep: Send + Sync {
    /// What removing `source` (e.g. `oauth`, `manual:...`) involves.
    #[sabi(last_prefix_field)]
    fn removal(&self, source: RStr<'_>) -> RemovalPlan;
}

/// A provider's capabilities. Absent capabilities are `RNone`.
#[repr(C)]
#[derive(StableAbi)]
pub struct ProviderHandle {
    /// Signing in; `RNone` for a provider whose credentials come from elsewhere.
    pub auth_flow: ROption<AuthFlow_TO<'static, RBox<()>>>,
    /// Refresh and runtime resolution; `RNone` when the host sends the stored token as it is.
    pub runtime: ROption<RuntimeCredential_TO<'static, RBox<()>>>,
    /// Status without network; every provider has one.
    pub status: Status_TO<'static, RBox<()>>,
    /// Clean-up when a credential source is removed; `RNone` when there is nothing to do.
    pub removal: ROption<RemovalStep_TO<'static, RBox<()>>>,
}

/// The root module every plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// The interface version the plugin was built against.
    pub api_version: extern "C" fn() -> RStr<'static>,
    /// The plugin's descriptor, called once per load; must make no I/O.
    pub describe: extern "C" fn() -> RResult<PluginInfo, PluginError>,
    /// The provider object for `id`, bound to the host's services.
    #[sabi(last_prefix_field)]
    pub provider:
        extern "C" fn(id: RStr<'_>, host: HostBox) -> RResult<ProviderHandle, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "hermes_plugin";
    const NAME: &'static str = "hermes_plugin";
    // The layout version is frozen for the whole 1.x series (see the evolution rules).
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}
