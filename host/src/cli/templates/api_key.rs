//! `example-provider`: a hermes provider plugin whose users sign in with an API key.
//!
//! `hermes auth add example-provider --api-key-stdin < key.txt` hands the key to
//! [`AuthFlowImpl::start`]; the first poll approves it; the host stores it and sends it as
//! `x-api-key` on every inference request. All I/O goes through the host ([`Host`]), so the
//! plugin stays small, synchronous and testable with the testkit's fake host.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::{
    api_key, AuthFlowImpl, Capabilities, Host, Plugin, RuntimeImpl, StatusImpl,
};

/// The provider's id: also the plugin id and the name users type.
pub const PROVIDER_ID: &str = "example-provider";
/// Where inference requests go (the Anthropic Messages API lives under it).
pub const BASE_URL: &str = "https://api.example-provider.example/anthropic";
/// The hosts the plugin may reach; the host refuses every other (and admits the host of a
/// base URL the user sets through the override below).
pub const ALLOWED_HOSTS: &[&str] = &["api.example-provider.example"];
/// Env var (declared below) pointing inference elsewhere, e.g. at a local server; also
/// `providers.example-provider.inference_base_url` in config.yaml.
pub const BASE_URL_OVERRIDE: &str = "EXAMPLE_PROVIDER_BASE_URL";
/// The command that fixes a missing or rejected key.
pub const SIGN_IN: &str = "hermes auth add example-provider --api-key-stdin";

/// The plugin, as the host loads it.
pub struct ExampleProvider;

impl Plugin for ExampleProvider {
    fn info() -> PluginInfo {
        let mut p = ProviderInfo::new(
            PROVIDER_ID,
            "Example Provider",
            flow::API_KEY,
            api_mode::ANTHROPIC_MESSAGES,
        );
        p.regions.push(RegionInfo {
            name: "global".into(),
            portal_base_url: "".into(),
            inference_base_url: BASE_URL.into(),
        });
        p.models.push(ModelInfo {
            id: "example-model".into(),
            context_window: 200_000,
            max_output: 8_192,
        });
        p.allowed_hosts = ALLOWED_HOSTS.iter().map(|h| RString::from(*h)).collect();
        p.url_overrides.push(UrlOverride {
            env: BASE_URL_OVERRIDE.into(),
            target: "inference".into(),
        });
        PluginInfo::new(
            PROVIDER_ID,
            env!("CARGO_PKG_VERSION"),
            "Example Provider for hermes",
            vec![p],
        )
    }

    fn provider(id: &str, host: Host) -> Result<Capabilities, PluginError> {
        if id != PROVIDER_ID {
            let shown: String = id.chars().take(64).collect();
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "unknown_provider",
                format!("this plugin has no provider {shown:?}"),
            ));
        }
        let p = Provider { host };
        // Capabilities not added here (removal) are absent, not stubbed.
        Ok(Capabilities::new(p.clone())
            .with_auth_flow(p.clone())
            .with_runtime(p))
    }
}

/// The provider, bound to the host's services.
#[derive(Clone)]
pub struct Provider {
    host: Host,
}

impl Provider {
    /// The inference base URL: the override when set, else the provider's.
    fn base_url(&self) -> String {
        self.host
            .config(BASE_URL_OVERRIDE)
            .unwrap_or_else(|| BASE_URL.to_string())
            .trim_end_matches('/')
            .to_string()
    }
}

impl AuthFlowImpl for Provider {
    fn start(&self, _region: &str, options: &str) -> Result<Challenge, PluginError> {
        let key = api_key::from_options(options)?.ok_or_else(|| {
            PluginError::new(
                kind::INVALID_INPUT,
                "no_api_key",
                format!("no API key given: pipe one in with `{SIGN_IN}`"),
            )
        })?;
        // The session is secret (only this plugin reads it); the host shows no URL or code.
        Ok(api_key::challenge(&key, self.host.now_ms()))
    }

    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError> {
        let key = api_key::check(session)?;
        let credential = Credential {
            access_token: key.into(),
            region: "global".into(),
            base_url: BASE_URL.into(),
            ..Default::default()
        };
        Ok(PollOutcome::approved(credential, ""))
    }
}

impl RuntimeImpl for Provider {
    fn needs_refresh(&self, _cred: &Credential, _now_ms: i64) -> bool {
        false // API keys do not expire.
    }

    fn refresh(&self, _cred: &Credential) -> Result<Credential, PluginError> {
        // The host asks only after the provider rejected the key (a 401). Not a relogin: the
        // key stays stored until the user replaces it.
        Err(PluginError::terminal(
            "key_rejected",
            format!("the API key was rejected; add a valid one with `{SIGN_IN}`"),
        ))
    }

    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError> {
        if cred.access_token.is_empty() {
            return Err(PluginError::relogin(
                "not_logged_in",
                format!("no API key is stored; run `{SIGN_IN}`"),
            ));
        }
        Ok(Runtime {
            base_url: self.base_url().into(),
            auth_scheme: auth_scheme::X_API_KEY,
            secret: cred.access_token.clone(),
            extra_headers: RVec::new(),
        })
    }
}

impl StatusImpl for Provider {
    fn status(&self, cred: Option<&Credential>, _now_ms: i64) -> StatusReport {
        match cred {
            Some(c) if !c.access_token.is_empty() => {
                let summary = format!(
                    "logged in with API key {}",
                    hermes_plugin_sdk::mask(&c.access_token)
                );
                let mut r = StatusReport::new(status_state::VALID, &summary);
                r.region = "global".into();
                r
            }
            _ => {
                let mut r = StatusReport::new(status_state::NOT_LOGGED_IN, "not logged in");
                r.problems
                    .push(format!("no API key: run `{SIGN_IN}`").into());
                r
            }
        }
    }
}

hermes_plugin_sdk::export_plugin!(ExampleProvider);
