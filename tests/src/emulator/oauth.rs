//! The portal: device code, token (login poll and refresh), and the verification page.

use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::http::{html_escape, html_response, json_response, mask, parse_form, Form, Req};
use super::state::{encode_expiry, CodeStatus, DeviceCode, RefreshOutcome, Shared};
use super::{CLIENT_ID, LOGIN_GRANT, SCOPE};

/// MiniMax's `base_resp` code for bad parameters.
const STATUS_INVALID_PARAMS: i64 = 2013;
const STATUS_INVALID_USER_CODE: i64 = 1004;
const STATUS_USER_CODE_EXPIRED: i64 = 1005;
const STATUS_DENIED: i64 = 1001;

/// An OAuth-style error that also carries MiniMax's `base_resp`, so clients reading either shape
/// get the reason.
fn invalid(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({
            "error": error,
            "error_description": description,
            "base_resp": {"status_code": STATUS_INVALID_PARAMS, "status_msg": description},
        }),
    )
}

fn base_resp_error(status_code: i64, msg: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"base_resp": {"status_code": status_code, "status_msg": msg}}),
    )
}

/// A plain OAuth error body, the shape refresh failures have.
fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": error, "error_description": description}),
    )
}

/// The form body, or why it is not one.
fn form_of(req: &Req) -> Result<Form, String> {
    if !req.is_form() {
        return Err("content-type must be application/x-www-form-urlencoded".into());
    }
    parse_form(&req.body)
}

/// One required field of the device-code request.
struct Rule {
    field: &'static str,
    valid: fn(&str) -> bool,
    why: &'static str,
}

/// The device-code fields, checked in the order the contract lists them.
const DEVICE_CODE_RULES: [Rule; 6] = [
    Rule {
        field: "response_type",
        valid: |v| v == "code",
        why: "must be code",
    },
    Rule {
        field: "client_id",
        valid: |v| v == CLIENT_ID,
        why: "unknown client",
    },
    Rule {
        field: "scope",
        valid: |v| v == SCOPE,
        why: "must be \"group_id profile model.completion\"",
    },
    Rule {
        field: "code_challenge",
        valid: |v| v.len() == 43 && is_base64url(v),
        why: "must be 43 characters of base64url (S256 of the verifier)",
    },
    Rule {
        field: "code_challenge_method",
        valid: |v| v == "S256",
        why: "must be S256",
    },
    Rule {
        field: "state",
        valid: |v| !v.is_empty() && v.len() <= 512,
        why: "must be 1-512 characters",
    },
];

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `base64url_nopad(SHA-256(verifier))`, the S256 challenge.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `POST /oauth2/device/code`.
pub(crate) fn device_code(shared: &Shared, req: &Req, note: &mut String) -> Response {
    shared.lock().counters_mut(req.region).code_requests += 1;
    let form = match form_of(req) {
        Ok(form) => form,
        Err(why) => return invalid("invalid_request", &why),
    };
    for rule in DEVICE_CODE_RULES {
        match form.get(rule.field) {
            None => return invalid("invalid_request", &format!("missing field: {}", rule.field)),
            Some(v) if !(rule.valid)(v) => {
                let error = if rule.field == "client_id" {
                    "invalid_client"
                } else {
                    "invalid_request"
                };
                return invalid(error, &format!("invalid {}: {}", rule.field, rule.why));
            }
            Some(_) => {}
        }
    }
    match req.header("x-request-id") {
        None => return invalid("invalid_request", "missing header: x-request-id"),
        Some(id) if !is_uuid(id) => {
            return invalid(
                "invalid_request",
                "invalid header x-request-id: must be a UUID",
            )
        }
        Some(_) => {}
    }
    let (Some(challenge), Some(client_state)) = (form.get("code_challenge"), form.get("state"))
    else {
        return invalid("invalid_request", "missing field");
    };

    let mut state = shared.lock();
    let now = state.now_ms();
    let config = state.config.clone();
    let user_code = state.new_user_code();
    let expires_at_ms = now.saturating_add(config.code_ttl_ms);
    state.region_mut(req.region).codes.insert(
        user_code.clone(),
        DeviceCode {
            challenge: challenge.to_string(),
            expires_at_ms,
            status: CodeStatus::Pending,
            pending_answers: 0,
        },
    );
    let echoed_state = if config.wrong_state {
        format!("x{}", state.token(""))
    } else {
        client_state.to_string()
    };
    drop(state);
    note.push_str(&format!("user_code={user_code}"));
    let shown_code = format!(
        "{user_code}{}",
        config.user_code_suffix.as_deref().unwrap_or("")
    );
    json_response(
        StatusCode::OK,
        json!({
            "user_code": shown_code,
            "verification_uri": format!(
                "{}/verify?user_code={user_code}{}",
                req.region_base(),
                config.verification_uri_suffix.as_deref().unwrap_or("")
            ),
            "expired_in": encode_expiry(config.expiry_encoding, expires_at_ms, now),
            "interval": config.interval_ms,
            "state": echoed_state,
        }),
    )
}

/// `POST /oauth2/token`: the login poll or a refresh, by `grant_type`.
pub(crate) fn token(shared: &Shared, req: &Req, note: &mut String) -> Response {
    let form = match form_of(req) {
        Ok(form) => form,
        Err(why) => return invalid("invalid_request", &why),
    };
    match form.non_empty("grant_type") {
        Some(LOGIN_GRANT) => poll(shared, req, &form, note),
        Some("refresh_token") => refresh(shared, req, &form, note),
        Some(other) => oauth_error(
            "unsupported_grant_type",
            &format!("unsupported grant_type {other:?}"),
        ),
        None => invalid("invalid_request", "missing field: grant_type"),
    }
}

fn poll(shared: &Shared, req: &Req, form: &Form, note: &mut String) -> Response {
    let mut state = shared.lock();
    state.counters_mut(req.region).token_polls += 1;
    if form.get("client_id") != Some(CLIENT_ID) {
        return invalid("invalid_client", "missing or unknown client_id");
    }
    let Some(user_code) = form.non_empty("user_code") else {
        return invalid("invalid_request", "missing field: user_code");
    };
    let now = state.now_ms();
    let config = state.config.clone();
    let user_code = config
        .user_code_suffix
        .as_deref()
        .and_then(|suffix| user_code.strip_suffix(suffix))
        .unwrap_or(user_code);
    note.push_str(&format!("poll user_code={user_code}"));
    let Some(code) = state.region(req.region).codes.get(user_code).cloned() else {
        return base_resp_error(STATUS_INVALID_USER_CODE, "invalid user code");
    };
    if code.status == CodeStatus::Exchanged {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "invalid_grant",
                "error_description": "user code already used",
                "base_resp": {"status_code": STATUS_INVALID_USER_CODE, "status_msg": "user code already used"},
            }),
        );
    }
    if now >= code.expires_at_ms {
        return base_resp_error(STATUS_USER_CODE_EXPIRED, "user code expired");
    }
    let verifier_ok = form
        .non_empty("code_verifier")
        .is_some_and(|v| s256(v) == code.challenge);
    if !verifier_ok {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "invalid_grant",
                "error_description": "code_verifier does not match the code_challenge",
                "base_resp": {"status_code": STATUS_INVALID_PARAMS, "status_msg": "invalid_grant: code_verifier does not match the code_challenge"},
            }),
        );
    }

    let mut status = code.status;
    if status == CodeStatus::Pending
        && config.auto_approve
        && code.pending_answers >= config.approve_after_polls
    {
        state.approve(user_code);
        status = CodeStatus::Approved;
    }
    match status {
        CodeStatus::Pending => {
            let rs = state.region_mut(req.region);
            rs.counters.polls_pending += 1;
            if let Some(code) = rs.codes.get_mut(user_code) {
                code.pending_answers += 1;
            }
            note.push_str(" -> pending");
            json_response(StatusCode::OK, json!({"status": "pending"}))
        }
        CodeStatus::Denied => {
            note.push_str(" -> denied");
            json_response(
                StatusCode::OK,
                json!({
                    "status": "error",
                    "base_resp": {"status_code": STATUS_DENIED, "status_msg": "user denied authorization"},
                }),
            )
        }
        CodeStatus::Approved => {
            let (access, refresh, expires_at_ms) =
                state.mint_family(req.region, config.access_ttl_ms, now);
            let rs = state.region_mut(req.region);
            rs.counters.logins_completed += 1;
            if let Some(code) = rs.codes.get_mut(user_code) {
                code.status = CodeStatus::Exchanged;
            }
            note.push_str(&format!(" -> tokens {} {}", mask(&access), mask(&refresh)));
            let mut body = Map::new();
            body.insert("status".into(), "success".into());
            body.insert("access_token".into(), access.into());
            body.insert("refresh_token".into(), refresh.into());
            body.insert(
                "expired_in".into(),
                encode_expiry(config.expiry_encoding, expires_at_ms, now).into(),
            );
            body.insert("token_type".into(), "Bearer".into());
            if let Some(url) = config.resource_url {
                body.insert("resource_url".into(), url.into());
            }
            if let Some(message) = config.notification_message {
                body.insert("notification_message".into(), message.into());
            }
            json_response(StatusCode::OK, Value::Object(body))
        }
        // Answered above, before the code's status was consulted.
        CodeStatus::Exchanged => {
            base_resp_error(STATUS_INVALID_USER_CODE, "user code already used")
        }
    }
}

fn refresh(shared: &Shared, req: &Req, form: &Form, note: &mut String) -> Response {
    let mut state = shared.lock();
    state.counters_mut(req.region).refresh_requests += 1;
    if form.get("client_id") != Some(CLIENT_ID) {
        return oauth_error("invalid_client", "missing or unknown client_id");
    }
    let Some(presented) = form.non_empty("refresh_token") else {
        return oauth_error("invalid_request", "missing field: refresh_token");
    };
    note.push_str(&format!("refresh {}", mask(presented)));
    let config = state.config.clone();
    let now = state.now_ms();
    if let Some(status) = config.refresh_echo_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let encoded: String = presented.bytes().map(|b| format!("%{b:02X}")).collect();
        let error = if status == StatusCode::BAD_REQUEST {
            "invalid_grant"
        } else {
            "server_error"
        };
        note.push_str(" -> echoed in an error");
        // Written by hand so that the JSON-escaped form (`\/`) appears as such.
        let body = format!(
            r#"{{"error":"{error}","error_description":"refresh token {presented} is not valid","detail":"https://portal.example/why?refresh_token={encoded}","echo":"{}"}}"#,
            presented.replace('/', "\\/")
        );
        return Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap_or_default();
    }
    match state.refresh(req.region, presented, now) {
        RefreshOutcome::InvalidGrant => {
            state.counters_mut(req.region).refresh_invalid_grant += 1;
            note.push_str(" -> invalid_grant");
            oauth_error("invalid_grant", "refresh token is invalid or revoked")
        }
        RefreshOutcome::Reused => {
            state.counters_mut(req.region).refresh_reused += 1;
            note.push_str(" -> reused, family revoked");
            oauth_error(
                "refresh_token_reused",
                "refresh token was already used; every token of this login is revoked",
            )
        }
        RefreshOutcome::Rotated {
            access,
            refresh,
            access_expires_at_ms,
        } => {
            state.counters_mut(req.region).refresh_success += 1;
            state.last_rotation = Some(std::time::Instant::now());
            note.push_str(&format!(" -> {}", mask(&access)));
            let mut body = Map::new();
            body.insert("status".into(), "success".into());
            body.insert("access_token".into(), access.into());
            if let Some(refresh) = refresh {
                note.push_str(&format!(" {}", mask(&refresh)));
                body.insert("refresh_token".into(), refresh.into());
            }
            body.insert(
                "expired_in".into(),
                encode_expiry(config.expiry_encoding, access_expires_at_ms, now).into(),
            );
            body.insert("token_type".into(), "Bearer".into());
            if let Some(url) = config.resource_url {
                body.insert("resource_url".into(), url.into());
            }
            json_response(StatusCode::OK, Value::Object(body))
        }
    }
}

/// `GET /verify?user_code=…`: what the user opens in a browser to approve or deny.
pub(crate) fn verify_page(req: &Req) -> Response {
    let code = html_escape(&req.query_param("user_code").unwrap_or_default());
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MiniMax emulator: authorize</title></head>
<body>
<h1>Authorize hermes</h1>
<p>User code: <strong id="user-code">{code}</strong></p>
<form method="post" action="/_emulator/approve"><input type="hidden" name="user_code" value="{code}"><button id="approve" type="submit">Approve</button></form>
<form method="post" action="/_emulator/deny"><input type="hidden" name="user_code" value="{code}"><button id="deny" type="submit">Deny</button></form>
</body></html>
"#
    );
    html_response(StatusCode::OK, html)
}
