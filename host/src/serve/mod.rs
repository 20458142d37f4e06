//! `hermes serve`: a loopback gateway through which any Anthropic- or OpenAI-compatible tool
//! uses a hermes login.
//!
//! A tool is pointed at `http://127.0.0.1:PORT` with the gateway key as its API key. For each
//! request the gateway picks the provider from the request's `model` through the catalog, takes
//! a fresh token from the same token source every hermes command uses (one single-flight
//! refresh across processes), and forwards the request to the provider's API.
//!
//! # Security model
//!
//! * It listens on `127.0.0.1` only.
//! * Every request must carry the gateway key (`HERMES_HOME/serve.key`, 0600) as `x-api-key` or
//!   `Authorization: Bearer`, compared in constant time; else 401 in the client's API shape.
//! * A request whose `Host` is not `127.0.0.1:PORT` or `localhost:PORT` is refused with 403
//!   (DNS rebinding); a request with an `Origin` is refused unless `--allow-origin` names it,
//!   and only then are CORS headers sent.
//! * The client's credentials never travel upstream: the provider's token replaces them, and
//!   tokens are never written to answers or logs (an upstream error body that echoes one is
//!   redacted).
//! * Request bodies are capped ([`MAX_REQUEST_BODY`]); answers are streamed through with
//!   backpressure, so memory stays bounded whatever their size; a client that goes away cancels
//!   its upstream request.

pub mod key;
mod relay;
mod translate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::auth::{Store, TokenSource};
use crate::config::{Env, Settings};
use crate::error::{Error, Result};
use crate::output::Output;
use crate::plugins::registry::Entry;
use crate::plugins::runtime::{PluginSet, Scope};
use crate::secret::Secret;

/// The port `hermes serve` listens on unless `--port` says otherwise.
pub const DEFAULT_PORT: u16 = 8642;
/// Largest request body accepted (a long conversation with a coding tool's context).
pub const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// How long a stop waits for answers still streaming.
const DRAIN: Duration = Duration::from_secs(5);

/// The API shape a client speaks, read from the path it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1/chat/completions`, `GET /v1/models`.
    OpenAi,
}

impl Wire {
    /// The `api_mode` of this shape.
    pub fn api_mode(self) -> &'static str {
        self.dialect().api_mode()
    }

    pub fn dialect(self) -> &'static dyn crate::chat::dialect::Dialect {
        match self {
            Wire::Anthropic => &crate::chat::dialect::AnthropicMessages,
            Wire::OpenAi => &crate::chat::dialect::ChatCompletions,
        }
    }

    /// The prefix of the request headers a provider of this family may receive from a client.
    fn header_family(self) -> &'static str {
        match self {
            Wire::Anthropic => "anthropic-",
            Wire::OpenAi => "openai-",
        }
    }

    fn of_path(path: &str) -> Wire {
        if path.starts_with("/v1/messages") {
            Wire::Anthropic
        } else {
            Wire::OpenAi
        }
    }

    /// An error answer in this shape.
    pub fn error(self, status: StatusCode, message: &str) -> Response {
        let body = match self {
            Wire::Anthropic => json!({
                "type": "error",
                "error": {"type": anthropic_error_type(status), "message": message},
            }),
            Wire::OpenAi => json!({
                "error": {
                    "message": message,
                    "type": openai_error_type(status),
                    "code": status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace(' ', "_"),
                },
            }),
        };
        (status, axum::Json(body)).into_response()
    }
}

fn anthropic_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

fn openai_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// How the gateway is run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// The one browser origin allowed to call the gateway (CORS), if any.
    pub allow_origin: Option<String>,
}

/// What every handler shares.
pub(crate) struct Gw {
    key: Secret,
    port: u16,
    allow_origin: Option<String>,
    env: Env,
    out: Output,
    /// Loaded once at start: a plugin installed while the gateway runs shows after a restart.
    set: PluginSet,
    /// Token sources by provider id, opened on first use and kept, so their memory cache and
    /// single flight serve every request.
    sources: Mutex<HashMap<String, Arc<TokenSource>>>,
}

impl Gw {
    /// The token source of provider `id` if it is open already (no I/O).
    fn open_source(&self, id: &str) -> Option<Arc<TokenSource>> {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// The token source of `entry`, opened on first use. Calls the plugin: blocking threads only.
    fn source(&self, entry: &Entry) -> Result<Arc<TokenSource>> {
        let id = &entry.provider.id;
        if let Some(s) = self.open_source(id) {
            return Ok(s);
        }
        let paths = self.env.paths();
        let settings = Settings::load(&paths)?;
        let time = self.env.time();
        let provider = self
            .set
            .open(entry, &self.env, &settings, &self.out, time)?;
        // The same choice every command makes (`providers.<id>.account`, `HERMES_ACCOUNT`).
        let choice = crate::auth::choice::account_choice(&self.env, &settings, id, None);
        let source = Arc::new(TokenSource::new(
            Store::new(&paths),
            provider,
            choice.key,
            &choice.source,
            self.out.clone(),
        ));
        let mut map = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(map.entry(id.clone()).or_insert(source)))
    }

    /// Providers with at least one usable login, in registry order.
    fn signed_in(&self) -> Vec<Entry> {
        let Ok(file) = Store::new(&self.env.paths()).read() else {
            return Vec::new();
        };
        self.set
            .registry
            .entries()
            .iter()
            .filter(|e| file.entries(&e.provider.id).iter().any(|v| v.usable()))
            .cloned()
            .collect()
    }
}

/// A gateway bound to its port, not yet serving.
pub struct Gateway {
    listener: std::net::TcpListener,
    state: Arc<Gw>,
}

impl Gateway {
    /// Load the installed plugins, read (or make) the key, and listen on `127.0.0.1`.
    pub fn bind(env: &Env, out: &Output, opts: &Options, key: Secret) -> Result<Gateway> {
        let set = PluginSet::load(&env.paths(), Scope::All)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", opts.port)).map_err(|e| {
            Error::io(format!("cannot listen on 127.0.0.1:{}", opts.port), e).with_help(
                "choose another port with `hermes serve --port N`, or `--port 0` for any free one",
            )
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot set up the listening socket", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the listening address", e))?
            .port();
        Ok(Gateway {
            listener,
            state: Arc::new(Gw {
                key,
                port,
                allow_origin: opts.allow_origin.clone(),
                env: env.clone(),
                out: out.clone(),
                set,
                sources: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.state.port)
    }

    /// Serve until Ctrl-C or SIGTERM, then let answers in flight finish for a few seconds.
    /// Runs on the host's network runtime, so upstream requests and plugin refreshes share
    /// one HTTP stack.
    pub fn run(self) -> Result<()> {
        let net = crate::net::Net::get();
        let app = router(Arc::clone(&self.state));
        net.runtime().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)
                .map_err(|e| Error::io("cannot set up the listening socket", e))?;
            crate::loopback::serve_until_stopped(listener, app, DRAIN)
                .await
                .map_err(|e| Error::io("the gateway failed", e))
        })
    }
}

fn router(state: Arc<Gw>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/messages", post(relay::messages))
        .route("/v1/chat/completions", post(relay::chat_completions))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    let wire = Wire::of_path(req.uri().path());
    wire.error(
        StatusCode::NOT_FOUND,
        &format!(
            "hermes serve has no {} {}; it serves POST /v1/messages, POST /v1/chat/completions and GET /v1/models",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Host, Origin and key checks; CORS for the one allowed origin.
async fn guard(State(gw): State<Arc<Gw>>, req: Request, next: Next) -> Response {
    let wire = Wire::of_path(req.uri().path());
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !crate::loopback::host_allowed(host, gw.port) {
        return wire.error(
            StatusCode::FORBIDDEN,
            "this gateway answers only to 127.0.0.1 and localhost",
        );
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("").to_string());
    if let Some(o) = &origin {
        if gw.allow_origin.as_deref() != Some(o.as_str()) {
            return wire.error(
                StatusCode::FORBIDDEN,
                "cross-origin requests are refused; allow one origin with `hermes serve --allow-origin`",
            );
        }
        if req.method() == Method::OPTIONS {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            cors(resp.headers_mut(), o);
            return resp;
        }
    }
    if !key_matches(headers, &gw.key) {
        return wire.error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong gateway key: send the key from `hermes serve --print-env` as x-api-key or a Bearer token",
        );
    }
    let mut resp = next.run(req).await;
    if let Some(o) = &origin {
        cors(resp.headers_mut(), o);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn cors(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "authorization, x-api-key, content-type, anthropic-version, anthropic-beta",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(header::VARY, HeaderValue::from_static("origin"));
}

fn key_matches(headers: &HeaderMap, key: &Secret) -> bool {
    let given = headers
        .get("x-api-key")
        .map(HeaderValue::as_bytes)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        })
        .unwrap_or(b"");
    crate::loopback::constant_time_eq(given, key.expose().as_bytes())
}

/// `GET /v1/models`: every model of every signed-in provider as `provider/model`, and the bare
/// name where only one provider has it. In the Anthropic shape when the client sends
/// `anthropic-version`, else the OpenAI shape.
async fn models(State(gw): State<Arc<Gw>>, headers: HeaderMap) -> Response {
    let gw2 = Arc::clone(&gw);
    let Ok(names) = tokio::task::spawn_blocking(move || model_names(&gw2)).await else {
        return Wire::OpenAi.error(StatusCode::INTERNAL_SERVER_ERROR, "the model list failed");
    };
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = names
            .iter()
            .map(|(id, _)| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        let first = names.first().map(|(id, _)| id.clone());
        let last = names.last().map(|(id, _)| id.clone());
        axum::Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}))
            .into_response()
    } else {
        let data: Vec<Value> = names
            .iter()
            .map(
                |(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}),
            )
            .collect();
        axum::Json(json!({"object": "list", "data": data})).into_response()
    }
}

/// `(name, provider)` for the model list.
fn model_names(gw: &Gw) -> Vec<(String, String)> {
    let entries = gw.signed_in();
    let mut out = Vec::new();
    for e in &entries {
        for m in &e.provider.models {
            out.push((format!("{}/{}", e.provider.id, m.id), e.provider.id.clone()));
        }
    }
    for e in &entries {
        for m in &e.provider.models {
            let holders = entries
                .iter()
                .filter(|o| o.provider.model(&m.id).is_some())
                .count();
            if holders == 1 {
                out.push((m.id.clone(), e.provider.id.clone()));
            }
        }
    }
    out
}

/// Where a request's `model` leads.
pub(crate) struct Target {
    entry: Entry,
    /// The model as the provider names it.
    model: String,
}

/// Pick the provider for `model`: `provider/model` (or an alias prefix) names it; a bare name
/// must belong to exactly one provider (or, when several have it, to exactly one signed-in
/// provider). Nothing is guessed: an unknown name is a 404 that lists what is available.
/// Decided from the registry alone when it can be (no I/O: the per-request path); only a name
/// several providers share needs the store.
fn route(gw: &Gw, model: &str) -> std::result::Result<Target, (StatusCode, String)> {
    match route_by_registry(gw, model) {
        Some(decided) => decided,
        None => route_by_logins(gw, model),
    }
}

/// [`route`] without I/O; `None` when more than one provider offers the name.
fn route_by_registry(
    gw: &Gw,
    model: &str,
) -> Option<std::result::Result<Target, (StatusCode, String)>> {
    let registry = &gw.set.registry;
    if let Some(id) = crate::catalog::provider_of(registry, model) {
        let entry = registry.resolve(id)?.clone();
        let bare = crate::catalog::normalize(registry, id, model);
        let model = crate::catalog::known(&entry.provider, &bare)
            .map(String::from)
            .unwrap_or(bare);
        return Some(Ok(Target { entry, model }));
    }
    let mut holders = registry
        .entries()
        .iter()
        .filter(|e| e.provider.model(model).is_some());
    match (holders.next(), holders.next()) {
        (Some(one), None) => Some(Ok(Target {
            entry: one.clone(),
            model: crate::catalog::known(&one.provider, model)
                .unwrap_or(model)
                .to_string(),
        })),
        (None, _) => Some(Err(unknown_model(gw, model))),
        (Some(_), Some(_)) => None,
    }
}

fn unknown_model(gw: &Gw, model: &str) -> (StatusCode, String) {
    let names: Vec<String> = model_names(gw).into_iter().map(|(n, _)| n).collect();
    let available = if names.is_empty() {
        "none: no provider is signed in (`hermes auth add <provider>`)".to_string()
    } else {
        names.join(", ")
    };
    (
        StatusCode::NOT_FOUND,
        format!("no signed-in provider offers the model {model:?}; available: {available}"),
    )
}

/// A name several providers offer: the one signed-in provider among them.
fn route_by_logins(gw: &Gw, model: &str) -> std::result::Result<Target, (StatusCode, String)> {
    let entries = gw.signed_in();
    let holders: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.provider.model(model).is_some())
        .collect();
    match holders.as_slice() {
        [one] => Ok(Target {
            entry: (*one).clone(),
            model: crate::catalog::known(&one.provider, model)
                .unwrap_or(model)
                .to_string(),
        }),
        [] => Err(unknown_model(gw, model)),
        many => Err((
            StatusCode::BAD_REQUEST,
            format!(
                "more than one provider offers {model:?}; name one: {}",
                many.iter()
                    .map(|e| format!("{}/{model}", e.provider.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
