//! `needs_refresh` and `runtime`.

use hermes_plugin_sdk::prelude::*;
use serde_json::json;

use crate::runtime::{needs_refresh, runtime};
use crate::testutil::*;

#[test]
fn needs_refresh_boundaries() {
    let at = |exp: i64| needs_refresh(&stored(exp), NOW);
    assert!(at(0), "unknown expiry");
    assert!(at(NOW - 1), "expired");
    assert!(at(NOW), "expiring now");
    assert!(at(NOW + 60_000), "exactly the 60 s skew");
    assert!(!at(NOW + 60_001));
    assert!(!at(NOW + 900_000));
    assert!(
        needs_refresh(&stored(i64::MIN + 1), i64::MAX),
        "no overflow"
    );
}

#[test]
fn runtime_is_bearer_with_anthropic_headers() {
    let f = fake();
    let rt = runtime(&f.sdk_host(), &stored(NOW + 900_000)).unwrap();
    assert_eq!(rt.base_url.as_str(), "https://api.minimax.io/anthropic");
    assert_eq!(rt.auth_scheme, auth_scheme::BEARER);
    assert_eq!(rt.secret.as_str(), OLD_ACCESS);
    let headers: Vec<(&str, &str)> = rt
        .extra_headers
        .iter()
        .map(|Tuple2(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14")
        ]
    );
    assert!(!format!("{rt:?}").contains(OLD_ACCESS));
    assert!(f.requests().is_empty());
}

#[test]
fn runtime_base_url_is_override_then_state_then_region() {
    let f = fake();
    let host = f.sdk_host();
    let mut cred = stored(NOW);
    cred.state = json!({"inference_base_url": "https://api.minimaxi.com/anthropic/"})
        .to_string()
        .into();
    assert_eq!(
        runtime(&host, &cred).unwrap().base_url.as_str(),
        "https://api.minimaxi.com/anthropic"
    );
    cred.state = "".into();
    cred.region = "cn".into();
    assert_eq!(
        runtime(&host, &cred).unwrap().base_url.as_str(),
        "https://api.minimaxi.com/anthropic"
    );
    cred.region = "".into();
    assert_eq!(
        runtime(&host, &cred).unwrap().base_url.as_str(),
        "https://api.minimax.io/anthropic"
    );
    f.set_config(
        "MINIMAX_INFERENCE_BASE_URL",
        "http://127.0.0.1:4010/anthropic",
    );
    assert_eq!(
        runtime(&host, &stored(NOW)).unwrap().base_url.as_str(),
        "http://127.0.0.1:4010/anthropic"
    );
}

#[test]
fn runtime_without_access_token_is_not_logged_in() {
    let mut cred = stored(NOW);
    cred.access_token = "".into();
    let err = runtime(&fake().sdk_host(), &cred).unwrap_err();
    assert_eq!(err.code.as_str(), "not_logged_in");
    assert!(err.relogin_required);
    assert!(err
        .message
        .ends_with("Run `hermes auth add minimax-oauth` to sign in again."));
}
