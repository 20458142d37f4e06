//! The plugin's half of a stored login: the `providers.minimax-oauth` block of `auth.json`.
//!
//! The host hands the block, without its own keys, to the plugin as `Credential::state` (its
//! facts, such as the quarantine record, under [`HOST_STATE_KEY`]) and, on write, stores the
//! object the plugin returns with the typed credential fields laid over it. So reading is
//! lenient (a block written by the Python hermes, by an older plugin, or damaged by hand must
//! never panic or lock the user out), and writing never carries the host-owned keys: a stale
//! copy of a token in `state` would be one more copy to leak or to replay.

use serde_json::{Map, Value};

use hermes_plugin_sdk::{Credential, HOST_STATE_KEY};

use crate::descriptor::{self, Region, PROVIDER_ID};
use crate::expiry::format_iso8601;

/// Keys the host overlays from the typed credential fields, plus the quarantine record that a
/// successful login or refresh clears.
const HOST_OWNED_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "expires_at",
    "expires_at_ms",
    "label",
    "base_url",
    "last_auth_error",
    "last_refresh_failure",
    HOST_STATE_KEY,
];

/// The quarantine record the host writes after a terminal refresh error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastAuthError {
    /// Error code, e.g. `refresh_failed`.
    pub code: String,
    /// The message shown at the time.
    pub message: String,
    /// Whether the user must sign in again.
    pub relogin_required: bool,
}

/// A leniently parsed provider block.
#[derive(Clone, Default)]
pub struct ProviderState {
    map: Map<String, Value>,
}

impl std::fmt::Debug for ProviderState {
    /// The keys only: the block holds copies of both tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderState")
            .field("keys", &self.map.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderState {
    /// Parses `state`; anything that is not a JSON object reads as empty.
    pub fn parse(state: &str) -> Self {
        match serde_json::from_str::<Value>(state) {
            Ok(Value::Object(map)) => Self { map },
            _ => Self::default(),
        }
    }

    /// A non-empty string value.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The stored region name, if any.
    pub fn region(&self) -> Option<&str> {
        self.str("region")
    }

    /// The stored login portal base URL, if any.
    pub fn portal_base_url(&self) -> Option<&str> {
        self.str("portal_base_url")
    }

    /// The stored inference base URL, if any.
    pub fn inference_base_url(&self) -> Option<&str> {
        self.str("inference_base_url")
    }

    /// The quarantine record, if it is an object: where the host documents it (under
    /// [`HOST_STATE_KEY`]), else at the top level, where hosts before that kept it.
    pub fn last_auth_error(&self) -> Option<LastAuthError> {
        let e = self
            .map
            .get(HOST_STATE_KEY)
            .and_then(|h| h.get("last_auth_error"))
            .or_else(|| self.map.get("last_auth_error"))?
            .as_object()?;
        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Some(LastAuthError {
            code: text("code"),
            message: text("message"),
            relogin_required: e
                .get("relogin_required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// The region of a stored credential: the typed field, else the state's, else the default.
pub fn credential_region(cred: &Credential, state: &ProviderState) -> Region {
    let typed = cred.region.trim();
    if typed.is_empty() {
        descriptor::region_or_default(state.region().unwrap_or(""))
    } else {
        descriptor::region_or_default(typed)
    }
}

/// What a successful login or refresh knows, to be written into `state`.
pub struct Issued<'a> {
    /// The region of the login.
    pub region: Region,
    /// Portal base URL used (overrides included), for later refreshes.
    pub portal_base_url: &'a str,
    /// Inference base URL requests with these tokens go to (the server may name one).
    pub inference_base_url: &'a str,
    /// OAuth client id the tokens belong to.
    pub client_id: &'a str,
    /// Scope the server granted (it may differ from the one asked for).
    pub scope: &'a str,
    /// Token type, `Bearer` unless the server says otherwise.
    pub token_type: &'a str,
    /// `resource_url` from the server, stored as received; `None` keeps a stored one.
    pub resource_url: Option<&'a str>,
    /// When the tokens were issued, unix ms.
    pub obtained_at_ms: i64,
    /// Access-token expiry, unix ms.
    pub expires_at_ms: i64,
}

/// The new `state` JSON: `previous` (unknown keys kept, host-owned keys and any
/// `last_auth_error` dropped) updated with `issued`.
pub fn write_state(previous: Option<&ProviderState>, issued: &Issued<'_>) -> String {
    let mut map = previous.map(|p| p.map.clone()).unwrap_or_default();
    for key in HOST_OWNED_KEYS {
        map.remove(*key);
    }
    let mut set = |k: &str, v: Value| {
        map.insert(k.to_string(), v);
    };
    set("provider", PROVIDER_ID.into());
    set("region", issued.region.name.into());
    set("portal_base_url", issued.portal_base_url.into());
    set("inference_base_url", issued.inference_base_url.into());
    set("client_id", issued.client_id.into());
    set("scope", issued.scope.into());
    set("token_type", issued.token_type.into());
    if let Some(url) = issued.resource_url {
        set("resource_url", url.into());
    }
    set("obtained_at", format_iso8601(issued.obtained_at_ms).into());
    let life_s = issued
        .expires_at_ms
        .saturating_sub(issued.obtained_at_ms)
        .max(0)
        / 1000;
    set("expires_in", life_s.into());
    Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::DEFAULT_REGION;
    use serde_json::json;

    fn issued() -> Issued<'static> {
        Issued {
            region: DEFAULT_REGION,
            portal_base_url: "https://api.minimax.io",
            inference_base_url: "https://api.minimax.io/anthropic",
            client_id: "cid",
            scope: "s",
            token_type: "Bearer",
            resource_url: None,
            obtained_at_ms: 1_700_000_000_000,
            expires_at_ms: 1_700_000_900_000,
        }
    }

    #[test]
    fn lenient_parse_never_panics() {
        for s in [
            "",
            "null",
            "[]",
            "42",
            "\"x\"",
            "{",
            "{\"region\": 7, \"portal_base_url\": null}",
            "{\"last_auth_error\": \"oops\"}",
            "{\"last_auth_error\": {\"relogin_required\": \"yes\"}}",
        ] {
            let st = ProviderState::parse(s);
            assert_eq!(st.region(), None, "{s}");
            assert_eq!(st.portal_base_url(), None, "{s}");
            assert!(
                !st.last_auth_error().is_some_and(|e| e.relogin_required),
                "{s}"
            );
        }
    }

    #[test]
    fn reads_python_written_block() {
        let block = json!({
            "provider": "minimax-oauth",
            "region": "cn",
            "portal_base_url": "https://api.minimaxi.com",
            "inference_base_url": "https://api.minimaxi.com/anthropic",
            "access_token": "at",
            "expires_at": "2025-01-01T00:00:00+00:00",
            "last_auth_error": {"provider": "minimax-oauth", "code": "refresh_failed",
                "message": "dead", "reason": "runtime_refresh_failure",
                "relogin_required": true, "at": "2025-01-01T00:00:00Z"},
            "some_future_key": 1
        });
        let st = ProviderState::parse(&block.to_string());
        assert_eq!(st.region(), Some("cn"));
        assert_eq!(
            st.inference_base_url(),
            Some("https://api.minimaxi.com/anthropic")
        );
        let e = st.last_auth_error().unwrap();
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.relogin_required),
            ("refresh_failed", "dead", true)
        );
    }

    #[test]
    fn written_state_has_the_documented_shape_and_no_host_keys() {
        let prev = ProviderState::parse(
            &json!({"access_token": "old-at", "refresh_token": "old-rt", "expires_at": "x",
                "expires_at_ms": 1, "label": "l", "last_auth_error": {"relogin_required": true},
                "resource_url": "https://api.minimax.io/anthropic", "future": "kept"})
            .to_string(),
        );
        let out: Value = serde_json::from_str(&write_state(Some(&prev), &issued())).unwrap();
        assert_eq!(
            out,
            json!({
                "provider": "minimax-oauth",
                "region": "global",
                "portal_base_url": "https://api.minimax.io",
                "inference_base_url": "https://api.minimax.io/anthropic",
                "client_id": "cid",
                "scope": "s",
                "token_type": "Bearer",
                "resource_url": "https://api.minimax.io/anthropic",
                "obtained_at": "2023-11-14T22:13:20+00:00",
                "expires_in": 900,
                "future": "kept"
            })
        );
    }
}
