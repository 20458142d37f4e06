//! Property tests over everything the plugin reads from the network: the `expired_in` parser,
//! and the code, token-poll and refresh responses (any status, any bytes, any JSON). None may
//! panic; every failure is a `PluginError` with a known kind; relogin is only ever asked for by
//! a refresh.

use hermes_plugin_sdk::kind;
use hermes_plugin_sdk::testkit::Reply;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::testutil::*;
use crate::{expiry, login, refresh};

const CASES: u32 = 2_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const KEYS: &[&str] = &[
    "status",
    "access_token",
    "refresh_token",
    "expired_in",
    "token_type",
    "resource_url",
    "notification_message",
    "base_resp",
    "status_msg",
    "user_code",
    "verification_uri",
    "interval",
    "state",
    "error",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        prop_oneof![
            Just("success".to_string()),
            Just("pending".to_string()),
            Just("error".to_string()),
            ".{0,30}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(String::from), inner),
                0..10
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body: arbitrary bytes, arbitrary JSON, or a plausible answer with random fields.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json().prop_map(|v| v.to_string().into_bytes()),
        json().prop_map(|v| {
            let mut base = json!({"status": "success", "access_token": "a", "refresh_token": "r", "expired_in": 900});
            if let (Some(b), Some(p)) = (base.as_object_mut(), v.as_object()) {
                b.extend(p.clone());
            }
            base.to_string().into_bytes()
        }),
    ]
}

fn status_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(400),
        Just(401),
        Just(429),
        Just(500),
        Just(503),
        100u16..600
    ]
}

fn known_kind(k: u32) -> bool {
    [
        kind::TRANSIENT,
        kind::TERMINAL,
        kind::INVALID_INPUT,
        kind::REFUSED,
    ]
    .contains(&k)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn expired_in_accepts_exactly_positive_in_range_integers(v in json(), n in any::<i64>(), now in 0i64..4_102_444_800_000) {
        let _ = expiry::parse_expired_in(&v, now);
        match expiry::parse_expired_in(&json!(n), now) {
            Ok(at) => {
                prop_assert!(n > 0);
                prop_assert!(at > 0);
                // Never the "year 583911" reading: the deadline is never absurdly far.
                prop_assert!(at < 253_402_300_800_000, "{n} -> {at}");
                if n < 1_000_000_000 {
                    prop_assert_eq!(at, now + n * 1000);
                } else if n < 1_000_000_000_000 {
                    prop_assert_eq!(at, n * 1000);
                } else {
                    prop_assert_eq!(at, n);
                }
            }
            Err(e) => prop_assert_eq!(e.code.as_str(), "invalid_expiry"),
        }
    }

    #[test]
    fn any_code_response_is_a_challenge_or_a_typed_error(status in status_code(), body in body()) {
        let fake = fake();
        fake.on_request(move |_| Reply::Response(status, body.clone()));
        if let Err(e) = login::start(&fake.sdk_host(), "", "") {
            prop_assert!(known_kind(e.kind), "{e:?}");
            prop_assert!(!e.relogin_required);
        }
    }

    #[test]
    fn any_poll_response_is_an_outcome_or_a_typed_error(status in status_code(), body in body()) {
        let fake = fake();
        let ch = started(&fake);
        fake.on_request(move |_| Reply::Response(status, body.clone()));
        match login::poll(&fake.sdk_host(), ch.session.as_str()) {
            Ok(o) => {
                if o.status == hermes_plugin_sdk::poll_status::APPROVED {
                    let c = o.credential.into_option().expect("approved carries a credential");
                    prop_assert!(!c.access_token.is_empty() && !c.refresh_token.is_empty());
                    prop_assert!(c.expires_at_ms > 0);
                }
            }
            Err(e) => {
                prop_assert!(known_kind(e.kind), "{e:?}");
                prop_assert!(!e.relogin_required);
            }
        }
    }

    #[test]
    fn any_refresh_response_is_a_credential_or_a_classified_error(status in status_code(), body in body()) {
        let fake = fake();
        let text = String::from_utf8_lossy(&body).into_owned();
        fake.on_request(move |_| Reply::Response(status, body.clone()));
        match refresh::refresh(&fake.sdk_host(), &stored(NOW + 30_000)) {
            Ok(c) => {
                prop_assert_eq!(status, 200);
                prop_assert!(!c.access_token.is_empty() && !c.refresh_token.is_empty());
            }
            Err(e) => {
                prop_assert!(known_kind(e.kind), "{e:?}");
                prop_assert_eq!(e.code.as_str(), "refresh_failed");
                // Relogin only for a 400/401 whose error fields carry a documented marker.
                if e.relogin_required {
                    let marker = ["invalid_grant", "refresh_token_reused", "invalid_refresh_token"].iter().any(|m| text.contains(m));
                    prop_assert!(marker && (status == 400 || status == 401), "status {status}: {text}");
                } else {
                    prop_assert!(e.is_transient() || e.kind == kind::REFUSED || e.kind == kind::TERMINAL, "{e:?}");
                }
            }
        }
    }
}
