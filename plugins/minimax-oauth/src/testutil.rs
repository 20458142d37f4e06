//! Shared test fixtures: a scripted MiniMax over the testkit's fake host, and a raw host for
//! what the testkit does not expose (request timeouts, `truncated`, `final_url`).

use std::sync::{Arc, Mutex};

use hermes_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use hermes_plugin_api::prelude::*;
use hermes_plugin_api::testkit::{FakeHost, Recorded, Reply};
use hermes_plugin_api::{log_level, sdk::Host, HostServices, HostServices_TO};
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

type RawResponder = dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync;

/// A host that records whole [`HttpRequest`]s and answers with whole [`HttpResponse`]s.
#[derive(Clone)]
pub struct RawHost {
    requests: Arc<Mutex<Vec<HttpRequest>>>,
    responder: Arc<RawResponder>,
}

impl RawHost {
    pub fn new(f: impl Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static) -> Self {
        Self {
            requests: Arc::default(),
            responder: Arc::new(f),
        }
    }
    pub fn host(&self) -> Host {
        Host::new(HostServices_TO::from_value(self.clone(), TD_Opaque))
    }
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl HostServices for RawHost {
    fn http(&self, request: HttpRequest) -> RResult<HttpResponse, PluginError> {
        self.requests.lock().unwrap().push(request.clone());
        RResult::ROk((self.responder)(&request))
    }
    fn now_ms(&self) -> i64 {
        NOW
    }
    fn random_bytes(&self, n: u32) -> RVec<u8> {
        (0..n).map(|i| i as u8).collect()
    }
    fn log(&self, _level: u32, _message: RStr<'_>) {}
    fn config_get(&self, _key: RStr<'_>) -> ROption<RString> {
        ROption::RNone
    }
}

/// A response for [`RawHost`].
pub fn raw_response(status: u16, body: &str, truncated: bool, final_url: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: RVec::new(),
        body: body.as_bytes().to_vec().into(),
        truncated,
        final_url: final_url.into(),
    }
}

/// The form body of a raw request, decoded the simple way the tests need.
pub fn raw_field(req: &HttpRequest, name: &str) -> Option<String> {
    let body = String::from_utf8_lossy(&req.body).into_owned();
    body.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}
