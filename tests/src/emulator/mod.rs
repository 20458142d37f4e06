//! An emulator of the MiniMax OAuth portal and of its Anthropic-compatible inference endpoint.
//!
//! It follows the wire contract in `minimax-protocol.md`: the legacy `/oauth/*` paths answer 307 like
//! production, the device-code login checks PKCE, refresh tokens rotate with reuse detection, and
//! `/anthropic/v1/messages` speaks the Anthropic Messages API (JSON and SSE). End-to-end tests run it
//! in-process with [`Emulator::start`]; the `minimax-emulator` binary serves the same thing for demos
//! and scripts, driven over HTTP through the `/_emulator/` control endpoints listed below.
//!
//! # Regions
//!
//! The global region is served at the root and the cn region under `/cn`, each with its own device
//! codes, tokens and counters; a token minted in one region is unknown in the other.
//!
//! # Control endpoints
//!
//! Control is global (one configuration, one fault queue). The `/cn/_emulator/...` alias only changes
//! the default region of the operations that take one (`pending`, `issue-tokens`).
//!
//! | request | effect |
//! |---|---|
//! | `GET /_emulator/counters` | [`Counters`] as JSON |
//! | `GET /_emulator/pending[?region=global\|cn]` | JSON list of pending user codes |
//! | `POST /_emulator/approve`, `POST /_emulator/deny` | body `{"user_code":"..."}` or a form; 404 when the code is not pending |
//! | `GET /_emulator/config` | the current [`EmulatorConfig`] |
//! | `POST /_emulator/config` | any subset of the config fields, e.g. `{"auto_approve":true,"expiry_encoding":"unix_seconds"}` |
//! | `POST /_emulator/fault` | `{"path":"/oauth2/token","fault":"500"\|"429"\|"malformed"\|"drop"\|"slow_ms:1500"\|"truncated"\|"answer:NAME","count":1}`; `NAME` is one of [`Canned`]'s: `rate_limit_200`, `busy_200`, `empty_200`, `upstream_502`, `html_503` |
//! | `POST /_emulator/expire-access-tokens` | every access token issued so far answers 401 |
//! | `POST /_emulator/issue-tokens` | `{"region"?,"access_ttl_ms"?}` → `{"access_token","refresh_token","region"}` |
//! | `POST /_emulator/api-keys` | `{"key":"..."}`: accept it as `x-api-key` (and as a Bearer key on `/v1/*`) |
//!
//! # OpenAI-compatible routes
//!
//! `GET /v1/models` and `POST /v1/chat/completions` (base URL `http://127.0.0.1:PORT/v1`) speak
//! the OpenAI chat completions API, JSON and data-only SSE with a usage chunk and `[DONE]`.
//! They accept `Authorization: Bearer` with an API key added with `api-keys` or an access token
//! the portal issued (so an OAuth provider on `chat_completions` sees 401, refreshes and
//! retries), and any model name.
//!
//! Faults and control requests never interact: a fault never applies to a `/_emulator/` path.

mod completions;
mod control;
mod http;
mod messages;
mod net;
mod oauth;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use messages::REPLY_PREFIX;
use state::{Region, Shared};

/// The OAuth client id every request must carry.
pub const CLIENT_ID: &str = "78257093-7e40-4613-99e0-527b14b39113";
/// The only scope the device-code endpoint accepts.
pub const SCOPE: &str = "group_id profile model.completion";
/// The `grant_type` of a login poll.
pub const LOGIN_GRANT: &str = "urn:ietf:params:oauth:grant-type:user_code";
/// Models `/anthropic/v1/messages` accepts.
pub const MODELS: [&str; 2] = ["MiniMax-M2.7", "MiniMax-M2.7-highspeed"];
/// The largest `max_tokens` the models accept.
pub const MAX_OUTPUT_TOKENS: u64 = 131_072;

/// How `expired_in` is written in device-code and token responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryEncoding {
    /// Absolute unix-millisecond deadline: what production sends.
    #[default]
    UnixMs,
    /// Absolute unix-second deadline.
    UnixSeconds,
    /// Seconds from now (rounded up so a short life is never sent as 0).
    TtlSeconds,
}

impl FromStr for ExpiryEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unix_ms" => Ok(Self::UnixMs),
            "unix_seconds" => Ok(Self::UnixSeconds),
            "ttl_seconds" => Ok(Self::TtlSeconds),
            other => Err(format!(
                "unknown expiry encoding {other:?} (expected unix_ms, unix_seconds or ttl_seconds)"
            )),
        }
    }
}

/// Behaviour of the emulator; every field can be changed at run time with
/// [`Emulator::set_config`] or `POST /_emulator/config` (except `port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Approve every login by itself, after `approve_after_polls` pending answers.
    pub auto_approve: bool,
    /// With `auto_approve`, how many polls of a user code answer `pending` before it is approved.
    pub approve_after_polls: u32,
    /// How `expired_in` is encoded.
    pub expiry_encoding: ExpiryEncoding,
    /// Life of an access token issued from now on, in milliseconds (0 or negative: born expired).
    pub access_ttl_ms: i64,
    /// Life of a user code, in milliseconds.
    pub code_ttl_ms: i64,
    /// The `interval` of a device-code response, in milliseconds.
    pub interval_ms: u64,
    /// Answer the legacy `/oauth/code` and `/oauth/token` paths with 307 (as production does)
    /// instead of serving them.
    pub redirect_legacy_paths: bool,
    /// Echo a different `state` than the client sent (to exercise CSRF detection).
    pub wrong_state: bool,
    /// Sent as `notification_message` in a successful login.
    pub notification_message: Option<String>,
    /// Leave `refresh_token` out of refresh responses; the presented one then stays current.
    pub omit_refresh_token_on_refresh: bool,
    /// Sent as `resource_url` in successful login and refresh responses.
    pub resource_url: Option<String>,
    /// End SSE streams with an `overloaded_error` event after this many text deltas.
    pub stream_error_after_chunks: Option<u32>,
    /// Pause between SSE events, in milliseconds, so clients see a stream arrive in pieces.
    pub stream_event_delay_ms: u64,
    /// Answer every authorised inference request (`/anthropic/v1/messages`,
    /// `/v1/chat/completions`) with this status and an error body in the route's dialect.
    pub inference_error_status: Option<u16>,
    /// Put the presented token into error bodies and streamed error events, as careless
    /// servers do ("invalid key sk-…"), to show that clients do not print it.
    pub echo_token_in_errors: bool,
    /// Log one line per request to stderr (tokens masked).
    pub log_requests: bool,
    /// Added to the wall clock for every expiry decision and every `expired_in` sent, so a
    /// test can age tokens by moving this forward instead of sleeping.
    pub clock_offset_ms: i64,
    /// A test clock shared with the hermes under test (its `HERMES_TEST_CLOCK` file): its
    /// offset is added to `clock_offset_ms`, so the emulator's codes and tokens age exactly
    /// as far as hermes's waits and the test's moves push that clock.
    pub clock_file: Option<std::path::PathBuf>,
    /// Wait this long before handling each refresh (`grant_type=refresh_token`); the pair
    /// rotates when the answer is made, after the wait, as on a slow production server.
    pub refresh_delay_ms: u64,
    /// Appended to the `user_code` of device-code responses (and stripped from the polls that
    /// send it back): a hostile portal's escape sequences.
    pub user_code_suffix: Option<String>,
    /// Appended to the `verification_uri` of device-code responses.
    pub verification_uri_suffix: Option<String>,
    /// Answer every refresh with this HTTP status and a body that quotes the presented refresh
    /// token (as is, URL-encoded and JSON-escaped); no token rotates. 400 names
    /// `invalid_grant` (a dead login), anything else is a server failure.
    pub refresh_echo_status: Option<u16>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            port: 0,
            auto_approve: false,
            approve_after_polls: 0,
            expiry_encoding: ExpiryEncoding::UnixMs,
            access_ttl_ms: 900_000,
            code_ttl_ms: 600_000,
            interval_ms: 2000,
            redirect_legacy_paths: true,
            wrong_state: false,
            notification_message: None,
            omit_refresh_token_on_refresh: false,
            resource_url: None,
            stream_error_after_chunks: None,
            stream_event_delay_ms: 0,
            inference_error_status: None,
            echo_token_in_errors: false,
            log_requests: false,
            clock_offset_ms: 0,
            clock_file: None,
            refresh_delay_ms: 0,
            user_code_suffix: None,
            verification_uri_suffix: None,
            refresh_echo_status: None,
        }
    }
}

/// A failure injected into the next requests of a path (see [`Emulator::inject`]).
///
/// A faulted request is not processed (no token rotates, no code is consumed), except with
/// [`Fault::Slow`], which only delays it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 with a small JSON body.
    Status500,
    /// 429 with `retry-after: 1`.
    Status429,
    /// 200 whose JSON body is cut short: `{"status":"succ`.
    MalformedJson,
    /// Close the TCP connection without writing a byte.
    DropConnection,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// 200 with a `content-length` larger than the bytes sent, then close the connection.
    TruncatedBody,
    /// A canned error answer (the request is not processed).
    Answer(Canned),
}

/// Error answers a real portal or the gateways in front of it have been seen to give; none of
/// them says the refresh token is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    /// 200 `{"base_resp":{"status_code":1002,"status_msg":"rate limit exceeded"}}`.
    RateLimit200,
    /// 200 `{"status":"error","base_resp":{"status_code":1000,"status_msg":"system busy, please retry"}}`.
    Busy200,
    /// 200 `{}`.
    Empty200,
    /// 502 `{"message":"upstream returned invalid_grant"}`.
    Upstream502,
    /// 503 with an HTML page that mentions `invalid_grant`.
    Html503,
}

impl Canned {
    /// Every canned answer.
    pub const ALL: [Canned; 5] = [
        Canned::RateLimit200,
        Canned::Busy200,
        Canned::Empty200,
        Canned::Upstream502,
        Canned::Html503,
    ];
    /// The control-endpoint spelling (after `answer:`).
    pub fn name(self) -> &'static str {
        match self {
            Canned::RateLimit200 => "rate_limit_200",
            Canned::Busy200 => "busy_200",
            Canned::Empty200 => "empty_200",
            Canned::Upstream502 => "upstream_502",
            Canned::Html503 => "html_503",
        }
    }
    /// Status, content type and body.
    pub fn response(self) -> (u16, &'static str, &'static str) {
        match self {
            Canned::RateLimit200 => (
                200,
                "application/json",
                r#"{"base_resp":{"status_code":1002,"status_msg":"rate limit exceeded"}}"#,
            ),
            Canned::Busy200 => (
                200,
                "application/json",
                r#"{"status":"error","base_resp":{"status_code":1000,"status_msg":"system busy, please retry"}}"#,
            ),
            Canned::Empty200 => (200, "application/json", "{}"),
            Canned::Upstream502 => (
                502,
                "application/json",
                r#"{"message":"upstream returned invalid_grant"}"#,
            ),
            Canned::Html503 => (
                503,
                "text/html; charset=utf-8",
                "<!doctype html><html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>The upstream said: invalid_grant</p></body></html>\n",
            ),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    /// Parses the control-endpoint spelling: `500`, `429`, `malformed`, `drop`, `slow_ms:N`, `truncated`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "500" => Ok(Self::Status500),
            "429" => Ok(Self::Status429),
            "malformed" => Ok(Self::MalformedJson),
            "drop" => Ok(Self::DropConnection),
            "truncated" => Ok(Self::TruncatedBody),
            other if other.starts_with("answer:") => {
                let name = &other["answer:".len()..];
                Canned::ALL
                    .into_iter()
                    .find(|c| c.name() == name)
                    .map(Self::Answer)
                    .ok_or_else(|| {
                        format!(
                            "unknown answer {name:?} (expected one of {})",
                            Canned::ALL.map(Canned::name).join(", ")
                        )
                    })
            }
            other => match other.strip_prefix("slow_ms:").map(str::parse::<u64>) {
                Some(Ok(ms)) => Ok(Self::Slow(Duration::from_millis(ms))),
                _ => Err(format!(
                    "unknown fault {other:?} (expected 500, 429, malformed, drop, slow_ms:N, truncated or answer:NAME)"
                )),
            },
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status500 => f.write_str("500"),
            Self::Status429 => f.write_str("429"),
            Self::MalformedJson => f.write_str("malformed"),
            Self::DropConnection => f.write_str("drop"),
            Self::Slow(d) => write!(f, "slow_ms:{}", d.as_millis()),
            Self::TruncatedBody => f.write_str("truncated"),
            Self::Answer(c) => write!(f, "answer:{}", c.name()),
        }
    }
}

macro_rules! counter_set {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* $field:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: u64,)*
        }

        impl $name {
            fn plus(&self, other: &Self) -> Self {
                Self { $($field: self.$field + other.$field,)* }
            }
        }
    };
}

counter_set! {
    /// Request counters of one region (or of both, in [`Counters::total`]).
    pub struct CounterSet {
        /// Requests to the device-code endpoint (valid or not).
        code_requests,
        /// 307 answers on `/oauth/code` and `/oauth/token`.
        legacy_redirects,
        /// Token requests with the login grant (valid or not).
        token_polls,
        /// Polls answered `{"status":"pending"}`.
        polls_pending,
        /// User codes approved (by hand or by `auto_approve`).
        logins_approved,
        /// User codes denied.
        logins_denied,
        /// Logins that ended with a token pair.
        logins_completed,
        /// Token requests with the refresh grant (valid or not).
        refresh_requests,
        /// Refreshes that issued new tokens.
        refresh_success,
        /// Refreshes that presented an already used refresh token.
        refresh_reused,
        /// Refreshes rejected with `invalid_grant` (unknown or revoked token).
        refresh_invalid_grant,
        /// Requests to `/anthropic/v1/messages` (valid or not).
        messages_requests,
        /// Messages requests answered (JSON or stream).
        messages_ok,
        /// Messages requests answered 401.
        messages_unauthorized,
        /// Messages requests answered 400.
        messages_invalid,
        /// Messages requests answered as SSE.
        messages_streamed,
        /// SSE streams ended by `stream_error_after_chunks`.
        stream_errors,
        /// Requests to `/v1/models` (valid or not).
        models_requests,
        /// Requests to `/v1/chat/completions` (valid or not).
        completions_requests,
        /// Chat completions answered (JSON or stream).
        completions_ok,
        /// Chat completions answered 401.
        completions_unauthorized,
        /// Chat completions answered as SSE.
        completions_streamed,
        /// Requests answered by an injected fault.
        faults_injected,
    }
}

/// How a messages request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStyle {
    /// Neither `Authorization` nor `x-api-key`.
    None,
    /// `Authorization: Bearer …` only.
    Bearer,
    /// `x-api-key` only.
    ApiKey,
    /// Both headers.
    Both,
    /// `Authorization` with a scheme other than Bearer.
    Other,
}

/// What the emulator saw of one `/anthropic/v1/messages` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesRequestRecord {
    /// `global` or `cn`.
    pub region: String,
    /// The full request path, e.g. `/cn/anthropic/v1/messages`.
    pub path: String,
    /// Which auth headers were present.
    pub auth: AuthStyle,
    /// The status answered.
    pub status: u16,
    /// `model` of the body, when it had one.
    pub model: Option<String>,
    /// Whether the body asked for `stream: true`.
    pub stream: bool,
    /// The `anthropic-version` header.
    pub anthropic_version: Option<String>,
    /// The `anthropic-beta` header.
    pub anthropic_beta: Option<String>,
    /// The `content-type` header.
    pub content_type: Option<String>,
}

/// A snapshot of the counters and of the last messages requests.
///
/// It dereferences to [`Counters::total`], so `counters.refresh_success` counts both regions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Both regions together (flattened into the top level of the JSON).
    #[serde(flatten)]
    pub total: CounterSet,
    /// The global region.
    pub global: CounterSet,
    /// The cn region.
    pub cn: CounterSet,
    /// The most recent messages request.
    pub last_messages_request: Option<MessagesRequestRecord>,
    /// The most recent messages requests, oldest first (at most 64).
    pub recent_messages_requests: Vec<MessagesRequestRecord>,
    /// Requests being handled at the moment of the snapshot (a handler may outlive its
    /// client: a test that kills a client waits for this to reach 0 before reading the rest).
    pub in_flight: u64,
}

impl std::ops::Deref for Counters {
    type Target = CounterSet;

    fn deref(&self) -> &CounterSet {
        &self.total
    }
}

/// A running emulator; dropping it stops the server and frees the port.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts the emulator on its own thread and returns once it accepts connections.
    ///
    /// # Panics
    /// When the port cannot be bound; use [`Emulator::try_start`] to handle that.
    pub fn start(config: EmulatorConfig) -> Emulator {
        match Self::try_start(config) {
            Ok(emulator) => emulator,
            Err(err) => panic!("cannot start the MiniMax emulator: {err}"),
        }
    }

    /// Starts the emulator, reporting a port that cannot be bound as an error.
    pub fn try_start(config: EmulatorConfig) -> io::Result<Emulator> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, addr.port()));
        let (shutdown, thread) = net::spawn_server(listener, Arc::clone(&shared))?;
        Ok(Emulator {
            shared,
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The socket address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The global portal base, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The cn portal base, `http://127.0.0.1:PORT/cn`.
    pub fn cn_url(&self) -> String {
        format!("http://{}/cn", self.addr)
    }

    /// The global inference base, `http://127.0.0.1:PORT/anthropic`.
    pub fn inference_url(&self) -> String {
        format!("http://{}/anthropic", self.addr)
    }

    /// The OpenAI-compatible base, `http://127.0.0.1:PORT/v1`.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The cn inference base, `http://127.0.0.1:PORT/cn/anthropic`.
    pub fn cn_inference_url(&self) -> String {
        format!("http://{}/cn/anthropic", self.addr)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.shared.lock().counters();
        c.in_flight = self
            .shared
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst);
        c
    }

    /// When a refresh last rotated a token pair (the answer is made right after).
    pub fn last_rotation(&self) -> Option<std::time::Instant> {
        self.shared.lock().last_rotation
    }

    /// Wait (at most `limit`) until no request is being handled; whether it got there.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while self
            .shared
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// The current configuration.
    pub fn config(&self) -> EmulatorConfig {
        self.shared.lock().config.clone()
    }

    /// Changes the configuration; takes effect with the next request. `port` is ignored.
    pub fn set_config(&self, f: impl FnOnce(&mut EmulatorConfig)) {
        let mut state = self.shared.lock();
        f(&mut state.config);
        state.config.port = self.addr.port();
    }

    /// Approves a pending user code (either region); false when it is unknown, expired or decided.
    pub fn approve(&self, user_code: &str) -> bool {
        self.shared.lock().approve(user_code)
    }

    /// Denies a pending user code (either region); false when it is unknown, expired or decided.
    pub fn deny(&self, user_code: &str) -> bool {
        self.shared.lock().deny(user_code)
    }

    /// User codes of both regions still waiting for a decision.
    pub fn pending_user_codes(&self) -> Vec<String> {
        self.shared.lock().pending_codes(None)
    }

    /// The next `count` requests whose path ends with `path_suffix` (e.g. `/oauth2/token`, which
    /// matches both regions, or `/cn/oauth2/token`) get `fault`. Faults queue in injection order.
    pub fn inject(&self, path_suffix: &str, fault: Fault, count: u32) {
        self.shared.lock().inject(path_suffix, fault, count);
    }

    /// Makes every access token issued so far (both regions) answer 401; later ones are unaffected.
    pub fn expire_all_access_tokens(&self) {
        self.shared.lock().expire_all_access_tokens();
    }

    /// Mints a valid token pair in `region` (`global` or `cn`; anything else means global) whose
    /// access token lives `access_ttl_ms` (0 or negative: already expired).
    pub fn issue_tokens(&self, region: &str, access_ttl_ms: i64) -> (String, String) {
        let region = Region::parse(region).unwrap_or(Region::Global);
        self.shared.lock().mint_pair(region, access_ttl_ms)
    }

    /// Accepts `key` as `x-api-key` on the messages endpoint of both regions.
    pub fn add_api_key(&self, key: &str) {
        self.shared.lock().api_keys.insert(key.to_string());
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
