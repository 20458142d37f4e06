//! Refreshing a credential, and classifying every failure as transient or terminal.
//!
//! The classification decides whether the host quarantines the login, so it errs towards
//! "transient": a wrongly terminal answer wipes a healthy account, a wrongly transient one
//! costs a retry. Only the server saying the refresh token is dead is terminal.
//!
//! MiniMax rotates refresh tokens: the answer carries a new one and the old one is dead.
//! The host serialises refreshes under its lock (see the design's single-flight rule); this
//! module only has to return the new token and keep the old one when none is sent.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::Host;
use serde_json::Value;

use crate::descriptor::{
    CLIENT_ID, PORTAL_OVERRIDE, REFRESH_GRANT, REFRESH_TIMEOUT_MS, SCOPE, SIGN_IN_AGAIN,
};
use crate::expiry::parse_expired_in;
use crate::login::trusted_inference_base;
use crate::state::{credential_region, write_state, Issued, ProviderState};
use crate::wire::{self, endpoint, str_field};

/// Code of every refresh failure except a missing refresh token.
pub const REFRESH_FAILED: &str = "refresh_failed";
/// Body markers of a refresh token the server will never accept again.
const DEAD_TOKEN_MARKERS: &[&str] = &[
    "invalid_grant",
    "refresh_token_reused",
    "invalid_refresh_token",
];

/// Refreshes `cred` against its stored portal and returns the new credential.
pub fn refresh(host: &Host, cred: &Credential) -> Result<Credential, PluginError> {
    let old_refresh = cred.refresh_token.as_str().trim();
    if old_refresh.is_empty() {
        return Err(PluginError::relogin(
            "no_refresh_token",
            format!("MiniMax (OAuth) has no refresh token stored. {SIGN_IN_AGAIN}"),
        ));
    }
    let st = ProviderState::parse(&cred.state);
    let region = credential_region(cred, &st);
    let portal = st
        .portal_base_url()
        .map(str::to_string)
        .or_else(|| host.config(PORTAL_OVERRIDE))
        .unwrap_or_else(|| region.portal.to_string());
    let client_id = st.str("client_id").unwrap_or(CLIENT_ID);
    let secrets = [old_refresh, cred.access_token.as_str()];

    let resp = wire::post_form_with_timeout(
        host,
        REFRESH_TIMEOUT_MS,
        &endpoint(&portal, "/oauth/token"),
        &[
            ("grant_type", REFRESH_GRANT),
            ("client_id", client_id),
            ("refresh_token", old_refresh),
        ],
        &[],
    )
    // The host's own failures (timeout, dropped connection, refusal) keep their kind and
    // never ask for a relogin: the token may be fine.
    .map_err(|e| {
        PluginError::new(
            e.kind,
            REFRESH_FAILED,
            format!(
                "MiniMax token refresh failed: {}",
                wire::clean(&e.message, &secrets)
            ),
        )
    })?;

    if resp.status != 200 {
        let raw = String::from_utf8_lossy(&resp.body);
        // The server's words, never its raw JSON body (the same reader as sign-in).
        let detail = wire::describe_error_body(&resp, &secrets);
        let message = format!(
            "MiniMax token refresh failed (HTTP {}): {detail}",
            resp.status
        );
        return Err(if says_refresh_token_is_dead(resp.status, &raw) {
            PluginError::relogin(REFRESH_FAILED, format!("{message}. {SIGN_IN_AGAIN}"))
        } else {
            PluginError::transient(REFRESH_FAILED, message)
        });
    }

    let Some(obj) = wire::json_object(&resp) else {
        let why = if resp.truncated {
            "the response was cut short"
        } else {
            "the response was not a JSON object"
        };
        return Err(transient(why));
    };
    if obj.get("status").and_then(Value::as_str) != Some("success") {
        // A 200 that is not a success (a rate limit, "system busy", `{}`) is not the server
        // saying the refresh token is dead: the login is kept and the refresh retried later.
        let why = wire::status_msg(&obj)
            .or_else(|| str_field(&obj, "status"))
            .unwrap_or("no status");
        return Err(transient(&format!(
            "MiniMax did not refresh the token: {}",
            wire::clean(why, &secrets)
        )));
    }
    let access_token = str_field(&obj, "access_token")
        .ok_or_else(|| transient("the response has no access_token"))?;
    let now = host.now_ms();
    let expires_at_ms = obj
        .get("expired_in")
        .ok_or_else(|| transient("the response has no expired_in"))
        .and_then(|v| parse_expired_in(v, now).map_err(|e| transient(&e.message)))?;
    // Rotation: a new refresh token replaces the old one, which the server now rejects.
    let refresh_token = str_field(&obj, "refresh_token").unwrap_or(old_refresh);
    let resource_url = str_field(&obj, "resource_url");
    let stored_inference = st
        .inference_base_url()
        .unwrap_or(region.inference)
        .to_string();
    let inference = trusted_inference_base(host, resource_url, &stored_inference);

    let state = write_state(
        Some(&st),
        &Issued {
            region,
            portal_base_url: &portal,
            inference_base_url: &inference,
            client_id,
            scope: st.str("scope").unwrap_or(SCOPE),
            token_type: str_field(&obj, "token_type")
                .or_else(|| st.str("token_type"))
                .unwrap_or("Bearer"),
            resource_url,
            obtained_at_ms: now,
            expires_at_ms,
        },
    );
    Ok(Credential {
        access_token: access_token.into(),
        refresh_token: refresh_token.into(),
        expires_at_ms,
        region: region.name.into(),
        base_url: inference.into(),
        label: cred.label.clone(),
        state: state.into(),
    })
}

/// Whether an error answer is the server's verdict that the refresh token is dead: an HTTP 400
/// or 401 whose JSON error fields (`error`, `error_description`, `base_resp.status_msg`)
/// carry one of [`DEAD_TOKEN_MARKERS`]. Only the structured fields count: a gateway page or a
/// message that merely mentions a marker (a 502 relaying someone else's error, an HTML page)
/// is not the verdict, and wrongly deciding "dead" wipes a healthy login.
pub fn says_refresh_token_is_dead(status: u16, body: &str) -> bool {
    if status != 400 && status != 401 {
        return false;
    }
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    let fields = [
        obj.get("error").and_then(Value::as_str),
        obj.get("error_description").and_then(Value::as_str),
        wire::status_msg(&obj),
    ];
    let dead = fields
        .into_iter()
        .flatten()
        .any(|f| DEAD_TOKEN_MARKERS.iter().any(|m| f.contains(m)));
    dead
}

fn transient(why: &str) -> PluginError {
    PluginError::transient(
        REFRESH_FAILED,
        format!("MiniMax token refresh failed: {why}"),
    )
}
