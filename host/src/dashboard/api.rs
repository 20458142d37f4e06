//! The dashboard's JSON API (shapes in `minimax-protocol.md`, "Dashboard API", plus additive
//! fields), generic over every installed provider.
//!
//! Plugins are only ever called on blocking threads ([`blocking`]): a plugin's HTTP goes
//! through the host's service, which blocks on its own runtime and must not run inside an
//! async task.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hermes_plugin_api::flow;
use serde::Deserialize;
use serde_json::{json, Value};

use super::sessions::{Session, Snapshot};
use super::AppState;
use crate::auth::{choice, login, Store};
use crate::doctor::state_name;
use crate::plugins::registry::Entry;
use crate::timefmt::iso_from_ms;

/// Longest text `GET /api/qr` encodes; sign-in URLs are far shorter.
pub const MAX_QR_DATA: usize = 1024;

/// An error answer: `{"error": code, "message": text}` with an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with this status, machine code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> ApiError {
        ApiError::internal(e.message())
    }
}

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

/// Run `f` on a blocking thread (every plugin call and every store access goes here).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("internal error while handling the request"))
}

/// The registry entry for `name` (id or alias, any case), or 400.
fn resolve<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a Entry> {
    state.set.registry.resolve(name).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_provider",
            format!("unknown provider {:?}", crate::text::line(name, 64)),
        )
    })
}

/// The dashboard's name for a descriptor's flow kind. API-key providers are listed as
/// `external`: their key is never typed into a web page, so they sign in from the terminal.
fn flow_name(kind: &str) -> &'static str {
    match kind {
        flow::DEVICE_CODE => "device_code",
        flow::PKCE_REDIRECT => "pkce",
        _ => "external",
    }
}

/// Whether the dashboard can drive this flow (the host's driver polls it like the CLI does).
fn startable(kind: &str) -> bool {
    kind == flow::DEVICE_CODE || kind == flow::PKCE_REDIRECT
}

fn iso(ms: i64) -> Option<String> {
    (ms > 0).then(|| iso_from_ms(ms)).flatten()
}

/// `GET /api/providers/oauth`: every provider of every loaded plugin, with its status.
pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult {
    blocking(move || list_blocking(&state)).await?
}

fn list_blocking(state: &AppState) -> ApiResult {
    let file = Store::new(&state.env.paths()).read()?;
    let settings = crate::config::Settings::load(&state.env.paths())?;
    let now = state.now();
    let mut providers = Vec::new();
    for entry in state.set.registry.entries() {
        let d = &entry.provider;
        let cli_command = if d.flow == flow::API_KEY {
            format!("hermes auth add {} --api-key-stdin < key.txt", d.id)
        } else {
            d.login_command()
        };
        let mut p = json!({
            "id": d.id,
            "name": d.display_name,
            "flow": flow_name(&d.flow),
            "cli_command": cli_command,
            "docs_url": d.docs_url,
            "regions": d.regions.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            "region_labels": d.regions.iter().filter(|r| !r.label.is_empty())
                .map(|r| (r.name.clone(), Value::from(r.label.as_str())))
                .collect::<serde_json::Map<_, _>>(),
            "aliases": entry.aliases,
            "plugin": entry.plugin_id,
        });
        let logins = file.entries(&d.id);
        let account = choice::account_choice(&state.env, &settings, &d.id, None);
        let picked = choice::choose(&d.display_name, &d.id, &logins, &account);
        let (chosen, fallback) = match &picked {
            Ok(Some(c)) => (Some(&c.entry), c.fallback.clone()),
            Ok(None) => (None, None),
            Err(e) => (None, Some(e.message().to_string())),
        };
        p["status"] = match state.provider(entry) {
            Ok(provider) => {
                let report = provider
                    .handle
                    .status
                    .status(chosen.map(|e| &e.credential).into(), now);
                let cred = chosen.map(|e| &e.credential);
                json!({
                    "logged_in": report.logged_in(),
                    "source": chosen.map(|e| e.source.as_str()),
                    "source_label": chosen.map(|e| e.name()),
                    "token_preview": cred.map(|c| crate::secret::mask(&c.access_token)).filter(|m| !m.is_empty()),
                    "expires_at": cred.and_then(|c| iso(c.expires_at_ms)),
                    "has_refresh_token": cred.is_some_and(|c| !c.refresh_token.is_empty()),
                    "state": state_name(report.state),
                    "summary": report.summary.as_str(),
                    "region": Some(report.region.as_str()).filter(|r| !r.is_empty()),
                    "expires_at_ms": cred.map(|c| c.expires_at_ms).filter(|&ms| ms > 0),
                    "problems": report.problems.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                    "last_error": chosen.and_then(|e| e.last_error.as_ref()).map(|le| json!({"code": le.code, "message": le.message, "at": le.at})),
                    "accounts": logins.len(),
                    "account_note": fallback,
                })
            }
            // Listed anyway, so the page shows the problem instead of hiding the provider.
            Err(e) => json!({
                "logged_in": false, "source": null, "source_label": null, "token_preview": null,
                "expires_at": null, "has_refresh_token": false, "state": "unavailable",
                "summary": e.message(), "region": null, "expires_at_ms": null, "problems": [e.message()],
                "last_error": null, "accounts": logins.len(),
            }),
        };
        providers.push(p);
    }
    Ok(Json(json!({
        "providers": providers,
        "install_hint": crate::plugins::index::install_hint(state.env.plugin_index.as_deref()),
    })))
}

#[derive(Debug, Default, Deserialize)]
struct StartBody {
    region: Option<String>,
}

/// `POST /api/providers/oauth/{id}/start`, body optionally `{"region": "cn"}`: start a sign-in
/// with the plugin that provides `id` (dispatch by provider id, never by flow kind).
pub async fn start(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    // A body over the cap gets the same JSON error shape as every other refusal.
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "payload_too_large",
                format!("the request body is over {} KiB", super::MAX_BODY / 1024),
            )
        } else {
            ApiError::new(status, "bad_request", e.body_text())
        }
    })?;
    let entry = resolve(&state, &name)?.clone();
    let d = &entry.provider;
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "bad_request",
                format!("the body must be JSON like {{\"region\": \"cn\"}}: {e}"),
            )
        })?
    };
    if !startable(&d.flow) {
        return Err(ApiError::bad_request(
            "unsupported_flow",
            format!(
                "{} signs in from the terminal: run `hermes auth add {}`",
                d.display_name, d.id
            ),
        ));
    }
    let region = match body.region.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => match d.region(Some(r)) {
            Some(found) => Some(found.name.clone()),
            None => {
                let names: Vec<&str> = d.regions.iter().map(|r| r.name.as_str()).collect();
                return Err(ApiError::bad_request(
                    "unknown_region",
                    format!(
                        "{} has no region {:?}; choose one of: {}",
                        d.display_name,
                        crate::text::line(r, 64),
                        names.join(", ")
                    ),
                ));
            }
        },
    };
    if !state.sessions.has_room(state.now()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            "too many sign-ins in progress; cancel some or wait for them to expire",
        ));
    }
    let asked = region.clone();
    let st = Arc::clone(&state);
    let started = blocking(move || {
        let provider = st.provider(&entry)?;
        let challenge = login::start(&provider, region.as_deref(), "{}")?;
        Ok::<_, crate::Error>((provider, challenge, entry))
    })
    .await?;
    let (provider, challenge, entry) =
        started.map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "start_failed", e.message()))?;
    let now = state.now();
    let mut session = Session::new(
        crate::secret::random_hex(16)?,
        entry.provider.id.clone(),
        now,
        challenge.expires_at_ms,
    );
    session.region = asked
        .or_else(|| entry.provider.regions.first().map(|r| r.name.clone()))
        .unwrap_or_default();
    let session = Arc::new(session);
    state
        .sessions
        .insert(Arc::clone(&session), now)
        .map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                "too many sign-ins in progress",
            )
        })?;
    let reply = json!({
        "session_id": session.id,
        "flow": flow_name(&entry.provider.flow),
        "provider": entry.provider.id,
        "user_code": challenge.user_code.as_str(),
        "verification_url": challenge.verification_uri.as_str(),
        "expires_in": ((session.expires_at_ms - now).max(0) + 999) / 1000,
        "expires_at": iso(session.expires_at_ms),
        "poll_interval": (challenge.interval_ms.div_ceil(1000)).clamp(1, 10),
        "region": Some(session.region.as_str()).filter(|r| !r.is_empty()),
    });
    let store = Store::new(&state.env.paths());
    let out = state.out.clone();
    tokio::task::spawn_blocking(move || {
        session.drive(&provider, &challenge, &store);
        out.log(
            1,
            &format!(
                "dashboard: sign-in to {} ended: {}",
                session.provider_id,
                session.snapshot().status.as_str()
            ),
        );
    });
    Ok(Json(reply))
}

fn session_json(session: &Session, snap: &Snapshot) -> Value {
    let failed = !matches!(snap.status.as_str(), "pending" | "approved");
    json!({
        "session_id": session.id,
        "provider": session.provider_id,
        "status": snap.status.as_str(),
        "error_message": if failed { snap.message.clone() } else { None },
        "message": if failed { None } else { snap.message.clone() },
        "expires_at": iso(session.expires_at_ms),
        "region": Some(session.region.as_str()).filter(|r| !r.is_empty()),
        // The same counts `hermes auth add` reports: the page says the server is failing
        // while it waits, not only once the code has expired.
        "server_failures": (snap.polls.failed > 0).then(|| json!({
            "failed": snap.polls.failed,
            "polls": snap.polls.polls,
            "last": crate::text::line(&snap.polls.last, 200),
        })),
    })
}

fn session(state: &AppState, id: &str) -> Result<Arc<Session>, ApiError> {
    state.sessions.get(id, state.now()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_session",
            "no such sign-in session (it may have ended)",
        )
    })
}

/// `GET /api/providers/oauth/{id}/poll/{session_id}`.
pub async fn poll(
    State(state): State<Arc<AppState>>,
    Path((name, session_id)): Path<(String, String)>,
) -> ApiResult {
    let entry = resolve(&state, &name)?;
    let session = session(&state, &session_id)?;
    if session.provider_id != entry.provider.id {
        return Err(ApiError::bad_request(
            "session_provider_mismatch",
            format!(
                "session {} signs in to {}, not {}",
                session.id, session.provider_id, entry.provider.id
            ),
        ));
    }
    Ok(Json(session_json(&session, &session.snapshot())))
}

/// `DELETE /api/providers/oauth/sessions/{session_id}`: cancel; nothing is saved unless the
/// approval was already being saved (the answer then says `approved`).
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
) -> ApiResult {
    let session = session(&state, &session_id)?;
    let snap = session.cancel("sign-in cancelled; nothing was saved");
    Ok(Json(session_json(&session, &snap)))
}

/// `DELETE /api/providers/oauth/{id}`: sign out, as `hermes auth logout` does.
pub async fn logout(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> ApiResult {
    let id = resolve(&state, &name)?.provider.id.clone();
    let paths = state.env.paths();
    let pid = id.clone();
    let removed = blocking(move || login::logout(&Store::new(&paths), &pid)).await??;
    Ok(Json(
        json!({ "provider": id, "logged_out": true, "removed": removed }),
    ))
}

/// `GET /api/doctor`: the same JSON as `hermes doctor --json`.
pub async fn doctor(State(state): State<Arc<AppState>>) -> ApiResult {
    let report =
        blocking(move || crate::doctor::Report::collect(&state.env, &state.out, None, false))
            .await??;
    Ok(Json(report.to_json()))
}

/// The query of `GET /api/qr`.
#[derive(Debug, Deserialize)]
pub struct QrQuery {
    data: String,
}

/// `GET /api/qr?data=...`: `data` as a QR code, in SVG (made here: no network).
pub async fn qr(
    query: Result<Query<QrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = query else {
        return Err(ApiError::bad_request(
            "bad_request",
            "expected ?data=<text to encode>",
        ));
    };
    if q.data.is_empty() || q.data.len() > MAX_QR_DATA {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("data must be 1 to {MAX_QR_DATA} bytes"),
        ));
    }
    let code = qrcode::QrCode::new(q.data.as_bytes()).map_err(|e| {
        ApiError::bad_request("bad_request", format!("cannot encode as a QR code: {e}"))
    })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_kinds_map_to_the_dashboard_names() {
        assert_eq!(flow_name(flow::DEVICE_CODE), "device_code");
        assert_eq!(flow_name(flow::PKCE_REDIRECT), "pkce");
        assert_eq!(flow_name(flow::EXTERNAL), "external");
        assert_eq!(flow_name(flow::API_KEY), "external");
        assert_eq!(flow_name("something_new"), "external");
        assert!(
            startable(flow::DEVICE_CODE) && !startable(flow::API_KEY) && !startable(flow::EXTERNAL)
        );
    }
}
