//! The `minimax-apikey` hermes plugin: MiniMax with an API key, as two providers —
//! `minimax` (region global, `api.minimax.io`) and `minimax-cn` (region cn, `api.minimaxi.com`,
//! aliases `minimax-china` and `minimax_cn`).
//!
//! Written only against the plugin SDK: sign-in is the `api_key` flow
//! (`hermes auth add minimax --api-key-stdin < key.txt`; the host passes the key as
//! `{"api_key": "..."}` and the first poll approves it), requests go to the Anthropic Messages
//! API with the key as `x-api-key`, and status answers from the stored key alone. Keys never
//! expire and are never refreshed. Nothing here makes a network call.
//!
//! Besides stdin, a key may come from the provider's declared variable (`MINIMAX_API_KEY`,
//! `MINIMAX_CN_API_KEY`), which a host that understands the descriptor's `credential_env`
//! extension hands over through `config_get`; a key on the command line is never accepted.

#![deny(missing_docs)]

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::validate::{CREDENTIAL_ENV_KEY, REGION_LABELS_KEY};
use hermes_plugin_sdk::{
    api_key, AuthFlowImpl, Capabilities, Host, Plugin, RuntimeImpl, StatusImpl,
};

#[cfg(test)]
mod tests;

/// Plugin id (also its install directory).
pub const PLUGIN_ID: &str = "minimax-apikey";
/// Models offered in both regions.
pub const MODELS: &[&str] = &["MiniMax-M2.7", "MiniMax-M2.7-highspeed"];
/// The small, fast model for auxiliary tasks.
pub const AUX_MODEL: &str = "MiniMax-M2.7-highspeed";
/// Context window of every model, tokens.
pub const CONTEXT_WINDOW: u64 = 200_000;
/// Maximum output of every model, tokens.
pub const MAX_OUTPUT: u64 = 131_072;
/// `anthropic-version` sent with every inference request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Where users read about MiniMax API keys.
pub const DOCS_URL: &str = "https://platform.minimax.io/docs";

/// One provider of this plugin: a region with its own endpoint, key variable and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Canonical provider id, as users type it in `hermes auth add`.
    pub id: &'static str,
    /// Name shown in status lines and the dashboard.
    pub display_name: &'static str,
    /// Other names users may type for it (matched case-insensitively).
    pub aliases: &'static [&'static str],
    /// The region (the provider has exactly one).
    pub region: &'static str,
    /// The region's name for people, declared in the descriptor's `region_labels` extension.
    pub region_label: &'static str,
    /// Base URL of the Anthropic Messages API.
    pub inference: &'static str,
    /// The one host the plugin may reach for this provider.
    pub host: &'static str,
    /// Env var (or config key) overriding the inference base URL.
    pub url_override: &'static str,
    /// Env var carrying a key, declared in the descriptor's `credential_env` extension.
    pub key_env: &'static str,
}

/// MiniMax's international endpoint (`api.minimax.io`).
pub const GLOBAL: Spec = Spec {
    id: "minimax",
    display_name: "MiniMax",
    aliases: &[],
    region: "global",
    region_label: "Global",
    inference: "https://api.minimax.io/anthropic",
    host: "api.minimax.io",
    url_override: "MINIMAX_BASE_URL",
    key_env: "MINIMAX_API_KEY",
};

/// MiniMax's mainland China endpoint (`api.minimaxi.com`), with keys of its own.
pub const CHINA: Spec = Spec {
    id: "minimax-cn",
    display_name: "MiniMax (China)",
    aliases: &["minimax-china", "minimax_cn"],
    region: "cn",
    region_label: "China",
    inference: "https://api.minimaxi.com/anthropic",
    host: "api.minimaxi.com",
    url_override: "MINIMAX_CN_BASE_URL",
    key_env: "MINIMAX_CN_API_KEY",
};

/// Both providers; the host calls [`Plugin::provider`] with one of their ids.
pub const PROVIDERS: &[Spec] = &[GLOBAL, CHINA];

impl Spec {
    /// The provider with this id or alias (case-insensitive).
    pub fn find(name: &str) -> Option<Spec> {
        let name = name.trim();
        PROVIDERS.iter().copied().find(|s| {
            s.id.eq_ignore_ascii_case(name)
                || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }

    /// The command that stores a key.
    pub fn sign_in(&self) -> String {
        format!("hermes auth add {} --api-key-stdin", self.id)
    }

    /// The provider's descriptor, built from this spec alone.
    pub fn info(&self) -> ProviderInfo {
        let mut p = ProviderInfo::new(
            self.id,
            self.display_name,
            flow::API_KEY,
            api_mode::ANTHROPIC_MESSAGES,
        );
        p.aliases = self.aliases.iter().map(|a| RString::from(*a)).collect();
        p.regions.push(RegionInfo {
            name: self.region.into(),
            portal_base_url: RString::new(),
            inference_base_url: self.inference.into(),
        });
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
        p.allowed_hosts.push(self.host.into());
        p.url_overrides.push(UrlOverride {
            env: self.url_override.into(),
            target: "inference".into(),
        });
        // Keys never expire; nothing to refresh ahead of.
        p.refresh_skew_ms = 0;
        // Static ids and names: nothing in them needs escaping.
        p.extension = format!(
            "{{\"{CREDENTIAL_ENV_KEY}\": [\"{}\"], \"{REGION_LABELS_KEY}\": {{\"{}\": \"{}\"}}}}",
            self.key_env, self.region, self.region_label
        )
        .as_str()
        .into();
        p
    }

    /// The region as people read it: `cn (China)`; the id alone when its name only differs
    /// from it in case (`global`).
    pub fn region_shown(&self) -> String {
        hermes_plugin_sdk::region_shown(self.region, self.region_label)
    }
}

/// The plugin type exported to the host.
pub struct MiniMaxApiKey;

impl Plugin for MiniMaxApiKey {
    fn info() -> PluginInfo {
        PluginInfo::new(
            PLUGIN_ID,
            env!("CARGO_PKG_VERSION"),
            "MiniMax with an API key (global and China regions)",
            PROVIDERS.iter().map(Spec::info).collect(),
        )
    }

    fn provider(id: &str, host: Host) -> Result<Capabilities, PluginError> {
        let Some(spec) = Spec::find(id) else {
            let shown: String = id.chars().take(64).filter(|c| !c.is_control()).collect();
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "unknown_provider",
                format!("plugin {PLUGIN_ID} has no provider {shown:?}"),
            ));
        };
        let p = Provider { spec, host };
        Ok(Capabilities::new(p.clone())
            .with_auth_flow(p.clone())
            .with_runtime(p))
    }
}

/// One provider bound to the host's services.
#[derive(Clone)]
pub struct Provider {
    spec: Spec,
    host: Host,
}

impl Provider {
    /// The provider `spec` over `host`.
    pub fn new(spec: Spec, host: Host) -> Self {
        Self { spec, host }
    }

    /// The inference base URL: the override variable, else the region's.
    fn base_url(&self) -> String {
        self.host
            .config(self.spec.url_override)
            .unwrap_or_else(|| self.spec.inference.to_string())
            .trim()
            .trim_end_matches('/')
            .to_string()
    }
}

impl AuthFlowImpl for Provider {
    /// Takes the key from the options (`--api-key-stdin`), else from the declared variable.
    /// The challenge shows nothing and carries the key in its (secret) session.
    fn start(&self, region: &str, options: &str) -> Result<Challenge, PluginError> {
        let region = region.trim();
        if !region.is_empty() && !region.eq_ignore_ascii_case(self.spec.region) {
            let shown: String = region
                .chars()
                .take(32)
                .filter(|c| !c.is_control())
                .collect();
            let other = PROVIDERS
                .iter()
                .find(|s| s.region.eq_ignore_ascii_case(region));
            let help = match other {
                Some(o) => format!("; for region {} use provider {}", o.region, o.id),
                None => String::new(),
            };
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "unknown_region",
                format!(
                    "{} serves region {} only, not {shown:?}{help}",
                    self.spec.display_name, self.spec.region
                ),
            ));
        }
        let key = match api_key::from_options(options)? {
            Some(k) => k,
            None => match self.host.config(self.spec.key_env) {
                Some(k) => api_key::check(k.trim())?.to_string(),
                None => {
                    return Err(PluginError::new(
                        kind::INVALID_INPUT,
                        "no_api_key",
                        format!(
                            "no API key given: pipe one in with `{}`, or set {}",
                            self.spec.sign_in(),
                            self.spec.key_env
                        ),
                    ))
                }
            },
        };
        Ok(api_key::challenge(&key, self.host.now_ms()))
    }

    /// Approves at once: the session is the key `start` checked.
    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError> {
        let key = api_key::check(session.trim())?;
        let credential = Credential {
            access_token: key.into(),
            refresh_token: RString::new(),
            expires_at_ms: 0,
            region: self.spec.region.into(),
            base_url: self.spec.inference.into(),
            label: RString::new(),
            state: RString::new(),
        };
        Ok(PollOutcome::approved(credential, ""))
    }
}

impl RuntimeImpl for Provider {
    fn needs_refresh(&self, _cred: &Credential, _now_ms: i64) -> bool {
        false
    }

    /// The host asks only after MiniMax rejected the key (a 401). There is nothing to
    /// refresh, and the key is kept (not a relogin): the user replaces it when they choose.
    fn refresh(&self, _cred: &Credential) -> Result<Credential, PluginError> {
        Err(PluginError::terminal(
            "key_rejected",
            format!(
                "MiniMax rejected the API key; add a valid one with `{}`",
                self.spec.sign_in()
            ),
        ))
    }

    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError> {
        if cred.access_token.trim().is_empty() {
            return Err(PluginError::relogin(
                "not_logged_in",
                format!(
                    "no MiniMax API key is stored; run `{}`",
                    self.spec.sign_in()
                ),
            ));
        }
        Ok(Runtime {
            base_url: self.base_url().into(),
            auth_scheme: auth_scheme::X_API_KEY,
            secret: cred.access_token.clone(),
            extra_headers: vec![Tuple2("anthropic-version".into(), ANTHROPIC_VERSION.into())]
                .into(),
        })
    }
}

impl StatusImpl for Provider {
    fn status(&self, cred: Option<&Credential>, _now_ms: i64) -> StatusReport {
        let mut r = match cred {
            Some(c) if !c.access_token.trim().is_empty() => StatusReport::new(
                status_state::VALID,
                &format!(
                    "logged in with API key {}, region {}",
                    hermes_plugin_sdk::mask(c.access_token.trim()),
                    self.spec.region_shown()
                ),
            ),
            _ => {
                let mut r = StatusReport::new(status_state::NOT_LOGGED_IN, "not logged in");
                r.problems.push(
                    format!(
                        "no API key: run `{}` (or set {})",
                        self.spec.sign_in(),
                        self.spec.key_env
                    )
                    .into(),
                );
                r
            }
        };
        r.region = self.spec.region.into();
        r
    }
}

hermes_plugin_sdk::export_plugin!(MiniMaxApiKey);
