//! What the host knows about MiniMax without calling any code: the provider descriptor and
//! the protocol constants every other module shares.

use hermes_plugin_sdk::prelude::*;

/// Canonical provider id (also the plugin id).
pub const PROVIDER_ID: &str = "minimax-oauth";
/// Name shown in status lines and the dashboard; `(OAuth)` tells it from the API-key plugin.
pub const DISPLAY_NAME: &str = "MiniMax (OAuth)";
/// Other names accepted for the provider.
pub const ALIASES: &[&str] = &["minimax-portal", "minimax-global", "minimax_oauth"];
/// The public OAuth client id of MiniMax's device-code login.
pub const CLIENT_ID: &str = "78257093-7e40-4613-99e0-527b14b39113";
/// Requested scopes, one space-separated string.
pub const SCOPE: &str = "group_id profile model.completion";
/// Grant type of the device-code token poll.
pub const USER_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:user_code";
/// Grant type of a refresh (RFC 6749 §6).
pub const REFRESH_GRANT: &str = "refresh_token";
/// Env var (or config key) overriding the login portal base URL.
pub const PORTAL_OVERRIDE: &str = "MINIMAX_PORTAL_BASE_URL";
/// Env var (or config key) overriding the inference base URL.
pub const INFERENCE_OVERRIDE: &str = "MINIMAX_INFERENCE_BASE_URL";
/// Refresh when this little access-token life remains.
pub const REFRESH_SKEW_MS: i64 = 60_000;
/// Timeout of every login request.
pub const HTTP_TIMEOUT_MS: u64 = 15_000;
/// Timeout of a refresh request. Once sent, a refresh is not abandoned while its answer can
/// still arrive: the server rotates the pair when it answers, and a client that gave up
/// would lose the only copy of the new refresh token. (The host gives every request made
/// during a refresh this deadline anyway; asking for it keeps the plugin honest on its own.)
pub const REFRESH_TIMEOUT_MS: u64 = 120_000;
/// The command that fixes a dead or missing login.
pub const SIGN_IN_COMMAND: &str = "hermes auth add minimax-oauth";
/// The sentence every relogin message ends with.
pub const SIGN_IN_AGAIN: &str = "Run `hermes auth add minimax-oauth` to sign in again.";
/// Hosts the plugin may reach; the host enforces it, and `resource_url` is checked against it.
pub const ALLOWED_HOSTS: &[&str] = &[
    "api.minimax.io",
    "account.minimax.io",
    "api.minimaxi.com",
    "account.minimaxi.com",
];
/// Where users read about the provider.
pub const DOCS_URL: &str = "https://platform.minimax.io/docs";
/// Models offered, all with the same limits.
pub const MODELS: &[&str] = &["MiniMax-M2.7", "MiniMax-M2.7-highspeed"];
/// The small, fast model for auxiliary tasks.
pub const AUX_MODEL: &str = "MiniMax-M2.7-highspeed";
/// Context window of every model, tokens.
pub const CONTEXT_WINDOW: u64 = 200_000;
/// Maximum output of every model, tokens.
pub const MAX_OUTPUT: u64 = 131_072;

/// A MiniMax region and its two base URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Region name as stored in `auth.json`.
    pub name: &'static str,
    /// What people call it.
    pub label: &'static str,
    /// Base of `/oauth/code` and `/oauth/token`.
    pub portal: &'static str,
    /// Base of the Anthropic Messages API.
    pub inference: &'static str,
}

impl Region {
    /// The id with the name people read beside it: `cn (China)`, or the id alone when the
    /// name only differs from it in case (`global`), as the host shows declared regions.
    pub fn shown(&self) -> String {
        hermes_plugin_sdk::region_shown(self.name, self.label)
    }
}

/// Every region; the first is the default.
pub const REGIONS: &[Region] = &[
    Region {
        name: "global",
        label: "Global",
        portal: "https://api.minimax.io",
        inference: "https://api.minimax.io/anthropic",
    },
    Region {
        name: "cn",
        label: "China",
        portal: "https://api.minimaxi.com",
        inference: "https://api.minimaxi.com/anthropic",
    },
];

/// The region used when neither the user nor a stored login names one (`global`).
pub const DEFAULT_REGION: Region = REGIONS[0];

/// The region with this name (case-insensitive); `None` when unknown.
pub fn region(name: &str) -> Option<Region> {
    REGIONS
        .iter()
        .copied()
        .find(|r| r.name.eq_ignore_ascii_case(name.trim()))
}

/// The region with this name, or the default for an empty or unknown one. Used when reading
/// stored credentials, where refusing would lock the user out over a typo in `auth.json`.
pub fn region_or_default(name: &str) -> Region {
    region(name).unwrap_or(DEFAULT_REGION)
}

/// The region names, comma-separated, for error messages.
pub fn region_names() -> String {
    REGIONS
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `id` names this provider (canonical id or alias, case-insensitive).
pub fn is_our_provider(id: &str) -> bool {
    std::iter::once(&PROVIDER_ID)
        .chain(ALIASES)
        .any(|name| name.eq_ignore_ascii_case(id.trim()))
}

/// The provider descriptor, as `describe()` returns it and the host validates it.
pub fn provider_info() -> ProviderInfo {
    let mut p = ProviderInfo::new(
        PROVIDER_ID,
        DISPLAY_NAME,
        flow::DEVICE_CODE,
        api_mode::ANTHROPIC_MESSAGES,
    );
    p.aliases = ALIASES.iter().map(|a| RString::from(*a)).collect();
    p.regions = REGIONS
        .iter()
        .map(|r| RegionInfo {
            name: r.name.into(),
            portal_base_url: r.portal.into(),
            inference_base_url: r.inference.into(),
        })
        .collect();
    p.models = MODELS
        .iter()
        .map(|id| ModelInfo {
            id: (*id).into(),
            context_window: CONTEXT_WINDOW,
            max_output: MAX_OUTPUT,
        })
        .collect();
    p.aux_model = AUX_MODEL.into();
    p.docs_url = DOCS_URL.into();
    p.allowed_hosts = ALLOWED_HOSTS.iter().map(|h| RString::from(*h)).collect();
    p.url_overrides = [
        (PORTAL_OVERRIDE, "portal"),
        (INFERENCE_OVERRIDE, "inference"),
    ]
    .iter()
    .map(|(env, target)| UrlOverride {
        env: (*env).into(),
        target: (*target).into(),
    })
    .collect();
    p.refresh_skew_ms = REFRESH_SKEW_MS as u64;
    let labels: serde_json::Map<String, serde_json::Value> = REGIONS
        .iter()
        .map(|r| (r.name.to_string(), r.label.into()))
        .collect();
    p.extension = serde_json::json!({
        hermes_plugin_sdk::validate::REGION_LABELS_KEY: labels
    })
    .to_string()
    .into();
    p
}

/// The plugin descriptor: this crate's version and its one provider.
pub fn plugin_info() -> PluginInfo {
    PluginInfo::new(
        PROVIDER_ID,
        env!("CARGO_PKG_VERSION"),
        "MiniMax sign-in (device code + PKCE) and Anthropic-compatible inference",
        vec![provider_info()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_matches_the_contract() {
        let info = plugin_info();
        assert_eq!(info.id.as_str(), "minimax-oauth");
        assert_eq!(info.version.as_str(), env!("CARGO_PKG_VERSION"));
        assert_eq!(info.providers.len(), 1);
        let p = &info.providers[0];
        assert_eq!(p.id.as_str(), "minimax-oauth");
        assert_eq!(p.display_name.as_str(), "MiniMax (OAuth)");
        let aliases: Vec<&str> = p.aliases.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            aliases,
            ["minimax-portal", "minimax-global", "minimax_oauth"]
        );
        assert_eq!(p.flow.as_str(), "device_code");
        assert_eq!(p.api_mode.as_str(), "anthropic_messages");
        let regions: Vec<(&str, &str, &str)> = p
            .regions
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.portal_base_url.as_str(),
                    r.inference_base_url.as_str(),
                )
            })
            .collect();
        assert_eq!(
            regions,
            [
                (
                    "global",
                    "https://api.minimax.io",
                    "https://api.minimax.io/anthropic"
                ),
                (
                    "cn",
                    "https://api.minimaxi.com",
                    "https://api.minimaxi.com/anthropic"
                ),
            ]
        );
        let models: Vec<(&str, u64, u64)> = p
            .models
            .iter()
            .map(|m| (m.id.as_str(), m.context_window, m.max_output))
            .collect();
        assert_eq!(
            models,
            [
                ("MiniMax-M2.7", 200_000, 131_072),
                ("MiniMax-M2.7-highspeed", 200_000, 131_072)
            ]
        );
        assert_eq!(p.aux_model.as_str(), "MiniMax-M2.7-highspeed");
        assert!(p.docs_url.starts_with("https://"));
        let hosts: Vec<&str> = p.allowed_hosts.iter().map(|h| h.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "api.minimax.io",
                "account.minimax.io",
                "api.minimaxi.com",
                "account.minimaxi.com"
            ]
        );
        let overrides: Vec<(&str, &str)> = p
            .url_overrides
            .iter()
            .map(|o| (o.env.as_str(), o.target.as_str()))
            .collect();
        assert_eq!(
            overrides,
            [
                ("MINIMAX_PORTAL_BASE_URL", "portal"),
                ("MINIMAX_INFERENCE_BASE_URL", "inference")
            ]
        );
        assert_eq!(p.refresh_skew_ms, 60_000);
    }

    #[test]
    fn regions_resolve_case_insensitively() {
        assert_eq!(region("CN").map(|r| r.name), Some("cn"));
        assert_eq!(region("mars"), None);
        assert_eq!(region_or_default("").name, "global");
        assert_eq!(region_or_default("mars").name, "global");
    }

    #[test]
    fn provider_names_include_aliases() {
        for id in [
            "minimax-oauth",
            "MiniMax-Portal",
            "minimax-global",
            "minimax_oauth",
        ] {
            assert!(is_our_provider(id), "{id}");
        }
        assert!(!is_our_provider("anthropic"));
    }
}
