//! `Status` and `RemovalStep`.

use hermes_plugin_sdk::prelude::*;
use serde_json::{json, Value};

use crate::removal::removal;
use crate::status::status;
use crate::testutil::*;

fn quarantined(message: &str, relogin: bool) -> Credential {
    let mut cred = stored(0);
    cred.access_token = "".into();
    cred.refresh_token = "".into();
    let mut st: Value = serde_json::from_str(&cred.state).unwrap();
    st["last_auth_error"] = json!({"provider": "minimax-oauth", "code": "refresh_failed",
        "message": message, "reason": "runtime_refresh_failure", "relogin_required": relogin,
        "at": "2023-11-14T22:00:00+00:00"});
    cred.state = st.to_string().into();
    cred
}

fn problems(r: &StatusReport) -> Vec<&str> {
    r.problems.iter().map(|p| p.as_str()).collect()
}

#[test]
fn no_credential_is_not_logged_in() {
    let r = status(None, NOW);
    assert_eq!(r.state, status_state::NOT_LOGGED_IN);
    assert_eq!(
        problems(&r),
        ["not logged in: run `hermes auth add minimax-oauth`"]
    );
    assert!(!r.logged_in());
}

#[test]
fn empty_access_token_without_error_is_not_logged_in() {
    let mut cred = stored(NOW + 900_000);
    cred.access_token = "".into();
    let r = status(Some(&cred), NOW);
    assert_eq!(r.state, status_state::NOT_LOGGED_IN);
    assert_eq!(r.region.as_str(), "global");
    let r = status(Some(&quarantined("transient thing", false)), NOW);
    assert_eq!(r.state, status_state::NOT_LOGGED_IN);
}

#[test]
fn quarantined_login_requires_sign_in_with_the_stored_error() {
    let msg = "MiniMax token refresh failed (HTTP 400): refresh_token_reused. Run `hermes auth add minimax-oauth` to sign in again.";
    let r = status(Some(&quarantined(msg, true)), NOW);
    assert_eq!(r.state, status_state::RELOGIN_REQUIRED);
    assert_eq!(r.summary.as_str(), "sign-in required");
    assert_eq!(problems(&r), [msg], "the fix is not repeated");

    let r = status(Some(&quarantined("token revoked", true)), NOW);
    assert_eq!(
        problems(&r),
        ["token revoked Run `hermes auth add minimax-oauth` to sign in again."]
    );
}

#[test]
fn valid_token_reports_region_and_time_left() {
    let r = status(Some(&stored(NOW + 13 * 60_000 + 5_000)), NOW);
    assert_eq!(r.state, status_state::VALID);
    assert_eq!(
        r.summary.as_str(),
        "logged in, region global, token valid 13 min"
    );
    assert_eq!(r.region.as_str(), "global");
    assert_eq!(r.expires_at_ms, NOW + 13 * 60_000 + 5_000);
    assert!(r.problems.is_empty());
    let r = status(Some(&stored(NOW + 15 * 60_000 - 200)), NOW);
    assert!(r.summary.ends_with("token valid 15 min"), "{}", r.summary);
    let r = status(Some(&stored(NOW + 30_000)), NOW);
    assert_eq!(
        r.summary.as_str(),
        "logged in, region global, token valid under 1 min"
    );
    let mut cn = stored(NOW + 3 * 3_600_000);
    cn.region = "cn".into();
    let r = status(Some(&cn), NOW);
    assert_eq!(
        r.summary.as_str(),
        "logged in, region cn (China), token valid 3 h"
    );
    assert_eq!(r.region.as_str(), "cn");
}

#[test]
fn expired_with_refresh_token_refreshes_on_next_use() {
    for exp in [NOW, NOW - 1, 0] {
        let r = status(Some(&stored(exp)), NOW);
        assert_eq!(r.state, status_state::REFRESH_ON_NEXT_USE);
        assert_eq!(
            r.summary.as_str(),
            "logged in (token refreshes on next use)"
        );
        assert!(r.logged_in());
    }
}

#[test]
fn expired_without_refresh_token_requires_sign_in() {
    let mut cred = stored(NOW - 1);
    cred.refresh_token = "".into();
    let r = status(Some(&cred), NOW);
    assert_eq!(r.state, status_state::RELOGIN_REQUIRED);
    assert_eq!(r.summary.as_str(), "sign-in required");
    assert!(problems(&r)[0].contains("hermes auth add minimax-oauth"));
}

#[test]
fn status_survives_any_state_json() {
    for s in [
        "",
        "[]",
        "{",
        "{\"last_auth_error\":[1]}",
        "{\"region\":{}}",
    ] {
        let mut cred = stored(NOW + 900_000);
        cred.state = s.into();
        assert_eq!(status(Some(&cred), NOW).state, status_state::VALID, "{s}");
    }
}

#[test]
fn removal_plans() {
    let oauth = removal("oauth");
    assert!(oauth.clear_provider_state && oauth.suppress_source);
    assert!(oauth.message.contains("hermes auth add minimax-oauth"));
    let manual = removal("manual:minimax_oauth");
    assert!(!manual.clear_provider_state && !manual.suppress_source);
    assert!(!manual.message.is_empty());
    for other in ["", "env:MINIMAX_API_KEY", "OAUTH", "manual"] {
        let p = removal(other);
        assert!(!p.clear_provider_state && !p.suppress_source, "{other}");
    }
}
