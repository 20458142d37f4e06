//! `AuthFlow::start`: the `/oauth/code` request and every way its answer can fail.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hermes_plugin_sdk::kind;
use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::testkit::Reply;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::login::{poll_interval_ms, start};
use crate::testutil::*;
use crate::wire::{MAX_ERROR_BODY, TRUNCATED_SUFFIX};

fn start_with(patch: Value) -> Result<Challenge, PluginError> {
    let f = fake();
    f.on_request(move |rec| code_reply(rec, &patch));
    start(&f.sdk_host(), "", "")
}

fn start_replying(reply: impl Fn() -> Reply + Send + Sync + 'static) -> PluginError {
    let f = fake();
    f.on_request(move |_| reply());
    start(&f.sdk_host(), "", "").unwrap_err()
}

#[test]
fn code_request_form_fields_in_documented_order() {
    let f = fake();
    started(&f);
    let reqs = f.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, "https://api.minimax.io/oauth/code");
    let names: Vec<String> = r.form().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "response_type",
            "client_id",
            "scope",
            "code_challenge",
            "code_challenge_method",
            "state"
        ]
    );
    assert_eq!(r.field("response_type").as_deref(), Some("code"));
    assert_eq!(
        r.field("client_id").as_deref(),
        Some("78257093-7e40-4613-99e0-527b14b39113")
    );
    assert_eq!(
        r.field("scope").as_deref(),
        Some("group_id profile model.completion")
    );
    assert_eq!(r.field("code_challenge_method").as_deref(), Some("S256"));
    // The scope's spaces travel form-encoded.
    assert!(r.body.contains("scope=group_id+profile+model.completion"));
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.header("accept"), Some("application/json"));
}

#[test]
fn x_request_id_is_a_uuid_v4() {
    let f = fake();
    started(&f);
    let id = f.requests()[0].header("x-request-id").unwrap().to_string();
    crate::pkce::tests::assert_uuid_v4(&id);
}

#[test]
fn pkce_sent_challenge_is_s256_of_the_session_verifier() {
    let f = fake();
    let ch = started(&f);
    let verifier = session(&ch)["code_verifier"].as_str().unwrap().to_string();
    let challenge = f.requests()[0].field("code_challenge").unwrap();
    let state = f.requests()[0].field("state").unwrap();
    assert_eq!(verifier.len(), 86);
    assert_eq!(challenge.len(), 43);
    assert_eq!(state.len(), 22);
    assert_eq!(
        challenge,
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    );
    assert!(!f.requests()[0].body.contains(&verifier));
}

#[test]
fn challenge_and_session_blob_shape() {
    let f = fake();
    let ch = started(&f);
    assert_eq!(ch.user_code.as_str(), USER_CODE);
    assert_eq!(ch.verification_uri.as_str(), VERIFICATION_URI);
    assert_eq!(ch.expires_at_ms, CODE_DEADLINE);
    assert_eq!(ch.interval_ms, 5000);
    let s = session(&ch);
    let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "code_verifier",
            "deadline_ms",
            "inference_base_url",
            "interval_ms",
            "portal_base_url",
            "region",
            "user_code"
        ]
    );
    assert_eq!(s["region"], "global");
    assert_eq!(s["portal_base_url"], "https://api.minimax.io");
    assert_eq!(s["inference_base_url"], "https://api.minimax.io/anthropic");
    assert_eq!(s["user_code"], USER_CODE);
    assert_eq!(s["deadline_ms"], CODE_DEADLINE);
    assert_eq!(s["interval_ms"], 5000);
    // The verifier is secret: Debug of the challenge must not show it.
    let verifier = s["code_verifier"].as_str().unwrap();
    assert!(!format!("{ch:?}").contains(verifier));
}

#[test]
fn empty_region_is_global_and_cn_uses_cn_urls() {
    let f = fake();
    f.on_request(|rec| code_reply(rec, &json!({})));
    let host = f.sdk_host();
    start(&host, "", "").unwrap();
    let ch = start(&host, "CN", "").unwrap();
    let urls: Vec<String> = f.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(
        urls,
        [
            "https://api.minimax.io/oauth/code",
            "https://api.minimaxi.com/oauth/code"
        ]
    );
    let s = session(&ch);
    assert_eq!(s["region"], "cn");
    assert_eq!(s["portal_base_url"], "https://api.minimaxi.com");
    assert_eq!(
        s["inference_base_url"],
        "https://api.minimaxi.com/anthropic"
    );
}

#[test]
fn unknown_region_is_invalid_input_without_a_request() {
    let f = fake();
    let err = start(&f.sdk_host(), "mars", "").unwrap_err();
    assert_eq!(err.code.as_str(), "unknown_region");
    assert_eq!(err.kind, kind::INVALID_INPUT);
    assert!(err.message.contains("global, cn"), "{}", err.message);
    assert!(f.requests().is_empty());
}

#[test]
fn url_overrides_apply_to_login() {
    let f = fake();
    f.set_config("MINIMAX_PORTAL_BASE_URL", "http://127.0.0.1:4010/");
    f.set_config(
        "MINIMAX_INFERENCE_BASE_URL",
        "http://127.0.0.1:4010/anthropic",
    );
    f.on_request(|rec| code_reply(rec, &json!({})));
    let ch = start(&f.sdk_host(), "cn", "").unwrap();
    assert_eq!(f.requests()[0].url, "http://127.0.0.1:4010/oauth/code");
    let s = session(&ch);
    assert_eq!(s["region"], "cn");
    assert_eq!(s["portal_base_url"], "http://127.0.0.1:4010/");
    assert_eq!(s["inference_base_url"], "http://127.0.0.1:4010/anthropic");
}

#[test]
fn authorization_failed_on_non_200_with_body() {
    let err = start_replying(|| Reply::json(400, "bad client"));
    assert_eq!(err.code.as_str(), "authorization_failed");
    assert_eq!(
        err.message.as_str(),
        "MiniMax OAuth authorization failed (HTTP 400): bad client"
    );
    assert_eq!(err.kind, kind::TERMINAL);
    let err = start_replying(|| Reply::json(503, "busy"));
    assert_eq!(err.code.as_str(), "authorization_failed");
    assert_eq!(err.kind, kind::TRANSIENT);
    // A JSON error body gives its message, never the raw JSON.
    let err = start_replying(|| {
        Reply::json(
            500,
            r#"{"error":"server_error","base_resp":{"status_code":1000,"status_msg":"internal server error"}}"#,
        )
    });
    assert_eq!(
        err.message.as_str(),
        "MiniMax OAuth authorization failed (HTTP 500): internal server error"
    );
}

#[test]
fn a_json_error_on_the_code_request_is_told_by_its_words_not_its_json() {
    let err = start_replying(|| {
        Reply::json(
            500,
            r#"{"error":"server_error","error_description":"temporarily unavailable","base_resp":{"status_code":1000}}"#,
        )
    });
    assert_eq!(
        err.message.as_str(),
        "MiniMax OAuth authorization failed (HTTP 500): temporarily unavailable"
    );
}

#[test]
fn authorization_failed_with_empty_body_names_the_reason() {
    // The Python original's symptom of an unfollowed redirect; the host follows 307s, but if
    // one ever reaches the plugin the message must say what happened.
    let err = start_replying(|| Reply::json(307, ""));
    assert_eq!(
        err.message.as_str(),
        "MiniMax OAuth authorization failed (HTTP 307): Temporary Redirect"
    );
}

#[test]
fn regress_307_redirected_code_response_is_accepted() {
    // Production answers /oauth/code with a 307 to account.minimax.io; the host follows it
    // and hands over the final 200. Nothing about the final URL may make the plugin refuse it.
    let f = fake();
    f.on_request(|rec| {
        redirected_reply(
            200,
            &json!({"user_code": "U", "verification_uri": "https://account.minimax.io/d",
                "expired_in": CODE_DEADLINE, "interval": 2000,
                "state": rec.field("state").unwrap_or_default()})
            .to_string(),
            "https://account.minimax.io/oauth2/device/code",
        )
    });
    let ch = start(&f.sdk_host(), "", "").unwrap();
    assert_eq!(ch.user_code.as_str(), "U");
    assert_eq!(f.requests()[0].url, "https://api.minimax.io/oauth/code");
}

#[test]
fn login_requests_carry_the_15_s_timeout() {
    let f = fake();
    f.on_request(|rec| {
        Reply::json(
            200,
            &json!({"user_code": "U", "verification_uri": "https://x.test/", "expired_in": 600,
                "state": rec.field("state").unwrap_or_default()})
            .to_string(),
        )
    });
    let ch = start(&f.sdk_host(), "", "").unwrap();
    crate::login::poll(&f.sdk_host(), &ch.session).unwrap();
    let timeouts: Vec<u64> = f.requests().iter().map(|r| r.timeout_ms).collect();
    assert_eq!(timeouts, [15_000, 15_000]);
}

#[test]
fn regress_unbounded_error_body_in_authorization_failed() {
    let err = start_replying(|| Reply::json(500, &"e".repeat(100_000)));
    let prefix = "MiniMax OAuth authorization failed (HTTP 500): ";
    assert_eq!(
        err.message.len(),
        prefix.len() + MAX_ERROR_BODY + TRUNCATED_SUFFIX.len()
    );
    assert!(err.message.ends_with("...[truncated]"));
}

#[test]
fn authorization_failed_on_host_error_keeps_its_kind() {
    let err = start_replying(Reply::dropped);
    assert_eq!(err.code.as_str(), "authorization_failed");
    assert_eq!(err.kind, kind::TRANSIENT);
    let err = start_replying(|| {
        Reply::Error(PluginError::new(
            kind::REFUSED,
            "refused",
            "host not allowed",
        ))
    });
    assert_eq!(err.kind, kind::REFUSED);
    assert!(err.message.contains("host not allowed"));
}

#[test]
fn authorization_failed_on_malformed_200() {
    let err = start_replying(|| Reply::json(200, "<html>"));
    assert_eq!(err.code.as_str(), "authorization_failed");
    let err = start_replying(|| Reply::json(200, "[]"));
    assert_eq!(err.code.as_str(), "authorization_failed");
}

#[test]
fn authorization_incomplete_names_each_missing_field() {
    for field in ["user_code", "verification_uri", "expired_in"] {
        for missing in [Value::Null, json!("")] {
            if field == "expired_in" && missing == json!("") {
                continue;
            }
            let mut patch = json!({});
            patch[field] = missing.clone();
            let err = start_with(patch).unwrap_err();
            assert_eq!(err.code.as_str(), "authorization_incomplete", "{field}");
            assert_eq!(
                err.message.as_str(),
                format!("MiniMax OAuth response missing field: {field}")
            );
        }
    }
}

#[test]
fn state_mismatch_is_refused() {
    for patch in [
        json!({"state": "forged"}),
        json!({"state": null}),
        json!({"state": 7}),
    ] {
        let err = start_with(patch).unwrap_err();
        assert_eq!(err.code.as_str(), "state_mismatch");
        assert_eq!(
            err.message.as_str(),
            "MiniMax OAuth state mismatch (possible CSRF)."
        );
    }
}

#[test]
fn state_must_match_exactly() {
    let f = fake();
    f.on_request(|rec| {
        let padded = format!("{} ", rec.field("state").unwrap_or_default());
        code_reply(rec, &json!({ "state": padded }))
    });
    let err = start(&f.sdk_host(), "", "").unwrap_err();
    assert_eq!(err.code.as_str(), "state_mismatch");
}

#[test]
fn non_web_verification_uri_is_refused() {
    let err = start_with(json!({"verification_uri": "javascript:alert(1)"})).unwrap_err();
    assert_eq!(err.code.as_str(), "authorization_failed");
}

#[test]
fn code_deadline_uses_the_strict_parser() {
    assert_eq!(
        start_with(json!({"expired_in": 600}))
            .unwrap()
            .expires_at_ms,
        NOW + 600_000
    );
    assert_eq!(
        start_with(json!({"expired_in": 1_700_000_600i64}))
            .unwrap()
            .expires_at_ms,
        1_700_000_600_000
    );
    for bad in [json!("600"), json!(600.5), json!(-5), json!(0)] {
        let err = start_with(json!({ "expired_in": bad })).unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_expiry", "{bad}");
    }
}

#[test]
fn regress_year_583911_ms_expiry_login_deadline() {
    let ch = start_with(json!({"expired_in": CODE_DEADLINE})).unwrap();
    assert_eq!(ch.expires_at_ms, CODE_DEADLINE);
    assert_eq!(session(&ch)["deadline_ms"], CODE_DEADLINE);
}

#[test]
fn poll_interval_rules() {
    let ms = |v: Value| poll_interval_ms(Some(&v));
    assert_eq!(poll_interval_ms(None), 2000);
    assert_eq!(ms(json!(null)), 2000);
    assert_eq!(ms(json!(0)), 2000);
    assert_eq!(ms(json!(1)), 2000);
    assert_eq!(ms(json!(1999)), 2000);
    assert_eq!(ms(json!(2000)), 2000);
    assert_eq!(ms(json!(5000)), 5000);
    assert_eq!(ms(json!(-1)), 2000);
    assert_eq!(ms(json!("5000")), 2000);
    // Through the wire: `interval` is milliseconds, never seconds.
    assert_eq!(
        start_with(json!({"interval": 5})).unwrap().interval_ms,
        2000
    );
    assert_eq!(
        start_with(json!({"interval": null})).unwrap().interval_ms,
        2000
    );
    assert_eq!(
        start_with(json!({"interval": 3000})).unwrap().interval_ms,
        3000
    );
}
