//! Request dispatch: region prefix, faults, routing, logging, and the small HTTP helpers the
//! endpoints share.
//!
//! One fallback handler routes by hand because every route exists twice (root and `/cn`), faults
//! match on the raw path, and the log line needs the outcome of every request alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::completions;
use super::net::{ConnHandle, ScriptedStream, Step};
use super::state::{Region, Shared};
use super::{control, messages, oauth, Fault};

/// Larger bodies are refused with 413; nothing legitimate comes close.
const MAX_BODY: usize = 1 << 20;

/// A request with its body read and its region prefix resolved.
pub(crate) struct Req {
    pub(crate) method: Method,
    /// The path as sent, e.g. `/cn/oauth2/token`.
    pub(crate) full_path: String,
    /// The path inside the region, e.g. `/oauth2/token`.
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) region: Region,
    pub(crate) port: u16,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The base URL of this request's region, as the client addressed the server.
    ///
    /// The `Host` header is used so a client that came in as `localhost` is sent back to
    /// `localhost`; anything that does not look like a host name falls back to the bound address.
    pub(crate) fn region_base(&self) -> String {
        let host = self
            .header("host")
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            })
            .map(str::to_string)
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.port));
        format!("http://{host}{}", self.region.prefix())
    }

    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        parse_form(query.as_bytes())
            .ok()?
            .get(name)
            .map(str::to_string)
    }

    fn content_type_is(&self, expected: &str) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(expected))
        })
    }

    pub(crate) fn is_form(&self) -> bool {
        self.content_type_is("application/x-www-form-urlencoded")
    }

    pub(crate) fn is_json(&self) -> bool {
        self.content_type_is("application/json")
    }

    pub(crate) fn wants_html(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.contains("text/html"))
    }
}

/// Counts a request as in flight until dropped (also when the handler is cancelled).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> InFlight {
        shared
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The axum handler behind every path.
pub(crate) async fn dispatch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let full_path = parts.uri.path().to_string();
    let _in_flight = (!full_path.contains("/_emulator")).then(|| InFlight::enter(&shared));
    let (region, path) = Region::split(&full_path);
    let path = path.to_string();
    let mut note = String::new();
    let response = match to_bytes(body, MAX_BODY).await {
        Ok(body) => {
            let req = Req {
                method: parts.method.clone(),
                full_path: full_path.clone(),
                path,
                query: parts.uri.query().map(str::to_string),
                headers: parts.headers,
                body,
                region,
                port: shared.port,
            };
            route(&shared, &req, &conn, &mut note).await
        }
        Err(_) => json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "invalid_request", "error_description": "request body too large or unreadable"}),
        ),
    };
    if shared.lock().config.log_requests {
        let outcome = if conn.is_killed() {
            "connection dropped".to_string()
        } else {
            response.status().as_u16().to_string()
        };
        eprintln!(
            "[minimax-emulator] {} {} -> {} ({} ms){}{}",
            parts.method,
            full_path,
            outcome,
            started.elapsed().as_millis(),
            if note.is_empty() { "" } else { " " },
            note.trim_end()
        );
    }
    response
}

async fn route(shared: &Shared, req: &Req, conn: &ConnHandle, note: &mut String) -> Response {
    if req.path == "/_emulator" || req.path.starts_with("/_emulator/") {
        return control::handle(shared, req);
    }
    let fault = {
        let mut state = shared.lock();
        let fault = state.take_fault(&req.full_path);
        if fault.is_some() {
            state.counters_mut(req.region).faults_injected += 1;
        }
        fault
    };
    if let Some(fault) = fault {
        note.push_str(&format!("fault={fault} "));
        match fault {
            Fault::Slow(delay) => tokio::time::sleep(delay).await,
            other => return fault_response(other, req, conn),
        }
    }

    if req.path == "/oauth2/token" && is_refresh(req) {
        let delay = shared.lock().config.refresh_delay_ms;
        if delay > 0 {
            note.push_str(&format!("delay={delay}ms "));
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }

    let post_only = |handler: fn(&Shared, &Req, &mut String) -> Response, note: &mut String| {
        if req.method == Method::POST {
            handler(shared, req, note)
        } else {
            method_not_allowed("POST")
        }
    };
    match req.path.as_str() {
        "/oauth/code" | "/oauth/token" => {
            let redirect = shared.lock().config.redirect_legacy_paths;
            if redirect {
                legacy_redirect(shared, req)
            } else if req.path == "/oauth/code" {
                post_only(oauth::device_code, note)
            } else {
                post_only(oauth::token, note)
            }
        }
        "/oauth2/device/code" => post_only(oauth::device_code, note),
        "/oauth2/token" => post_only(oauth::token, note),
        "/verify" => {
            if req.method == Method::GET {
                oauth::verify_page(req)
            } else {
                method_not_allowed("GET")
            }
        }
        "/anthropic/v1/messages" => {
            if req.method == Method::POST {
                messages::handle(shared, req, note)
            } else {
                method_not_allowed("POST")
            }
        }
        "/v1/chat/completions" => post_only(completions::handle, note),
        "/v1/models" => {
            if req.method == Method::GET {
                completions::models(shared, req, note)
            } else {
                method_not_allowed("GET")
            }
        }
        "/" | "/healthz" => json_response(
            StatusCode::OK,
            json!({"ok": true, "service": "minimax-emulator", "region": req.region.as_str()}),
        ),
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "error_description": format!("no route for {}", req.full_path)}),
        ),
    }
}

/// Production moved the portal endpoints and answers the old paths with 307; a client that does
/// not follow it (re-sending the form) fails the way the real one did.
fn legacy_redirect(shared: &Shared, req: &Req) -> Response {
    shared.lock().counters_mut(req.region).legacy_redirects += 1;
    let target = if req.path == "/oauth/code" {
        "/oauth2/device/code"
    } else {
        "/oauth2/token"
    };
    let mut location = format!("{}{target}", req.region_base());
    if let Some(q) = &req.query {
        location.push('?');
        location.push_str(q);
    }
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    set_header(&mut response, header::LOCATION, &location);
    response
}

/// Whether a token request carries the refresh grant.
fn is_refresh(req: &Req) -> bool {
    parse_form(&req.body)
        .map(|f| f.get("grant_type") == Some("refresh_token"))
        .unwrap_or(false)
}

fn fault_response(fault: Fault, req: &Req, conn: &ConnHandle) -> Response {
    let anthropic = req.path.starts_with("/anthropic/");
    match fault {
        Fault::Status500 => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            if anthropic {
                json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}})
            } else {
                json!({"base_resp": {"status_code": 1000, "status_msg": "internal server error"}})
            },
        ),
        Fault::Status429 => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                if anthropic {
                    json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit exceeded"}})
                } else {
                    json!({"base_resp": {"status_code": 1002, "status_msg": "rate limit exceeded"}})
                },
            );
            set_header(&mut response, HeaderName::from_static("retry-after"), "1");
            response
        }
        Fault::MalformedJson => raw_json(StatusCode::OK, Body::from("{\"status\":\"succ")),
        Fault::Answer(canned) => {
            let (status, content_type, body) = canned.response();
            let mut response = Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            set_header(&mut response, header::CONTENT_TYPE, content_type);
            response
        }
        Fault::DropConnection => {
            conn.kill();
            // Never written: the killed connection fails hyper's first write.
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Fault::TruncatedBody => {
            let sent: &'static [u8] = b"{\"status\":\"success\",\"access_token\":\"mm-at-";
            // The pause lets hyper flush the first chunk, so the client sees a real partial body
            // before the connection closes.
            let body = Body::from_stream(ScriptedStream::new([
                Step::Data(Bytes::from_static(sent)),
                Step::Delay(Duration::from_millis(50)),
                Step::Fail,
            ]));
            let mut response = raw_json(StatusCode::OK, body);
            // A stream body has no known length, so hyper sends this header as given.
            set_header(
                &mut response,
                header::CONTENT_LENGTH,
                &(sent.len() + 512).to_string(),
            );
            response
        }
        // Handled by the caller: a slow request is still answered normally.
        Fault::Slow(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn raw_json(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    set_header(&mut response, header::CONTENT_TYPE, "application/json");
    response
}

pub(crate) fn json_response(status: StatusCode, value: Value) -> Response {
    (status, Json(value)).into_response()
}

pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    set_header(
        &mut response,
        header::CONTENT_TYPE,
        "text/html; charset=utf-8",
    );
    response
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"error": "method_not_allowed", "error_description": format!("use {allow}")}),
    );
    set_header(&mut response, header::ALLOW, allow);
    response
}

/// Sets a header, skipping values that are not valid header text (they come from our own
/// formatting, so this only guards against surprises instead of panicking).
pub(crate) fn set_header(response: &mut Response, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// A decoded `application/x-www-form-urlencoded` body or query string.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, treating an empty value as missing.
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// Decodes form encoding strictly: a bad `%` escape or invalid UTF-8 is an error, not a guess.
pub(crate) fn parse_form(input: &[u8]) -> Result<Form, String> {
    let mut pairs = Vec::new();
    for part in input.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &part[..0]),
        };
        pairs.push((percent_decode(key)?, percent_decode(value)?));
    }
    Ok(Form(pairs))
}

fn percent_decode(input: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "bad percent escape in form data".to_string())?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "form data is not UTF-8".to_string())
}

/// Shows enough of a secret to tell two apart in a log, never enough to use it.
pub(crate) fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
