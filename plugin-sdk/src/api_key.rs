//! What every `api_key` provider needs: the key the host passes to [`AuthFlowImpl::start`](crate::AuthFlowImpl::start)
//! (`hermes auth add <provider> --api-key-stdin` sends `{"api_key": "..."}` as `options`), and
//! a challenge that completes on the first poll.
//!
//! The flow: `start` checks the key and returns [`challenge`] with a session naming
//! the key (the session is secret: only the plugin reads it, and `Debug` redacts it); the host
//! shows no URL or code (the challenge has none) and polls once; `poll` returns
//! [`PollOutcome::approved`](crate::PollOutcome::approved) with the key as the credential's `access_token`.

use crate::{Challenge, PluginError, kind};

/// How long an `api_key` challenge stays valid. The host polls at once, so this only
/// bounds a session that is never polled.
pub const CHALLENGE_TTL_MS: i64 = 10 * 60_000;
/// Longest key accepted, in bytes; longer input is a paste gone wrong.
pub const MAX_KEY_LEN: usize = 4096;

/// The `api_key` in start's `options`, trimmed; `Ok(None)` when there is none. Malformed
/// options, or a key with spaces or control characters (a pasted line with a prompt, two
/// keys), are [`kind::INVALID_INPUT`] errors whose message never repeats the key.
pub fn from_options(options: &str) -> Result<Option<String>, PluginError> {
    if options.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(options).map_err(|_| {
        PluginError::new(
            kind::INVALID_INPUT,
            "bad_options",
            "the sign-in options are not a JSON object",
        )
    })?;
    let Some(obj) = value.as_object() else {
        return Err(PluginError::new(
            kind::INVALID_INPUT,
            "bad_options",
            "the sign-in options are not a JSON object",
        ));
    };
    match obj.get("api_key") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => check(s.trim()).map(|k| Some(k.to_string())),
        Some(_) => Err(PluginError::new(
            kind::INVALID_INPUT,
            "bad_api_key",
            "the API key is not a string",
        )),
    }
}

/// Whether `key` looks like a single key: non-empty, at most [`MAX_KEY_LEN`] bytes, no
/// whitespace or control characters. The error never contains the key.
pub fn check(key: &str) -> Result<&str, PluginError> {
    let bad = |why: &str| {
        PluginError::new(
            kind::INVALID_INPUT,
            "bad_api_key",
            format!("the API key {why}"),
        )
    };
    if key.is_empty() {
        return Err(bad("is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad("is too long"));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "contains spaces or control characters (paste the key alone)",
        ));
    }
    Ok(key)
}

/// A challenge with nothing to show (no URL, no code) that the first poll completes.
/// `session` is what `poll` needs (usually the key and region); keep it plain text the
/// plugin can parse back, and never log it.
pub fn challenge(session: &str, now_ms: i64) -> Challenge {
    Challenge {
        user_code: Default::default(),
        verification_uri: Default::default(),
        expires_at_ms: now_ms.saturating_add(CHALLENGE_TTL_MS),
        interval_ms: 0,
        session: session.into(),
    }
}
