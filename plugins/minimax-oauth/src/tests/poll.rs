//! `AuthFlow::poll`: the `/oauth/token` exchange and how each answer maps to an outcome.

use hermes_plugin_sdk::kind;
use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::testkit::{FakeHost, Reply};
use serde_json::{json, Value};

use crate::descriptor::USER_CODE_GRANT;
use crate::login::{poll, start, TIMEOUT_MESSAGE};
use crate::testutil::*;

/// Starts a login, then answers every token poll with `reply`.
fn poll_once(
    reply: impl Fn() -> Reply + Send + Sync + 'static,
) -> (FakeHost, Challenge, Result<PollOutcome, PluginError>) {
    let f = fake();
    let ch = started(&f);
    f.on_request(move |_| reply());
    let out = poll(&f.sdk_host(), &ch.session);
    (f, ch, out)
}

fn poll_json(status: u16, body: Value) -> Result<PollOutcome, PluginError> {
    let body = body.to_string();
    poll_once(move || Reply::json(status, &body)).2
}

fn approved(patch: Value) -> (Credential, String) {
    let body = token_body(&patch);
    let out = poll_once(move || Reply::json(200, &body)).2.unwrap();
    assert_eq!(out.status, poll_status::APPROVED);
    (
        out.credential.into_option().unwrap(),
        out.message.into_string(),
    )
}

fn verifier(ch: &Challenge) -> String {
    session(ch)["code_verifier"].as_str().unwrap().to_string()
}

#[test]
fn token_poll_form_fields_in_documented_order() {
    let (f, ch, _) = poll_once(|| Reply::json(200, r#"{"status":"pending"}"#));
    let reqs = f.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[1];
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, "https://api.minimax.io/oauth/token");
    assert_eq!(r.header("accept"), Some("application/json"));
    let form: Vec<(String, String)> = r.form();
    let expect: Vec<(String, String)> = [
        ("grant_type", USER_CODE_GRANT),
        ("client_id", "78257093-7e40-4613-99e0-527b14b39113"),
        ("user_code", USER_CODE),
        ("code_verifier", verifier(&ch).as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form, expect);
    assert_eq!(
        r.field("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:user_code")
    );
}

#[test]
fn timeout_after_deadline_makes_no_request() {
    let f = fake();
    let ch = started(&f);
    f.set_now(CODE_DEADLINE);
    let err = poll(&f.sdk_host(), &ch.session).unwrap_err();
    assert_eq!(err.code.as_str(), "timeout");
    assert_eq!(err.message.as_str(), TIMEOUT_MESSAGE);
    assert_eq!(
        err.message.as_str(),
        "MiniMax OAuth timed out before authorization completed."
    );
    f.advance(1_000_000);
    assert_eq!(
        poll(&f.sdk_host(), &ch.session).unwrap_err().code.as_str(),
        "timeout"
    );
    assert_eq!(f.requests().len(), 1, "only the code request");
}

#[test]
fn pending_keeps_polling() {
    let out = poll_json(200, json!({"status": "pending"})).unwrap();
    assert_eq!(out, PollOutcome::pending());
}

#[test]
fn error_status_is_denied_with_status_msg() {
    let out = poll_json(
        200,
        json!({"status": "error", "base_resp": {"status_code": 1004, "status_msg": "user rejected"}}),
    )
    .unwrap();
    assert_eq!(out.status, poll_status::DENIED);
    assert!(out.credential.is_none());
    assert_eq!(out.message.as_str(), "user rejected");
    let out = poll_json(200, json!({"status": "error"})).unwrap();
    assert_eq!(out.status, poll_status::DENIED);
    assert_eq!(out.message.as_str(), "");
}

#[test]
fn malformed_200_is_pending_and_logged_at_debug() {
    for body in ["not json", "{\"status\":\"succ", "[]", ""] {
        let body = body.to_string();
        let (f, ch, out) = poll_once(move || Reply::json(200, &body));
        assert_eq!(out.unwrap(), PollOutcome::pending());
        assert!(logged_debug(&f, "not a JSON object"));
        assert!(!all_logs(&f).contains(&verifier(&ch)));
    }
}

#[test]
fn unknown_status_is_pending_and_logged_at_debug() {
    for body in [
        json!({"status": "authorizing"}),
        json!({}),
        json!({"status": 3}),
    ] {
        let body = body.to_string();
        let (f, _, out) = poll_once(move || Reply::json(200, &body));
        assert_eq!(out.unwrap(), PollOutcome::pending());
        assert!(logged_debug(&f, "unknown status"));
    }
}

#[test]
fn transient_host_error_is_pending_and_logged_at_debug() {
    let (f, ch, out) = poll_once(Reply::dropped);
    assert_eq!(out.unwrap(), PollOutcome::pending());
    assert!(logged_debug(&f, "transiently"));
    assert!(!all_logs(&f).contains(&verifier(&ch)));
}

#[test]
fn refused_host_error_is_token_exchange_failed() {
    let (_, _, out) = poll_once(|| {
        Reply::Error(PluginError::new(
            kind::REFUSED,
            "refused",
            "not in the allow-list",
        ))
    });
    let err = out.unwrap_err();
    assert_eq!(err.code.as_str(), "token_exchange_failed");
    assert_eq!(err.kind, kind::REFUSED);
}

#[test]
fn non_200_is_token_exchange_failed_never_pending() {
    let err = poll_json(
        400,
        json!({"status": "pending", "base_resp": {"status_code": 2013, "status_msg": "invalid user code"}}),
    )
    .unwrap_err();
    assert_eq!(err.code.as_str(), "token_exchange_failed");
    assert_eq!(
        err.message.as_str(),
        "MiniMax OAuth error (HTTP 400): invalid user code"
    );
    assert_eq!(err.kind, kind::TERMINAL);

    let err = poll_once(|| Reply::json(502, "bad gateway")).2.unwrap_err();
    assert_eq!(
        err.message.as_str(),
        "MiniMax OAuth error (HTTP 502): bad gateway"
    );
    assert_eq!(err.kind, kind::TRANSIENT);
}

#[test]
fn token_exchange_error_never_echoes_the_verifier() {
    let f = fake();
    let ch = started(&f);
    f.on_request(|rec| {
        Reply::json(
            400,
            &format!(
                "bad verifier {}",
                rec.field("code_verifier").unwrap_or_default()
            ),
        )
    });
    let err = poll(&f.sdk_host(), &ch.session).unwrap_err();
    assert!(!err.message.contains(&verifier(&ch)), "{}", err.message);
    assert!(err.message.contains("[redacted]"));
}

#[test]
fn token_incomplete_names_each_missing_field() {
    for field in ["access_token", "refresh_token", "expired_in"] {
        for missing in [Value::Null, json!("")] {
            if field == "expired_in" && missing == json!("") {
                continue;
            }
            let mut patch = json!({});
            patch[field] = missing;
            let body = token_body(&patch);
            let err = poll_once(move || Reply::json(200, &body)).2.unwrap_err();
            assert_eq!(err.code.as_str(), "token_incomplete", "{field}");
            assert!(err.message.ends_with(field), "{}", err.message);
        }
    }
}

#[test]
fn success_builds_the_credential_and_state() {
    let (cred, message) = approved(json!({"notification_message": "Welcome to the Coding Plan"}));
    assert_eq!(cred.access_token.as_str(), NEW_ACCESS);
    assert_eq!(cred.refresh_token.as_str(), NEW_REFRESH);
    assert_eq!(cred.expires_at_ms, TOKEN_EXPIRY);
    assert_eq!(cred.region.as_str(), "global");
    assert_eq!(cred.base_url.as_str(), "https://api.minimax.io/anthropic");
    assert_eq!(cred.label.as_str(), "");
    assert_eq!(message, "Welcome to the Coding Plan");
    let state: Value = serde_json::from_str(&cred.state).unwrap();
    assert_eq!(
        state,
        json!({
            "provider": "minimax-oauth",
            "region": "global",
            "portal_base_url": "https://api.minimax.io",
            "inference_base_url": "https://api.minimax.io/anthropic",
            "client_id": "78257093-7e40-4613-99e0-527b14b39113",
            "scope": "group_id profile model.completion",
            "token_type": "Bearer",
            "obtained_at": "2023-11-14T22:13:20+00:00",
            "expires_in": 900
        })
    );
}

#[test]
fn success_defaults_token_type_and_message() {
    let (cred, message) = approved(json!({"token_type": null}));
    let state: Value = serde_json::from_str(&cred.state).unwrap();
    assert_eq!(state["token_type"], "Bearer");
    assert_eq!(message, "");
    let (cred, _) = approved(json!({"token_type": "MAC"}));
    let state: Value = serde_json::from_str(&cred.state).unwrap();
    assert_eq!(state["token_type"], "MAC");
}

#[test]
fn success_expiry_uses_the_strict_parser() {
    assert_eq!(
        approved(json!({"expired_in": 900})).0.expires_at_ms,
        NOW + 900_000
    );
    assert_eq!(
        approved(json!({"expired_in": 1_700_000_900i64}))
            .0
            .expires_at_ms,
        1_700_000_900_000
    );
    for bad in [json!("900"), json!(9.5), json!(-900), json!(0)] {
        let body = token_body(&json!({ "expired_in": bad }));
        let err = poll_once(move || Reply::json(200, &body)).2.unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_expiry", "{bad}");
    }
}

#[test]
fn regress_year_583911_ms_expiry_token() {
    let (cred, _) = approved(json!({"expired_in": TOKEN_EXPIRY}));
    assert_eq!(cred.expires_at_ms, TOKEN_EXPIRY);
    let state: Value = serde_json::from_str(&cred.state).unwrap();
    assert_eq!(state["expires_in"], 900);
}

#[test]
fn resource_url_only_overrides_for_allowed_or_loopback_hosts() {
    let cases = [
        (
            "https://api.minimaxi.com/anthropic/",
            "https://api.minimaxi.com/anthropic",
        ),
        // Loopback only when the configured base is loopback too: a remote portal may not
        // send tokens to a service on this machine.
        (
            "http://127.0.0.1:4010/anthropic",
            "https://api.minimax.io/anthropic",
        ),
        (
            "https://evil.example/anthropic",
            "https://api.minimax.io/anthropic",
        ),
        (
            "http://api.minimax.io/anthropic",
            "https://api.minimax.io/anthropic",
        ),
        (
            "https://api.minimax.io@evil.example/",
            "https://api.minimax.io/anthropic",
        ),
        ("not a url", "https://api.minimax.io/anthropic"),
    ];
    for (resource_url, expect) in cases {
        let (cred, _) = approved(json!({ "resource_url": resource_url }));
        assert_eq!(cred.base_url.as_str(), expect, "{resource_url}");
        let state: Value = serde_json::from_str(&cred.state).unwrap();
        assert_eq!(state["inference_base_url"], expect, "{resource_url}");
        // Stored as received either way, for diagnosis.
        assert_eq!(state["resource_url"], resource_url);
    }
}

#[test]
fn cn_login_end_to_end() {
    let f = fake();
    f.on_request(|rec| {
        if rec.url.ends_with("/oauth/code") {
            code_reply(rec, &json!({}))
        } else {
            Reply::json(200, &token_body(&json!({})))
        }
    });
    let host = f.sdk_host();
    let ch = start(&host, "cn", "").unwrap();
    let out = poll(&host, &ch.session).unwrap();
    let cred = out.credential.into_option().unwrap();
    assert_eq!(f.requests()[1].url, "https://api.minimaxi.com/oauth/token");
    assert_eq!(cred.region.as_str(), "cn");
    assert_eq!(cred.base_url.as_str(), "https://api.minimaxi.com/anthropic");
    let state: Value = serde_json::from_str(&cred.state).unwrap();
    assert_eq!(state["portal_base_url"], "https://api.minimaxi.com");
}

#[test]
fn invalid_session_is_refused_without_a_request() {
    let f = fake();
    for s in [
        "",
        "{}",
        "not json",
        r#"{"code_verifier":"secret-verifier"}"#,
    ] {
        let err = poll(&f.sdk_host(), s).unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_session");
        assert_eq!(err.kind, kind::INVALID_INPUT);
        assert!(!err.message.contains("secret-verifier"));
    }
    assert!(f.requests().is_empty());
}

#[test]
fn credential_debug_never_shows_tokens() {
    let (cred, _) = approved(json!({}));
    let shown = format!("{cred:?}");
    assert!(!shown.contains(NEW_ACCESS), "{shown}");
    assert!(!shown.contains(NEW_REFRESH), "{shown}");
}

#[test]
fn no_secret_reaches_the_logs_in_a_full_flow() {
    let f = fake();
    let ch = started(&f);
    let host = f.sdk_host();
    for body in [
        "garbage".to_string(),
        json!({"status": "weird"}).to_string(),
        token_body(&json!({"resource_url": "https://evil.example/"})),
    ] {
        f.on_request(move |_| Reply::json(200, &body));
        poll(&host, &ch.session).unwrap();
    }
    let logs = all_logs(&f);
    assert!(!logs.is_empty());
    for secret in [verifier(&ch).as_str(), NEW_ACCESS, NEW_REFRESH] {
        assert!(!logs.contains(secret), "{logs}");
    }
}
