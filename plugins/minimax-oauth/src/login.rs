//! Device-code login with PKCE: `POST /oauth/code`, then `POST /oauth/token` until approved.
//!
//! The host drives the loop (interval, countdown, cancel) so that the CLI and the dashboard
//! share it; this module makes one request per call and keeps everything it needs between
//! calls in the session blob, which only it reads.

use hermes_plugin_api::prelude::*;
use hermes_plugin_api::sdk::Host;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::descriptor::{
    self, Region, CLIENT_ID, INFERENCE_OVERRIDE, PORTAL_OVERRIDE, SCOPE, USER_CODE_GRANT,
};
use crate::expiry::parse_expired_in;
use crate::pkce::{self, Pkce};
use crate::state::{write_state, Issued};
use crate::wire::{self, endpoint, str_field};

/// The floor of the poll interval: MiniMax sends `interval` in ms, and a missing or tiny one
/// must not turn polling into a busy loop.
pub const MIN_POLL_INTERVAL_MS: u64 = 2_000;
/// The message of the `timeout` error, part of the contract.
pub const TIMEOUT_MESSAGE: &str = "MiniMax OAuth timed out before authorization completed.";

/// What `poll` needs between calls. Serialized as the challenge's opaque session; it holds
/// the PKCE verifier, so it is never logged and never shown.
#[derive(Serialize, Deserialize)]
pub struct Session {
    /// Region name of the login.
    pub region: String,
    /// Portal base URL the code was requested from (overrides applied).
    pub portal_base_url: String,
    /// Inference base URL to store with the credential (overrides applied).
    pub inference_base_url: String,
    /// The code the user types.
    pub user_code: String,
    /// The PKCE verifier (secret).
    pub code_verifier: String,
    /// When the code stops working, unix ms.
    pub deadline_ms: i64,
    /// Poll interval, ms.
    pub interval_ms: u64,
}

/// Starts a login in `region` (empty: the default). `options` is accepted for interface
/// compatibility; this provider defines none and ignores it.
pub fn start(host: &Host, region: &str, _options: &str) -> Result<Challenge, PluginError> {
    let region = resolve_region(region)?;
    let portal = host
        .config(PORTAL_OVERRIDE)
        .unwrap_or_else(|| region.portal.to_string());
    let inference = host
        .config(INFERENCE_OVERRIDE)
        .unwrap_or_else(|| region.inference.to_string());
    let pkce = Pkce::generate(host)?;
    let request_id = pkce::request_id(host)?;

    let resp = wire::post_form(
        host,
        &endpoint(&portal, "/oauth/code"),
        &[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("scope", SCOPE),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", &pkce.state),
        ],
        &[("x-request-id", &request_id)],
    )
    .map_err(|e| authorization_failed(e.kind, &e.message))?;

    if resp.status != 200 {
        // The status and the server's own words, never its raw JSON.
        return Err(PluginError::new(
            kind_for_status(resp.status),
            "authorization_failed",
            format!(
                "MiniMax OAuth authorization failed (HTTP {}): {}",
                resp.status,
                wire::describe_error_body(&resp, &[])
            ),
        ));
    }
    let Some(obj) = wire::json_object(&resp) else {
        return Err(authorization_failed(
            kind::TRANSIENT,
            "the response was not a JSON object",
        ));
    };
    let user_code = str_field(&obj, "user_code").ok_or_else(|| incomplete("user_code"))?;
    let verification_uri =
        str_field(&obj, "verification_uri").ok_or_else(|| incomplete("verification_uri"))?;
    let expired_in = present(&obj, "expired_in").ok_or_else(|| incomplete("expired_in"))?;
    if obj.get("state").and_then(Value::as_str) != Some(pkce.state.as_str()) {
        return Err(PluginError::terminal(
            "state_mismatch",
            "MiniMax OAuth state mismatch (possible CSRF).",
        ));
    }
    // The host opens this in a browser: anything but a web URL (file:, javascript:) is refused.
    if !matches!(wire::scheme_and_host(verification_uri), Some((s, _)) if s == "https" || s == "http")
    {
        return Err(authorization_failed(
            kind::TERMINAL,
            "verification_uri is not an http(s) URL",
        ));
    }
    let deadline_ms = parse_expired_in(expired_in, host.now_ms())?;
    let interval_ms = poll_interval_ms(obj.get("interval"));

    let session = Session {
        region: region.name.to_string(),
        portal_base_url: portal,
        inference_base_url: inference,
        user_code: user_code.to_string(),
        code_verifier: pkce.verifier,
        deadline_ms,
        interval_ms,
    };
    let session = serde_json::to_string(&session).map_err(|_| {
        PluginError::new(
            kind::BUG,
            "session_encoding",
            "could not encode the login session",
        )
    })?;
    Ok(Challenge {
        user_code: user_code.into(),
        verification_uri: verification_uri.into(),
        expires_at_ms: deadline_ms,
        interval_ms,
        session: session.into(),
    })
}

/// One poll of a started login.
///
/// `status: "error"` becomes a [`poll_status::DENIED`] outcome whose message is MiniMax's
/// `base_resp.status_msg` (empty when absent), not an `authorization_denied` error, so the
/// host shows "denied" the same way for every provider. Anything that may clear up by itself
/// (a dropped connection, a malformed 200, an unknown status) is reported as pending and
/// logged at debug level; the deadline bounds it.
pub fn poll(host: &Host, session: &str) -> Result<PollOutcome, PluginError> {
    let s: Session = serde_json::from_str(session).map_err(|_| {
        PluginError::new(
            kind::INVALID_INPUT,
            "invalid_session",
            "the MiniMax login session is not valid; start the login again",
        )
    })?;
    if host.now_ms() >= s.deadline_ms {
        return Err(PluginError::terminal("timeout", TIMEOUT_MESSAGE));
    }
    let secrets = [s.code_verifier.as_str()];

    let resp = match wire::post_form(
        host,
        &endpoint(&s.portal_base_url, "/oauth/token"),
        &[
            ("grant_type", USER_CODE_GRANT),
            ("client_id", CLIENT_ID),
            ("user_code", &s.user_code),
            ("code_verifier", &s.code_verifier),
        ],
        &[],
    ) {
        Ok(resp) => resp,
        Err(e) if e.is_transient() => {
            host.debug(&format!(
                "minimax-oauth: token poll failed transiently ({}: {}); polling again",
                e.code,
                wire::clean(&e.message, &secrets)
            ));
            return Ok(PollOutcome::pending());
        }
        Err(e) => {
            return Err(PluginError::new(
                e.kind,
                "token_exchange_failed",
                format!("MiniMax OAuth error: {}", wire::clean(&e.message, &secrets)),
            ))
        }
    };

    if resp.status != 200 {
        return Err(PluginError::new(
            kind_for_status(resp.status),
            "token_exchange_failed",
            format!(
                "MiniMax OAuth error (HTTP {}): {}",
                resp.status,
                wire::describe_error_body(&resp, &secrets)
            ),
        ));
    }
    let Some(obj) = wire::json_object(&resp) else {
        host.debug(&format!(
            "minimax-oauth: token poll got a 200 that is not a JSON object ({} bytes); polling again",
            resp.body.len()
        ));
        return Ok(PollOutcome::pending());
    };
    match obj.get("status").and_then(Value::as_str) {
        Some("success") => approved(host, &s, &obj),
        Some("error") => Ok(PollOutcome {
            status: poll_status::DENIED,
            credential: ROption::RNone,
            // Only MiniMax's own words: the host already says "sign-in was denied".
            message: wire::status_msg(&obj)
                .map(|msg| wire::clean(msg, &secrets))
                .unwrap_or_default()
                .into(),
            interval_ms: 0,
        }),
        Some("pending") => Ok(PollOutcome::pending()),
        other => {
            let shown: String = wire::one_line(other.unwrap_or("<none>"))
                .chars()
                .take(64)
                .collect();
            host.debug(&format!(
                "minimax-oauth: token poll got unknown status {shown:?}; polling again"
            ));
            Ok(PollOutcome::pending())
        }
    }
}

/// The credential of a `status: "success"` answer.
fn approved(
    host: &Host,
    s: &Session,
    obj: &Map<String, Value>,
) -> Result<PollOutcome, PluginError> {
    let access_token =
        str_field(obj, "access_token").ok_or_else(|| token_incomplete("access_token"))?;
    let refresh_token =
        str_field(obj, "refresh_token").ok_or_else(|| token_incomplete("refresh_token"))?;
    let expired_in = present(obj, "expired_in").ok_or_else(|| token_incomplete("expired_in"))?;
    let now = host.now_ms();
    let expires_at_ms = parse_expired_in(expired_in, now)?;
    let region = descriptor::region_or_default(&s.region);
    let resource_url = str_field(obj, "resource_url");
    let inference = trusted_inference_base(host, resource_url, &s.inference_base_url);

    let state = write_state(
        None,
        &Issued {
            region,
            portal_base_url: &s.portal_base_url,
            inference_base_url: &inference,
            client_id: CLIENT_ID,
            scope: SCOPE,
            token_type: str_field(obj, "token_type").unwrap_or("Bearer"),
            resource_url,
            obtained_at_ms: now,
            expires_at_ms,
        },
    );
    let cred = Credential {
        access_token: access_token.into(),
        refresh_token: refresh_token.into(),
        expires_at_ms,
        region: region.name.into(),
        base_url: inference.into(),
        label: RString::new(),
        state: state.into(),
    };
    Ok(PollOutcome::approved(
        cred,
        str_field(obj, "notification_message").unwrap_or(""),
    ))
}

/// The inference base to use after a token response: its `resource_url` only when it points
/// at an allow-listed MiniMax host, or at loopback while `fallback` (the configured base) is
/// loopback too (a local emulator or proxy); else `fallback`. A server-supplied URL would
/// otherwise decide where every later bearer token is sent, a local service included.
pub fn trusted_inference_base(host: &Host, resource_url: Option<&str>, fallback: &str) -> String {
    let local = |u: &str| wire::scheme_and_host(u).is_some_and(|(_, h)| wire::is_loopback(&h));
    match resource_url {
        Some(url) if wire::is_trusted_base_url(url) && (!local(url) || local(fallback)) => {
            url.trim().trim_end_matches('/').to_string()
        }
        Some(url) => {
            let shown = wire::scheme_and_host(url).map_or("<unparseable>".to_string(), |(_, h)| h);
            host.debug(&format!(
                "minimax-oauth: ignoring resource_url on untrusted host {shown}"
            ));
            fallback.to_string()
        }
        None => fallback.to_string(),
    }
}

/// The poll interval from the code response's `interval` (ms): at least 2 s; missing, zero or
/// not a non-negative integer reads as 2 s.
pub fn poll_interval_ms(interval: Option<&Value>) -> u64 {
    interval
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .max(MIN_POLL_INTERVAL_MS)
}

fn resolve_region(name: &str) -> Result<Region, PluginError> {
    if name.trim().is_empty() {
        return Ok(descriptor::DEFAULT_REGION);
    }
    descriptor::region(name).ok_or_else(|| {
        PluginError::new(
            kind::INVALID_INPUT,
            "unknown_region",
            format!(
                "unknown MiniMax region {:?}; valid regions: {}",
                name.chars().take(64).collect::<String>(),
                descriptor::region_names()
            ),
        )
    })
}

/// A field that is present and not null.
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn kind_for_status(status: u16) -> u32 {
    if wire::status_is_transient(status) {
        kind::TRANSIENT
    } else {
        kind::TERMINAL
    }
}

fn authorization_failed(kind: u32, detail: &str) -> PluginError {
    PluginError::new(
        kind,
        "authorization_failed",
        format!("MiniMax OAuth authorization failed: {detail}"),
    )
}

fn incomplete(field: &str) -> PluginError {
    PluginError::terminal(
        "authorization_incomplete",
        format!("MiniMax OAuth response missing field: {field}"),
    )
}

fn token_incomplete(field: &str) -> PluginError {
    PluginError::terminal(
        "token_incomplete",
        format!("MiniMax OAuth token response missing field: {field}"),
    )
}
