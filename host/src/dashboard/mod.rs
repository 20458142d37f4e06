//! `hermes dashboard`: a web page on 127.0.0.1 to see every provider, sign in and sign out.
//!
//! The server is generic over providers: it lists what the registry holds, asks each
//! plugin's Status capability, and dispatches a sign-in **by provider id** to the plugin that
//! provides it, driving the flow with the same host code as `hermes auth add`.
//!
//! # Security model
//!
//! The page can sign you in and out, so only you may use it:
//!
//! * it listens on `127.0.0.1` only;
//! * every `/api/` request must carry the per-run session token in the
//!   `X-Hermes-Session-Token` header (compared in constant time), else 401. The token is
//!   printed once, in the URL on stdout; the page reads it from `?token=` and sends it only as
//!   that header, never in another URL;
//! * a request whose `Host` is not exactly `127.0.0.1:PORT` or `localhost:PORT` is refused
//!   with 403, so a DNS-rebinding page cannot reach the server under its own name;
//! * a request with an `Origin` header other than the server's own origin is refused (403),
//!   and no CORS header is ever sent;
//! * request bodies are capped ([`MAX_BODY`]) and every answer says `no-store`,
//!   `no-referrer` (the verification link must not leak the page's URL) and forbids framing.
//!
//! # Threads
//!
//! The server runs on a current-thread runtime created here, separate from the runtime of the
//! host's HTTP service ([`crate::net::Net`]). Plugin calls run on this runtime's
//! blocking threads, where blocking on `Net`'s runtime is allowed (a blocking thread is not
//! inside an async task).

mod api;
mod sessions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::config::Env;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::plugins::registry::Entry;
use crate::plugins::runtime::{PluginSet, Provider, Scope};

pub use api::MAX_QR_DATA;
pub use sessions::{MAX_SESSIONS, MAX_SESSION_LIFE_MS};

/// The header that carries the session token.
pub const TOKEN_HEADER: &str = "x-hermes-session-token";
/// Largest request body accepted (a start request is a few bytes of JSON).
pub const MAX_BODY: usize = 16 * 1024;
/// How long a stop waits for requests in flight before it gives up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The page, embedded in the binary: one self-contained file, no CDN, no build step.
const PAGE: &str = include_str!("page.html");

/// What every handler shares.
pub(crate) struct AppState {
    token: String,
    port: u16,
    env: Env,
    out: Output,
    /// Loaded once at start: a plugin installed while the dashboard runs shows after a restart.
    set: PluginSet,
    /// Providers opened so far, by canonical id.
    opened: Mutex<HashMap<String, Arc<Provider>>>,
    sessions: sessions::Sessions,
    /// The clock of every time the dashboard reads or shows (the test clock in tests), the
    /// one its providers' sign-ins and tokens use.
    time: crate::timefmt::Time,
}

impl AppState {
    /// Now, unix ms, on the dashboard's clock.
    fn now(&self) -> i64 {
        (self.time.clock)()
    }

    /// The provider of `entry`, opened on first use. Calls the plugin: blocking threads only.
    fn provider(&self, entry: &Entry) -> Result<Arc<Provider>> {
        let id = &entry.provider.id;
        if let Some(p) = self
            .opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return Ok(Arc::clone(p));
        }
        // Read at first use, so a URL override set while the dashboard runs still applies.
        let settings = crate::config::Settings::load(&self.env.paths())?;
        let p = self
            .set
            .open(entry, &self.env, &settings, &self.out, self.time.clone())?;
        self.opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Arc::clone(&p));
        Ok(p)
    }
}

/// A dashboard bound to its port, not yet serving.
pub struct Dashboard {
    rt: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Dashboard {
    /// Load the installed plugins and listen on `127.0.0.1:port` (0: any free port).
    pub fn bind(env: &Env, out: &Output, port: u16) -> Result<Dashboard> {
        let set = PluginSet::load(&env.paths(), Scope::All)?;
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            Error::io(format!("cannot listen on 127.0.0.1:{port}"), e)
                .with_help("choose another port with `hermes dashboard --port N`, or `--port 0` for any free one")
        })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot set up the listening socket", e))?;
        let port = std_listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the listening address", e))?
            .port();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("hermes-dashboard")
            .build()
            .map_err(|e| Error::io("cannot start the dashboard's runtime", e))?;
        let listener = {
            let _in_rt = rt.enter();
            tokio::net::TcpListener::from_std(std_listener)
                .map_err(|e| Error::io("cannot set up the listening socket", e))?
        };
        let state = Arc::new(AppState {
            token: crate::secret::random_hex(32)?,
            port,
            env: env.clone(),
            out: out.clone(),
            set,
            opened: Mutex::new(HashMap::new()),
            sessions: sessions::Sessions::default(),
            time: env.time(),
        });
        Ok(Dashboard {
            rt,
            listener,
            state,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.state.port
    }

    /// The page's URL **with the session token**: print it once, never log it.
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/?token={}",
            self.state.port, self.state.token
        )
    }

    /// Serve until Ctrl-C (or SIGTERM), then stop: pending sign-ins are cancelled (nothing
    /// is saved) and requests in flight get a few seconds to finish.
    pub fn run(self) -> Result<()> {
        let Dashboard {
            rt,
            listener,
            state,
        } = self;
        let app = router(Arc::clone(&state));
        let sweeper_state = Arc::clone(&state);
        let served = rt.block_on(async move {
            // Forget sessions past their life even when no one polls.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(30));
                loop {
                    tick.tick().await;
                    sweeper_state.sessions.purge(sweeper_state.now());
                }
            });
            crate::loopback::serve_until_stopped(listener, app, SHUTDOWN_GRACE).await
        });
        state.sessions.cancel_all();
        // Sign-in threads notice the cancel within 100 ms, unless a plugin request is in flight.
        rt.shutdown_timeout(Duration::from_secs(1));
        served.map_err(|e| Error::io("the dashboard server failed", e))
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/providers/oauth", get(api::list))
        .route("/api/providers/oauth/{id}", delete(api::logout))
        .route("/api/providers/oauth/{id}/start", post(api::start))
        .route(
            "/api/providers/oauth/{id}/poll/{session_id}",
            get(api::poll),
        )
        .route(
            "/api/providers/oauth/sessions/{session_id}",
            delete(api::cancel),
        )
        .route("/api/doctor", get(api::doctor))
        .route("/api/qr", get(api::qr))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The page's line that sets how often it re-reads the providers' state.
const REFRESH_LINE: &str = "const REFRESH_MS = 30000;";

/// The page as served: with the test hook's refresh period, if one is set.
fn page_text(env: &Env) -> std::borrow::Cow<'static, str> {
    match env.test_dashboard_refresh {
        Some(period) => PAGE
            .replace(
                REFRESH_LINE,
                &format!("const REFRESH_MS = {};", period.as_millis()),
            )
            .into(),
        None => PAGE.into(),
    }
}

async fn page(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = Html(page_text(&state.env)).into_response();
    // Inline script and style only (the page is one file); nothing else may load, and the
    // page may not be framed.
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    resp
}

async fn not_found() -> api::ApiError {
    api::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page")
}

/// Host, Origin and token checks, and headers for every answer.
async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let mut resp = match check(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    // The path only: the query may hold a URL being encoded, and the page's own URL holds the
    // token.
    state.out.log(
        1,
        &format!("dashboard: {method} {path} -> {}", resp.status().as_u16()),
    );
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn check(state: &AppState, req: &Request) -> std::result::Result<(), api::ApiError> {
    let forbidden = |m: &str| api::ApiError::new(StatusCode::FORBIDDEN, "forbidden", m);
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !crate::loopback::host_allowed(host, state.port) {
        return Err(forbidden(
            "this server answers only to 127.0.0.1 and localhost",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
        if !same {
            return Err(forbidden("cross-origin requests are not allowed"));
        }
    }
    if req.uri().path().starts_with("/api/") {
        let given = headers
            .get(TOKEN_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or(b"");
        if !crate::loopback::constant_time_eq(given, state.token.as_bytes()) {
            return Err(api::ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong session token; open the URL `hermes dashboard` printed",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_period_hook_finds_the_page_s_line() {
        let vars = [("HERMES_HOME".to_string(), "/h".to_string())];
        let mut env = Env::from_vars(vars.into_iter().collect()).unwrap();
        assert!(page_text(&env).contains("const REFRESH_MS = 30000;"));
        env.test_dashboard_refresh = Some(Duration::from_millis(1500));
        let page = page_text(&env);
        assert!(page.contains("const REFRESH_MS = 1500;"));
        assert!(!page.contains(REFRESH_LINE));
    }

    #[test]
    fn blocking_threads_may_block_on_another_runtime() {
        // What plugin calls do: the host's HTTP service blocks on its own runtime from a
        // blocking thread of the dashboard's runtime.
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let inner = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        );
        let inner2 = Arc::clone(&inner);
        let v = outer.block_on(async move {
            tokio::task::spawn_blocking(move || inner2.block_on(async { 41 + 1 }))
                .await
                .unwrap()
        });
        assert_eq!(v, 42);
        Arc::try_unwrap(inner).ok().unwrap().shutdown_background();
    }
}
