//! `RuntimeCredential::refresh`: the request, rotation, and the transient/terminal split.

use hermes_plugin_sdk::kind;
use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::testkit::{FakeHost, Reply};
use serde_json::{json, Value};

use crate::descriptor::SIGN_IN_AGAIN;
use crate::refresh::refresh;
use crate::testutil::*;
use crate::wire::{MAX_ERROR_BODY, TRUNCATED_SUFFIX};

fn refresh_with(
    reply: impl Fn() -> Reply + Send + Sync + 'static,
) -> (FakeHost, Result<Credential, PluginError>) {
    let f = fake();
    f.on_request(move |_| reply());
    let out = refresh(&f.sdk_host(), &stored(NOW + 30_000));
    (f, out)
}

fn refresh_json(status: u16, body: &str) -> Result<Credential, PluginError> {
    let body = body.to_string();
    refresh_with(move || Reply::json(status, &body)).1
}

fn assert_relogin(err: &PluginError) {
    assert_eq!(err.code.as_str(), "refresh_failed");
    assert!(err.relogin_required, "{}", err.message);
    assert_eq!(err.kind, kind::TERMINAL);
    assert!(err.message.ends_with(SIGN_IN_AGAIN), "{}", err.message);
    assert!(err
        .message
        .ends_with("Run `hermes auth add minimax-oauth` to sign in again."));
}

fn assert_transient(err: &PluginError) {
    assert_eq!(err.code.as_str(), "refresh_failed");
    assert!(!err.relogin_required, "{}", err.message);
    assert_eq!(err.kind, kind::TRANSIENT, "{}", err.message);
}

fn state_of(cred: &Credential) -> Value {
    serde_json::from_str(&cred.state).unwrap()
}

#[test]
fn refresh_request_form_and_url() {
    let (f, out) = refresh_with(|| Reply::json(200, &token_body(&json!({}))));
    out.unwrap();
    let reqs = f.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, "https://api.minimax.io/oauth/token");
    assert_eq!(r.header("accept"), Some("application/json"));
    let form: Vec<(String, String)> = r.form();
    assert_eq!(
        form,
        [
            ("grant_type".to_string(), "refresh_token".to_string()),
            (
                "client_id".to_string(),
                "78257093-7e40-4613-99e0-527b14b39113".to_string()
            ),
            ("refresh_token".to_string(), OLD_REFRESH.to_string()),
        ]
    );
}

#[test]
fn no_refresh_token_is_relogin_without_a_request() {
    let f = fake();
    let mut cred = stored(NOW);
    cred.refresh_token = "".into();
    let err = refresh(&f.sdk_host(), &cred).unwrap_err();
    assert_eq!(err.code.as_str(), "no_refresh_token");
    assert!(err.relogin_required);
    assert!(err.message.ends_with(SIGN_IN_AGAIN));
    assert!(f.requests().is_empty());
}

#[test]
fn refresh_portal_is_stored_then_override_then_region() {
    let f = fake();
    f.on_request(|_| Reply::json(200, &token_body(&json!({}))));
    f.set_config("MINIMAX_PORTAL_BASE_URL", "http://127.0.0.1:4010");
    let host = f.sdk_host();
    let mut cred = stored(NOW);
    cred.state = json!({"portal_base_url": "http://localhost:9/"})
        .to_string()
        .into();
    refresh(&host, &cred).unwrap();
    cred.state = "".into();
    refresh(&host, &cred).unwrap();

    let g = fake();
    g.on_request(|_| Reply::json(200, &token_body(&json!({}))));
    cred.region = "cn".into();
    let out = refresh(&g.sdk_host(), &cred).unwrap();
    assert_eq!(out.region.as_str(), "cn");
    assert_eq!(out.base_url.as_str(), "https://api.minimaxi.com/anthropic");

    let urls: Vec<String> = f
        .requests()
        .into_iter()
        .chain(g.requests())
        .map(|r| r.url)
        .collect();
    assert_eq!(
        urls,
        [
            "http://localhost:9/oauth/token",
            "http://127.0.0.1:4010/oauth/token",
            "https://api.minimaxi.com/oauth/token"
        ]
    );
}

#[test]
fn dead_refresh_token_markers_require_relogin() {
    for (status, body) in [
        (
            400,
            r#"{"error":"invalid_grant","error_description":"expired"}"#,
        ),
        (401, r#"{"error":"refresh_token_reused"}"#),
        (400, r#"{"error_description":"invalid_refresh_token"}"#),
        (401, r#"{"base_resp":{"status_msg":"invalid_grant"}}"#),
    ] {
        let err = refresh_json(status, body).unwrap_err();
        assert_relogin(&err);
        assert!(err.message.contains(&format!("HTTP {status}")));
    }
}

#[test]
fn regress_dead_refresh_token_is_terminal_so_the_host_quarantines() {
    // The Python original replayed a dead refresh token on every call; a terminal,
    // relogin-required error is what makes the host quarantine it instead.
    let err = refresh_json(400, r#"{"error":"refresh_token_reused"}"#).unwrap_err();
    assert!(err.relogin_required && !err.is_transient());
}

#[test]
fn a_200_that_is_not_a_success_is_transient() {
    // Rate limits and "system busy" arrive as 200 with a base_resp error: wiping the login
    // on them lost healthy accounts. Only a 400/401 naming a dead token is terminal.
    for body in [
        json!({"base_resp": {"status_code": 1002, "status_msg": "rate limit exceeded"}}),
        json!({"status": "error", "base_resp": {"status_code": 1000, "status_msg": "system busy, please retry"}}),
        json!({"status": "error", "base_resp": {"status_code": 1004, "status_msg": "token revoked"}}),
        json!({}),
        json!({"status": "pending"}),
        json!({"access_token": "x", "expired_in": 900}),
    ] {
        let err = refresh_json(200, &body.to_string()).unwrap_err();
        assert_transient(&err);
    }
    let err = refresh_json(
        200,
        &json!({"status": "error", "base_resp": {"status_msg": "system busy"}}).to_string(),
    )
    .unwrap_err();
    assert!(err.message.contains("system busy"), "{}", err.message);
}

#[test]
fn markers_outside_a_400_or_401_or_outside_the_error_fields_are_transient() {
    for (status, body) in [
        (502, r#"{"message":"upstream returned invalid_grant"}"#),
        (
            503,
            "<html><body>invalid_grant refresh_token_reused</body></html>",
        ),
        (500, r#"{"error":"invalid_grant"}"#),
        (403, r#"{"base_resp":{"status_msg":"invalid_grant"}}"#),
        (400, "invalid_refresh_token"),
        (400, r#"{"message":"invalid_grant"}"#),
        (401, r#"{"detail":{"error":"invalid_grant"}}"#),
    ] {
        let err = refresh_json(status, body).unwrap_err();
        assert_transient(&err);
    }
}

#[test]
fn refresh_asks_for_the_long_refresh_deadline() {
    let (f, out) = refresh_with(|| Reply::json(200, &token_body(&json!({}))));
    out.unwrap();
    assert_eq!(f.requests()[0].timeout_ms, 120_000);
}

#[test]
fn rate_limits_server_errors_and_other_4xx_are_transient() {
    for status in [429, 500, 502, 503, 504, 400, 401, 403, 404] {
        let err = refresh_json(status, r#"{"error":"something else"}"#).unwrap_err();
        assert_transient(&err);
    }
    let err = refresh_json(503, "").unwrap_err();
    assert_eq!(
        err.message.as_str(),
        "MiniMax token refresh failed (HTTP 503): Service Unavailable"
    );
}

#[test]
fn refresh_errors_give_the_servers_words_never_its_json_body() {
    let err = refresh_json(
        503,
        r#"{"error":"server_error","error_description":"try again later","base_resp":{"status_code":1000,"status_msg":"system busy"}}"#,
    )
    .unwrap_err();
    assert_transient(&err);
    assert_eq!(
        err.message.as_str(),
        "MiniMax token refresh failed (HTTP 503): system busy"
    );
    let err = refresh_json(500, r#"{"error":"server_error"}"#).unwrap_err();
    assert_eq!(
        err.message.as_str(),
        "MiniMax token refresh failed (HTTP 500): server_error"
    );
    // A JSON body without any message: the reason phrase, not the JSON.
    let err = refresh_json(502, r#"{"base_resp":{"status_code":1}}"#).unwrap_err();
    assert_eq!(
        err.message.as_str(),
        "MiniMax token refresh failed (HTTP 502): Bad Gateway"
    );
    // The dead-token verdict keeps its words too.
    let err = refresh_json(
        400,
        r#"{"error":"invalid_grant","error_description":"refresh token reused"}"#,
    )
    .unwrap_err();
    assert_relogin(&err);
    assert!(
        err.message
            .starts_with("MiniMax token refresh failed (HTTP 400): refresh token reused."),
        "{}",
        err.message
    );
}

#[test]
fn malformed_or_truncated_json_is_transient() {
    for body in [
        "<html>oops</html>",
        r#"{"status":"success","access_tok"#,
        "",
        "null",
    ] {
        assert_transient(&refresh_json(200, body).unwrap_err());
    }
    // A body the host cut at its size cap is never parsed, even when the prefix is valid.
    let (_, out) = refresh_with(|| cut_reply(200, &token_body(&json!({})), ""));
    let err = out.unwrap_err();
    assert_transient(&err);
    assert!(err.message.contains("cut short"));
}

#[test]
fn host_transient_errors_are_transient() {
    let (_, out) = refresh_with(Reply::dropped);
    assert_transient(&out.unwrap_err());
    let (_, out) =
        refresh_with(|| Reply::Error(PluginError::transient("timeout", "timed out after 15 s")));
    assert_transient(&out.unwrap_err());
}

#[test]
fn success_without_access_token_or_with_bad_expiry_is_transient() {
    let body = token_body(&json!({"access_token": null}));
    assert_transient(&refresh_json(200, &body).unwrap_err());
    for bad in [json!(null), json!("900"), json!(1.5), json!(-1)] {
        let body = token_body(&json!({ "expired_in": bad }));
        let err = refresh_json(200, &body).unwrap_err();
        assert_transient(&err);
        assert!(err.message.contains("expired_in"), "{}", err.message);
    }
}

#[test]
fn rotation_replaces_the_refresh_token() {
    let cred = refresh_json(200, &token_body(&json!({}))).unwrap();
    assert_eq!(cred.access_token.as_str(), NEW_ACCESS);
    assert_eq!(cred.refresh_token.as_str(), NEW_REFRESH);
}

#[test]
fn rotation_keeps_the_old_refresh_token_when_omitted() {
    for omitted in [json!(null), json!("")] {
        let cred = refresh_json(200, &token_body(&json!({ "refresh_token": omitted }))).unwrap();
        assert_eq!(cred.access_token.as_str(), NEW_ACCESS);
        assert_eq!(cred.refresh_token.as_str(), OLD_REFRESH);
    }
}

#[test]
fn success_updates_state_and_clears_last_auth_error() {
    let f = fake();
    f.on_request(|_| Reply::json(200, &token_body(&json!({}))));
    f.advance(60_000);
    let mut cred = stored(NOW);
    let mut st: Value = serde_json::from_str(&cred.state).unwrap();
    st["last_auth_error"] = json!({"provider": "minimax-oauth", "code": "refresh_failed",
        "message": "old", "reason": "runtime_refresh_failure", "relogin_required": true, "at": "x"});
    cred.state = st.to_string().into();
    let out = refresh(&f.sdk_host(), &cred).unwrap();
    assert_eq!(out.expires_at_ms, TOKEN_EXPIRY);
    assert_eq!(out.label.as_str(), "work");
    assert_eq!(out.region.as_str(), "global");
    assert_eq!(out.base_url.as_str(), "https://api.minimax.io/anthropic");
    assert_eq!(
        state_of(&out),
        json!({
            "provider": "minimax-oauth",
            "region": "global",
            "portal_base_url": "https://api.minimax.io",
            "inference_base_url": "https://api.minimax.io/anthropic",
            "client_id": "78257093-7e40-4613-99e0-527b14b39113",
            "scope": "group_id profile model.completion",
            "token_type": "Bearer",
            "obtained_at": "2023-11-14T22:14:20+00:00",
            "expires_in": 840,
            "some_future_key": {"kept": true}
        })
    );
}

#[test]
fn regress_year_583911_ms_expiry_refresh() {
    let cred = refresh_json(200, &token_body(&json!({"expired_in": TOKEN_EXPIRY}))).unwrap();
    assert_eq!(cred.expires_at_ms, TOKEN_EXPIRY);
    let cred = refresh_json(200, &token_body(&json!({"expired_in": 900}))).unwrap();
    assert_eq!(cred.expires_at_ms, NOW + 900_000);
}

#[test]
fn refresh_resource_url_follows_the_allow_list() {
    let cred = refresh_json(
        200,
        &token_body(&json!({"resource_url": "https://evil.example/anthropic"})),
    )
    .unwrap();
    assert_eq!(cred.base_url.as_str(), "https://api.minimax.io/anthropic");
    let cred = refresh_json(
        200,
        &token_body(&json!({"resource_url": "https://api.minimaxi.com/anthropic"})),
    )
    .unwrap();
    assert_eq!(cred.base_url.as_str(), "https://api.minimaxi.com/anthropic");
    assert_eq!(
        state_of(&cred)["inference_base_url"],
        "https://api.minimaxi.com/anthropic"
    );
}

#[test]
fn regress_unbounded_error_body_in_refresh_failed() {
    let err = refresh_json(500, &"e".repeat(100_000)).unwrap_err();
    assert_transient(&err);
    let prefix = "MiniMax token refresh failed (HTTP 500): ";
    assert_eq!(
        err.message.len(),
        prefix.len() + MAX_ERROR_BODY + TRUNCATED_SUFFIX.len()
    );
    let (_, out) = refresh_with(|| cut_reply(502, "partial", ""));
    let err = out.unwrap_err();
    assert!(err.message.ends_with("partial...[truncated]"));
}

#[test]
fn refresh_errors_never_echo_tokens() {
    let f = fake();
    f.on_request(|rec| {
        Reply::json(
            400,
            &json!({
                "error": "invalid_grant",
                "error_description": format!(
                    "{} is reused",
                    rec.field("refresh_token").unwrap_or_default()
                ),
            })
            .to_string(),
        )
    });
    let err = refresh(&f.sdk_host(), &stored(NOW)).unwrap_err();
    assert_relogin(&err);
    assert!(!err.message.contains(OLD_REFRESH), "{}", err.message);
    assert!(!err.message.contains(OLD_ACCESS));
}

#[test]
fn refresh_of_a_python_written_block_drops_token_copies_from_state() {
    let cred = refresh_json(200, &token_body(&json!({}))).unwrap();
    let st = state_of(&cred);
    for key in [
        "access_token",
        "refresh_token",
        "expires_at",
        "expires_at_ms",
        "label",
        "last_auth_error",
    ] {
        assert!(st.get(key).is_none(), "{key}");
    }
    assert!(!cred.state.contains(OLD_REFRESH) && !cred.state.contains(NEW_REFRESH));
}
