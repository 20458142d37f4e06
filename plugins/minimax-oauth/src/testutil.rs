//! Shared test fixtures: a scripted MiniMax over the testkit's fake host.

use hermes_plugin_sdk::log_level;
use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::testkit::{FakeHost, Recorded, Reply};
use serde_json::{json, Value};

use crate::login;

pub const NOW: i64 = 1_700_000_000_000;
pub const CODE_DEADLINE: i64 = NOW + 600_000;
pub const TOKEN_EXPIRY: i64 = NOW + 900_000;
pub const USER_CODE: &str = "ABCD-1234";
pub const VERIFICATION_URI: &str = "https://account.minimax.io/device?user_code=ABCD-1234";
pub const OLD_ACCESS: &str = "at-old-0123456789";
pub const OLD_REFRESH: &str = "rt-old-0123456789";
pub const NEW_ACCESS: &str = "at-new-0123456789";
pub const NEW_REFRESH: &str = "rt-new-0123456789";

pub fn fake() -> FakeHost {
    FakeHost::new(NOW)
}

/// A `/oauth/code` answer echoing the request's state, with `patch` merged in (a `null`
/// value removes the key).
pub fn code_reply(rec: &Recorded, patch: &Value) -> Reply {
    let mut body = json!({
        "user_code": USER_CODE,
        "verification_uri": VERIFICATION_URI,
        "expired_in": CODE_DEADLINE,
        "interval": 5000,
        "state": rec.field("state").unwrap_or_default(),
    });
    merge(&mut body, patch);
    Reply::json(200, &body.to_string())
}

/// A successful `/oauth/token` answer with `patch` merged in.
pub fn token_body(patch: &Value) -> String {
    let mut body = json!({
        "status": "success",
        "access_token": NEW_ACCESS,
        "refresh_token": NEW_REFRESH,
        "expired_in": TOKEN_EXPIRY,
        "token_type": "Bearer",
    });
    merge(&mut body, patch);
    body.to_string()
}

fn merge(body: &mut Value, patch: &Value) {
    if let (Some(b), Some(p)) = (body.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Starts a login with the default code answer; the fake then answers nothing.
pub fn started(fake: &FakeHost) -> Challenge {
    fake.on_request(|rec| code_reply(rec, &json!({})));
    let ch = login::start(&fake.sdk_host(), "", "").unwrap();
    fake.on_request(|_| Reply::json(500, "no script"));
    ch
}

/// The session blob of a challenge, parsed.
pub fn session(ch: &Challenge) -> Value {
    serde_json::from_str(ch.session.as_str()).unwrap()
}

/// A stored login as the host hands it back: the Python-shaped block as `state`.
pub fn stored(expires_at_ms: i64) -> Credential {
    Credential {
        access_token: OLD_ACCESS.into(),
        refresh_token: OLD_REFRESH.into(),
        expires_at_ms,
        region: "global".into(),
        base_url: "https://api.minimax.io/anthropic".into(),
        label: "work".into(),
        state: json!({
            "provider": "minimax-oauth",
            "region": "global",
            "portal_base_url": "https://api.minimax.io",
            "inference_base_url": "https://api.minimax.io/anthropic",
            "client_id": "78257093-7e40-4613-99e0-527b14b39113",
            "scope": "group_id profile model.completion",
            "token_type": "Bearer",
            "access_token": OLD_ACCESS,
            "refresh_token": OLD_REFRESH,
            "obtained_at": "2023-11-14T22:00:00+00:00",
            "expires_at": "2023-11-14T22:13:50+00:00",
            "expires_at_ms": expires_at_ms,
            "expires_in": 900,
            "label": "work",
            "some_future_key": {"kept": true},
        })
        .to_string()
        .into(),
    }
}

/// Every log line, for asserting that no secret leaked.
pub fn all_logs(fake: &FakeHost) -> String {
    fake.logs()
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a debug line mentioning `needle` was logged.
pub fn logged_debug(fake: &FakeHost, needle: &str) -> bool {
    fake.logs()
        .iter()
        .any(|(lvl, l)| *lvl == log_level::DEBUG && l.contains(needle))
}

/// A whole response the host cut at its size cap (`truncated`), optionally after redirects
/// (`final_url`; empty: the request's URL).
pub fn cut_reply(status: u16, body: &str, final_url: &str) -> Reply {
    let mut resp = Reply::response(status, body);
    resp.truncated = true;
    resp.final_url = final_url.into();
    Reply::Full(resp)
}

/// A whole response that arrived after redirects, at `final_url`.
pub fn redirected_reply(status: u16, body: &str, final_url: &str) -> Reply {
    let mut resp = Reply::response(status, body);
    resp.final_url = final_url.into();
    Reply::Full(resp)
}
