//! The `openai-compatible` hermes plugin: any server that speaks the OpenAI chat completions
//! API (OpenAI itself, vLLM, llama.cpp, Ollama, LiteLLM, …), signed in with an API key.
//!
//! Written only against the plugin SDK. Provider `openai-compatible` (alias `openai-compat`),
//! flow `api_key`, api mode `chat_completions`, the key sent as `Authorization: Bearer`.
//!
//! * Base URL: `providers.openai-compatible.base_url` in config.yaml, else `OPENAI_BASE_URL`,
//!   else `https://api.openai.com/v1` (OpenAI convention: the base includes `/v1`; the host
//!   appends `/chat/completions`). The host admits the host of a base URL the user configured
//!   to its allow-list; a server can never widen it.
//! * Key: `hermes auth add openai-compatible --api-key-stdin < key.txt`, or `OPENAI_API_KEY`.
//!   Sign-in checks the key with `GET {base}/models`; a 401 or 403 refuses it and nothing is
//!   saved.
//! * Models: any name (`--model openai-compatible/<name>`); the descriptor lists a few.

#![deny(missing_docs)]

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::validate::CREDENTIAL_ENV_KEY;
use hermes_plugin_sdk::{
    api_key, AuthFlowImpl, Capabilities, Host, Plugin, RuntimeImpl, StatusImpl,
};

#[cfg(test)]
mod tests;

/// Plugin and provider id.
pub const PROVIDER_ID: &str = "openai-compatible";
/// Other accepted names.
pub const ALIASES: &[&str] = &["openai-compat"];
/// The base URL when none is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The host of the default base URL (the only one allowed without configuration).
pub const DEFAULT_HOST: &str = "api.openai.com";
/// Configuration key (config.yaml, `providers.openai-compatible.base_url`).
pub const BASE_URL_KEY: &str = "base_url";
/// Environment variable overriding the base URL.
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";
/// Environment variable carrying a key.
pub const KEY_ENV: &str = "OPENAI_API_KEY";
/// A few well-known models; any other name is sent as given.
pub const MODELS: &[(&str, u64, u64)] = &[
    ("gpt-4o-mini", 128_000, 16_384),
    ("gpt-4o", 128_000, 16_384),
    ("gpt-4.1-mini", 1_047_576, 32_768),
];
/// The command that stores a key.
pub const SIGN_IN: &str = "hermes auth add openai-compatible --api-key-stdin < key.txt";
/// Region name (the provider has one).
pub const REGION: &str = "default";

/// The plugin type exported to the host.
pub struct OpenAiCompatible;

impl Plugin for OpenAiCompatible {
    fn info() -> PluginInfo {
        let mut p = ProviderInfo::new(
            PROVIDER_ID,
            "OpenAI-compatible",
            flow::API_KEY,
            api_mode::CHAT_COMPLETIONS,
        );
        p.aliases = ALIASES.iter().map(|a| RString::from(*a)).collect();
        p.regions.push(RegionInfo {
            name: REGION.into(),
            portal_base_url: RString::new(),
            inference_base_url: DEFAULT_BASE_URL.into(),
        });
        p.models = MODELS
            .iter()
            .map(|(id, context_window, max_output)| ModelInfo {
                id: (*id).into(),
                context_window: *context_window,
                max_output: *max_output,
            })
            .collect();
        p.docs_url = "https://platform.openai.com/docs/api-reference/chat".into();
        p.allowed_hosts.push(DEFAULT_HOST.into());
        p.url_overrides.push(UrlOverride {
            env: BASE_URL_ENV.into(),
            target: "inference".into(),
        });
        p.refresh_skew_ms = 0;
        p.extension = format!("{{\"{CREDENTIAL_ENV_KEY}\": [\"{KEY_ENV}\"]}}")
            .as_str()
            .into();
        PluginInfo::new(
            PROVIDER_ID,
            env!("CARGO_PKG_VERSION"),
            "Any OpenAI-compatible chat completions server, with an API key",
            vec![p],
        )
    }

    fn provider(id: &str, host: Host) -> Result<Capabilities, PluginError> {
        let known = id.eq_ignore_ascii_case(PROVIDER_ID)
            || ALIASES.iter().any(|a| a.eq_ignore_ascii_case(id));
        if !known {
            let shown: String = id.chars().take(64).filter(|c| !c.is_control()).collect();
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "unknown_provider",
                format!("plugin {PROVIDER_ID} has no provider {shown:?}"),
            ));
        }
        let p = Provider { host };
        Ok(Capabilities::new(p.clone())
            .with_auth_flow(p.clone())
            .with_runtime(p))
    }
}

/// The provider bound to the host's services.
#[derive(Clone)]
pub struct Provider {
    host: Host,
}

impl Provider {
    /// The provider over `host`.
    pub fn new(host: Host) -> Self {
        Self { host }
    }

    /// The base URL: config.yaml, else the environment, else OpenAI's.
    pub fn base_url(&self) -> String {
        self.host
            .config(BASE_URL_KEY)
            .or_else(|| self.host.config(BASE_URL_ENV))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
            .trim()
            .trim_end_matches('/')
            .to_string()
    }

    /// Ask the server whether it takes `key`: `GET {base}/models`.
    fn check_key(&self, key: &str) -> Result<(), PluginError> {
        let base = self.base_url();
        let url = format!("{base}/models");
        let resp = self
            .host
            .get(&url)
            .header("authorization", &format!("Bearer {key}"))
            .header("accept", "application/json")
            .send()
            .map_err(|e| {
                PluginError::new(
                    e.kind,
                    if e.code.is_empty() {
                        "network"
                    } else {
                        e.code.as_str()
                    },
                    format!("cannot check the key at {base}: {}", e.message),
                )
            })?;
        match resp.status {
            200..=299 => Ok(()),
            // A server without a model list still serves chat completions.
            404 | 405 => {
                self.host
                    .info(&format!("{base}/models answered {}: the key is not checked", resp.status));
                Ok(())
            }
            401 | 403 => Err(PluginError::new(
                kind::INVALID_INPUT,
                "key_rejected",
                format!(
                    "{base} rejected the API key ({}); nothing was saved: check the key and run `{SIGN_IN}`",
                    resp.status
                ),
            )),
            s => Err(PluginError::transient(
                "check_failed",
                format!("{base}/models answered {s}; the key could not be checked, try again"),
            )),
        }
    }
}

impl AuthFlowImpl for Provider {
    /// Takes the key from the options (`--api-key-stdin`), else from `OPENAI_API_KEY`, and
    /// checks it with the server before anything is saved.
    fn start(&self, _region: &str, options: &str) -> Result<Challenge, PluginError> {
        let key = match api_key::from_options(options)? {
            Some(k) => k,
            None => match self.host.config(KEY_ENV) {
                Some(k) => api_key::check(k.trim())?.to_string(),
                None => {
                    return Err(PluginError::new(
                        kind::INVALID_INPUT,
                        "no_api_key",
                        format!("no API key given: pipe one in with `{SIGN_IN}`, or set {KEY_ENV}"),
                    ))
                }
            },
        };
        self.check_key(&key)?;
        Ok(api_key::challenge(&key, self.host.now_ms()))
    }

    /// Approves at once: the session is the key `start` checked.
    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError> {
        let key = api_key::check(session.trim())?;
        let credential = Credential {
            access_token: key.into(),
            region: REGION.into(),
            ..Default::default()
        };
        Ok(PollOutcome::approved(credential, ""))
    }
}

impl RuntimeImpl for Provider {
    fn needs_refresh(&self, _cred: &Credential, _now_ms: i64) -> bool {
        false
    }

    /// Asked only after the server rejected the key (a 401): nothing to refresh, and the key
    /// is kept until the user replaces it.
    fn refresh(&self, _cred: &Credential) -> Result<Credential, PluginError> {
        Err(PluginError::terminal(
            "key_rejected",
            format!("the server rejected the API key; add a valid one with `{SIGN_IN}`"),
        ))
    }

    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError> {
        if cred.access_token.trim().is_empty() {
            return Err(PluginError::relogin(
                "not_logged_in",
                format!("no API key is stored; run `{SIGN_IN}`"),
            ));
        }
        Ok(Runtime {
            base_url: self.base_url().into(),
            auth_scheme: auth_scheme::BEARER,
            secret: cred.access_token.clone(),
            extra_headers: RVec::new(),
        })
    }
}

impl StatusImpl for Provider {
    fn status(&self, cred: Option<&Credential>, _now_ms: i64) -> StatusReport {
        let mut r = match cred {
            Some(c) if !c.access_token.trim().is_empty() => StatusReport::new(
                status_state::VALID,
                &format!(
                    "logged in with API key {}, base URL {}",
                    hermes_plugin_sdk::mask(c.access_token.trim()),
                    self.base_url()
                ),
            ),
            _ => {
                let mut r = StatusReport::new(status_state::NOT_LOGGED_IN, "not logged in");
                r.problems
                    .push(format!("no API key: run `{SIGN_IN}` (or set {KEY_ENV})").into());
                r
            }
        };
        r.region = REGION.into();
        r
    }
}

hermes_plugin_sdk::export_plugin!(OpenAiCompatible);
