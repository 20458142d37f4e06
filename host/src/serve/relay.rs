//! Forwarding one request: pick the provider from `model`, take a fresh token, send the request
//! to the provider's API and stream its answer back as it arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::{route, translate, Gw, Wire};
use crate::auth::{Resolved, TokenSource};
use crate::chat::read_capped;
use crate::net::{Net, Policy, ERROR_BODY_CAP};
use crate::output::Output;

/// Largest whole answer translated between dialects.
const REPLY_CAP: usize = 8 * 1024 * 1024;

/// Longest wait for the provider's next bytes (headers or a chunk of the answer).
const IDLE: Duration = Duration::from_secs(300);
/// The Anthropic API version sent when the client names none.
const ANTHROPIC_VERSION: &str = "2023-06-01";

pub(crate) async fn messages(
    State(gw): State<Arc<Gw>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward(gw, Wire::Anthropic, headers, body).await
}

pub(crate) async fn chat_completions(
    State(gw): State<Arc<Gw>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward(gw, Wire::OpenAi, headers, body).await
}

/// One access-log line, written when the answer is finished or abandoned (`-v`).
struct Access {
    out: Output,
    path: &'static str,
    model: String,
    provider: String,
    status: u16,
    started: Instant,
    bytes: u64,
}

impl Drop for Access {
    fn drop(&mut self) {
        self.out.log(
            1,
            &format!(
                "serve: POST {} model={} provider={} -> {} in {} ms, {} bytes",
                self.path,
                crate::text::line(&self.model, 80),
                if self.provider.is_empty() {
                    "-"
                } else {
                    &self.provider
                },
                self.status,
                self.started.elapsed().as_millis(),
                self.bytes
            ),
        );
    }
}

async fn forward(gw: Arc<Gw>, wire: Wire, headers: HeaderMap, body: Bytes) -> Response {
    let mut access = Access {
        out: gw.out.clone(),
        path: match wire {
            Wire::Anthropic => "/v1/messages",
            Wire::OpenAi => "/v1/chat/completions",
        },
        model: String::new(),
        provider: String::new(),
        status: 0,
        started: Instant::now(),
        bytes: 0,
    };
    let fail = |access: &mut Access, status: StatusCode, message: &str| {
        access.status = status.as_u16();
        wire.error(status, message)
    };
    let mut request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return fail(
                &mut access,
                StatusCode::BAD_REQUEST,
                "the request body is not a JSON object",
            )
        }
    };
    let Some(model) = request
        .get("model")
        .and_then(Value::as_str)
        .map(String::from)
    else {
        return fail(
            &mut access,
            StatusCode::BAD_REQUEST,
            "the request names no model",
        );
    };
    access.model = model.clone();
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    // The per-request path decides from memory; the first request of a provider (which opens
    // it) and names several providers share go to a blocking thread.
    let fast = super::route_by_registry(&gw, &model).and_then(|r| match r {
        Ok(t) => gw.open_source(&t.entry.provider.id).map(|s| Ok((t, s))),
        Err(e) => Some(Err(e)),
    });
    let routed = match fast {
        Some(r) => r,
        None => {
            let gw2 = Arc::clone(&gw);
            tokio::task::spawn_blocking(move || {
                let target = route(&gw2, &model)?;
                let source = gw2
                    .source(&target.entry)
                    .map_err(|e| (StatusCode::BAD_GATEWAY, one_line(&e)))?;
                Ok::<_, (StatusCode, String)>((target, source))
            })
            .await
            .unwrap_or_else(|_| Err((StatusCode::INTERNAL_SERVER_ERROR, "routing failed".into())))
        }
    };
    let (target, source) = match routed {
        Ok(v) => v,
        Err((status, message)) => return fail(&mut access, status, &message),
    };
    access.provider = target.entry.provider.id.clone();
    let provider_wire = match target.entry.provider.api_mode.as_str() {
        m if m == Wire::Anthropic.api_mode() => Wire::Anthropic,
        m if m == Wire::OpenAi.api_mode() => Wire::OpenAi,
        other => {
            return fail(
                &mut access,
                StatusCode::BAD_GATEWAY,
                &format!(
                    "{} uses the {other} API, which hermes does not speak",
                    target.entry.provider.display_name
                ),
            )
        }
    };
    let upstream_body = if provider_wire == wire {
        // Same API: the request goes as it came, with the provider's name for the model.
        request["model"] = json!(target.model);
        Bytes::from(serde_json::to_vec(&request).unwrap_or_default())
    } else {
        if let Some(feature) = translate::untranslatable(wire.dialect(), &request) {
            return fail(
                &mut access,
                StatusCode::BAD_REQUEST,
                &format!(
                    "{} speaks the {} API and hermes cannot carry {feature} across to it; call a provider that speaks {} for this request",
                    target.entry.provider.display_name,
                    provider_wire.api_mode(),
                    wire.api_mode()
                ),
            );
        }
        let mut neutral = match wire.dialect().parse_request(&body) {
            Ok(r) => r,
            Err(m) => return fail(&mut access, StatusCode::BAD_REQUEST, &m),
        };
        neutral.model = target.model.clone();
        Bytes::from(provider_wire.dialect().request_body(&neutral).to_string())
    };
    let mut token = match resolve(&source, None).await {
        Ok(t) => t,
        Err((status, message)) => return fail(&mut access, status, &message),
    };
    let mut retried = false;
    loop {
        match send(
            &source.provider().policy,
            provider_wire,
            &headers,
            &token,
            upstream_body.clone(),
            stream,
        )
        .await
        {
            Ok(resp) if resp.status().as_u16() == 401 && !retried => {
                // Nothing reached the client yet: refresh once and try again.
                retried = true;
                token = match resolve(&source, Some(&token)).await {
                    Ok(t) => t,
                    Err((status, message)) => return fail(&mut access, status, &message),
                };
            }
            Ok(resp) if provider_wire == wire => return relay(resp, &token, access, wire).await,
            Ok(resp) => {
                return relay_translated(
                    resp,
                    &token,
                    access,
                    provider_wire,
                    wire,
                    &target.model,
                    stream,
                )
                .await
            }
            Err(message) => return fail(&mut access, StatusCode::BAD_GATEWAY, &message),
        }
    }
}

/// A token from the source (after a 401: a refreshed one), on a blocking thread: the source may
/// lock the store and call the plugin. A login that needs a new sign-in is the client's 401.
async fn resolve(
    source: &Arc<TokenSource>,
    rejected: Option<&Arc<Resolved>>,
) -> std::result::Result<Arc<Resolved>, (StatusCode, String)> {
    if rejected.is_none() {
        if let Some(fresh) = source.cached() {
            return Ok(fresh);
        }
    }
    let source = Arc::clone(source);
    let rejected = rejected.map(Arc::clone);
    let got = tokio::task::spawn_blocking(move || match rejected {
        Some(r) => source.after_unauthorized(&r),
        None => source.token(),
    })
    .await;
    match got {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => {
            let status = if e.needs_sign_in() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Err((status, one_line(&e)))
        }
        Err(_) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the token lookup failed".into(),
        )),
    }
}

fn one_line(e: &crate::Error) -> String {
    match e.help() {
        Some(h) => format!("{} ({h})", e.message()),
        None => e.message().to_string(),
    }
}

/// Request headers passed through to a provider of the same family; everything else (the
/// client's key above all) stays here.
const PASSED: &[&str] = &["anthropic-version", "anthropic-beta", "openai-beta"];

async fn send(
    policy: &Policy,
    wire: Wire,
    client_headers: &HeaderMap,
    token: &Resolved,
    body: Bytes,
    stream: bool,
) -> std::result::Result<reqwest::Response, String> {
    let url = wire.dialect().url(&token.base_url);
    let url = reqwest::Url::parse(&url)
        .map_err(|e| format!("the provider URL {url:?} is not valid: {e}"))?;
    policy.check(&url).map_err(|e| e.message.to_string())?;
    let host = url.host_str().unwrap_or("").to_string();
    let net = Net::get();
    let (name, value) = token.auth_header()?;
    let mut rb = net
        .client_for(&url)
        .post(url.clone())
        .header(name, value)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::ACCEPT,
            if stream {
                "text/event-stream"
            } else {
                "application/json"
            },
        );
    for h in PASSED
        .iter()
        .filter(|h| h.starts_with(wire.header_family()))
    {
        if let Some(v) = client_headers.get(*h) {
            rb = rb.header(*h, v.clone());
        }
    }
    if wire == Wire::Anthropic && !client_headers.contains_key("anthropic-version") {
        rb = rb.header("anthropic-version", ANTHROPIC_VERSION);
    }
    for (k, v) in &token.extra_headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let sent = std::time::Instant::now();
    let answer = match tokio::time::timeout(IDLE, rb.body(body).send()).await {
        Err(_) => Err(format!("{host} did not answer within {} s", IDLE.as_secs())),
        Ok(Err(e)) if e.is_connect() => Err(format!("cannot connect to {host}")),
        Ok(Err(_)) => Err(format!("the connection to {host} failed before an answer")),
        Ok(Ok(r)) => Ok(r),
    };
    crate::net::log_request(
        "POST",
        &url,
        answer
            .as_ref()
            .map(|r| r.status().as_u16())
            .map_err(String::as_str),
        sent.elapsed(),
    );
    answer
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and cookies are not passed back.
fn passed_back(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "set-cookie"
    )
}

/// Log `access` with the size of the body sent.
fn record_bytes(mut access: Access, bytes: usize) {
    access.bytes = bytes as u64;
}

/// The provider's answer, to the client, as it came except for any echo of the provider's token
/// (masked): an error body capped; a whole answer with its length corrected; a stream chunk by
/// chunk as the client takes it.
async fn relay(
    resp: reqwest::Response,
    token: &Resolved,
    mut access: Access,
    wire: Wire,
) -> Response {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    access.status = status.as_u16();
    let mut headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_str().as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            if passed_back(&name) {
                headers.append(name, value);
            }
        }
    }
    let secret = token.token.expose().to_string();
    let whole = resp.content_length().is_some_and(|n| n <= REPLY_CAP as u64);
    let body = if status.as_u16() >= 400 || whole {
        let cap = if status.as_u16() >= 400 {
            ERROR_BODY_CAP
        } else {
            REPLY_CAP
        };
        let buf = match read_capped(resp, cap, IDLE).await {
            Ok(b) => b,
            Err(m) => {
                access.status = 502;
                return wire.error(
                    StatusCode::BAD_GATEWAY,
                    &format!("the provider's answer: {m}"),
                );
            }
        };
        let mut r = crate::secret::StreamRedactor::new(&[&secret]);
        let mut out = r.push(&buf);
        out.extend(r.finish());
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
        record_bytes(access, out.len());
        Body::from(out)
    } else {
        headers.remove(header::CONTENT_LENGTH);
        let redactor = crate::secret::StreamRedactor::new(&[&secret]);
        Body::from_stream(futures_util::stream::unfold(
            (Some(resp), redactor, access),
            |(resp, mut redactor, mut access)| async move {
                let mut resp = resp?;
                loop {
                    let (out, more) = match tokio::time::timeout(IDLE, resp.chunk()).await {
                        Ok(Ok(Some(chunk))) => (redactor.push(&chunk), true),
                        Ok(Ok(None)) => (redactor.finish(), false),
                        Ok(Err(e)) => {
                            return Some((Err(std::io::Error::other(e)), (None, redactor, access)))
                        }
                        Err(_) => {
                            let e = std::io::Error::other("the provider stalled");
                            return Some((Err(e), (None, redactor, access)));
                        }
                    };
                    if out.is_empty() && more {
                        continue;
                    }
                    if out.is_empty() {
                        return None;
                    }
                    access.bytes += out.len() as u64;
                    let next = more.then_some(resp);
                    return Some((Ok(Bytes::from(out)), (next, redactor, access)));
                }
            },
        ))
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// The provider's answer in its dialect, to a client that speaks the other one.
async fn relay_translated(
    resp: reqwest::Response,
    token: &Resolved,
    mut access: Access,
    provider: Wire,
    client: Wire,
    model: &str,
    stream: bool,
) -> Response {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    access.status = status.as_u16();
    let secret = token.token.expose().to_string();
    let redact = move |s: &str| crate::secret::redact(s, &[&secret]);
    if status.as_u16() >= 400 || !stream {
        let cap = if status.as_u16() >= 400 {
            ERROR_BODY_CAP
        } else {
            REPLY_CAP
        };
        let bytes = match read_capped(resp, cap, IDLE).await {
            Ok(b) => b,
            Err(m) => {
                access.status = 502;
                return client.error(
                    StatusCode::BAD_GATEWAY,
                    &format!("the provider's answer: {m}"),
                );
            }
        };
        if status.as_u16() >= 400 {
            let m = crate::chat::dialect::error_text(provider.dialect(), &bytes);
            return client.error(status, &crate::text::line(&redact(&m), 2000));
        }
        let value = match translate::answer(provider.dialect(), client.dialect(), &bytes) {
            Ok(v) => v,
            Err(m) => {
                access.status = 502;
                return client.error(
                    StatusCode::BAD_GATEWAY,
                    &format!("the answer for {model} could not be read: {}", redact(&m)),
                );
            }
        };
        let text = value.to_string();
        record_bytes(access, text.len());
        let mut r = Response::new(Body::from(text));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    }
    let translator = translate::Stream::new(provider.dialect(), client.dialect(), model);
    let body = Body::from_stream(futures_util::stream::unfold(
        (Some(resp), translator, access, redact),
        |(resp, mut t, mut access, redact)| async move {
            let mut resp = resp?;
            loop {
                let out = match tokio::time::timeout(IDLE, resp.chunk()).await {
                    Ok(Ok(Some(chunk))) => t.push(&chunk, &redact),
                    Ok(Ok(None)) => t.finish(&redact),
                    Ok(Err(_)) | Err(_) => t.finish(&redact),
                };
                let last = t.done();
                if out.is_empty() && !last {
                    continue;
                }
                access.bytes += out.len() as u64;
                let next = if last { None } else { Some(resp) };
                return Some((
                    Ok::<_, std::io::Error>(Bytes::from(out)),
                    (next, t, access, redact),
                ));
            }
        },
    ));
    let mut out = Response::new(body);
    *out.status_mut() = status;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out
}
