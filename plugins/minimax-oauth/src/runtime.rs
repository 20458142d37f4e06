//! When to refresh, and where and how requests with a credential go.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::Host;

use crate::descriptor::{INFERENCE_OVERRIDE, REFRESH_SKEW_MS, SIGN_IN_AGAIN};
use crate::state::{credential_region, ProviderState};

/// `anthropic-version` sent with every inference request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `anthropic-beta` sent with every inference request.
pub const ANTHROPIC_BETA: &str = "interleaved-thinking-2025-05-14";

/// Refresh when the expiry is unknown (0) or at most 60 s away. MiniMax tokens always
/// expire, so 0 means "not recorded", not "never".
pub fn needs_refresh(cred: &Credential, now_ms: i64) -> bool {
    cred.expires_at_ms == 0 || cred.expires_at_ms.saturating_sub(now_ms) <= REFRESH_SKEW_MS
}

/// The inference endpoint and bearer token of `cred`.
pub fn runtime(host: &Host, cred: &Credential) -> Result<Runtime, PluginError> {
    if cred.access_token.trim().is_empty() {
        return Err(PluginError::relogin(
            "not_logged_in",
            format!("MiniMax (OAuth) is not signed in. {SIGN_IN_AGAIN}"),
        ));
    }
    let st = ProviderState::parse(&cred.state);
    let base = host
        .config(INFERENCE_OVERRIDE)
        .or_else(|| st.inference_base_url().map(str::to_string))
        .unwrap_or_else(|| credential_region(cred, &st).inference.to_string());
    Ok(Runtime {
        base_url: base.trim().trim_end_matches('/').into(),
        auth_scheme: auth_scheme::BEARER,
        secret: cred.access_token.clone(),
        extra_headers: vec![
            Tuple2("anthropic-version".into(), ANTHROPIC_VERSION.into()),
            Tuple2("anthropic-beta".into(), ANTHROPIC_BETA.into()),
        ]
        .into(),
    })
}
