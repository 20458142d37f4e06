//! `example-provider`: a hermes provider plugin whose users sign in with an OAuth device code
//! (RFC 8628): `hermes auth add example-provider` shows a URL and a code, the user approves in
//! a browser, and the host polls this plugin until the token arrives. Tokens are refreshed by
//! the host through [`RuntimeImpl::refresh`], once, under its lock.
//!
//! All I/O goes through the host ([`Host`]): its allow-list, https rule, timeouts and size caps
//! apply to every request, and the testkit's fake host can script every answer in tests.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::{AuthFlowImpl, Capabilities, Host, Plugin, RuntimeImpl, StatusImpl};
use serde_json::{json, Value};

/// The provider's id: also the plugin id and the name users type.
pub const PROVIDER_ID: &str = "example-provider";
/// Base URL of the OAuth endpoints (`/oauth/device/code`, `/oauth/token`).
pub const PORTAL: &str = "https://auth.example-provider.example";
/// Where inference requests go (the Anthropic Messages API lives under it).
pub const INFERENCE: &str = "https://api.example-provider.example/anthropic";
/// The hosts the plugin may reach; the host refuses every other.
pub const ALLOWED_HOSTS: &[&str] = &[
    "auth.example-provider.example",
    "api.example-provider.example",
];
/// Env var (declared below) pointing the OAuth endpoints elsewhere, e.g. at a local emulator.
pub const PORTAL_OVERRIDE: &str = "EXAMPLE_PROVIDER_PORTAL_URL";
/// The public OAuth client id.
pub const CLIENT_ID: &str = "example-provider-cli";
/// The command that fixes a missing or dead login.
pub const SIGN_IN: &str = "hermes auth add example-provider";
/// Timeout of every login and refresh request.
const TIMEOUT_MS: u64 = 15_000;

/// The plugin, as the host loads it.
pub struct ExampleProvider;

impl Plugin for ExampleProvider {
    fn info() -> PluginInfo {
        let mut p = ProviderInfo::new(
            PROVIDER_ID,
            "Example Provider",
            flow::DEVICE_CODE,
            api_mode::ANTHROPIC_MESSAGES,
        );
        p.regions.push(RegionInfo {
            name: "global".into(),
            portal_base_url: PORTAL.into(),
            inference_base_url: INFERENCE.into(),
        });
        p.models.push(ModelInfo {
            id: "example-model".into(),
            context_window: 200_000,
            max_output: 8_192,
        });
        p.allowed_hosts = ALLOWED_HOSTS.iter().map(|h| RString::from(*h)).collect();
        p.url_overrides.push(UrlOverride {
            env: PORTAL_OVERRIDE.into(),
            target: "portal".into(),
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
    fn portal(&self) -> String {
        self.host
            .config(PORTAL_OVERRIDE)
            .unwrap_or_else(|| PORTAL.to_string())
            .trim_end_matches('/')
            .to_string()
    }

    /// POSTs a form to the portal and parses the JSON answer. The host's own failures keep
    /// their kind (a timeout stays transient); an unreadable body is transient too.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Result<(u16, Value), PluginError> {
        let resp = self
            .host
            .post(&format!("{}{path}", self.portal()))
            .header("accept", "application/json")
            .form(fields)
            .timeout_ms(TIMEOUT_MS)
            .send()
            .map_err(|e| {
                PluginError::new(
                    e.kind,
                    "network",
                    format!("Example Provider is unreachable: {}", e.message),
                )
            })?;
        if resp.truncated {
            return Err(PluginError::transient(
                "bad_response",
                "Example Provider sent an answer that was cut short",
            ));
        }
        let body = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        Ok((resp.status, body))
    }

    /// A credential from a token answer.
    fn credential(&self, body: &Value, old_refresh: &str) -> Result<Credential, PluginError> {
        let access = body["access_token"].as_str().unwrap_or("");
        if access.is_empty() {
            return Err(PluginError::transient(
                "bad_response",
                "Example Provider sent no access token",
            ));
        }
        let expires_in = body["expires_in"]
            .as_i64()
            .unwrap_or(3600)
            .clamp(0, 365 * 86_400);
        Ok(Credential {
            access_token: access.into(),
            // Providers that rotate refresh tokens send a new one; keep the old one otherwise.
            refresh_token: body["refresh_token"].as_str().unwrap_or(old_refresh).into(),
            expires_at_ms: self.host.now_ms().saturating_add(expires_in * 1000),
            region: "global".into(),
            base_url: INFERENCE.into(),
            ..Default::default()
        })
    }
}

/// The server's `error` code, cut to one short line (server text may echo what it was sent,
/// so it never goes into a message whole).
fn error_code(body: &Value) -> String {
    body["error"]
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

impl AuthFlowImpl for Provider {
    fn start(&self, _region: &str, _options: &str) -> Result<Challenge, PluginError> {
        let (status, body) = self.post(
            "/oauth/device/code",
            &[("client_id", CLIENT_ID), ("scope", "inference")],
        )?;
        let (Some(device_code), Some(user_code), Some(uri)) = (
            body["device_code"].as_str(),
            body["user_code"].as_str(),
            body["verification_uri"].as_str(),
        ) else {
            let kind = if status >= 500 || status == 429 {
                kind::TRANSIENT
            } else {
                kind::TERMINAL
            };
            return Err(PluginError::new(
                kind,
                "authorization_failed",
                format!("Example Provider refused to start a sign-in (HTTP {status})"),
            ));
        };
        let now = self.host.now_ms();
        Ok(Challenge {
            user_code: user_code.into(),
            verification_uri: uri.into(),
            expires_at_ms: now
                .saturating_add(body["expires_in"].as_i64().unwrap_or(600).clamp(1, 3600) * 1000),
            interval_ms: body["interval"].as_u64().unwrap_or(5).clamp(1, 60) * 1000,
            session: json!({ "device_code": device_code }).to_string().into(),
        })
    }

    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError> {
        let session: Value = serde_json::from_str(session).unwrap_or(Value::Null);
        let Some(device_code) = session["device_code"].as_str() else {
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "bad_session",
                "not a session this plugin started",
            ));
        };
        let (status, body) = self.post(
            "/oauth/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
                ("client_id", CLIENT_ID),
            ],
        )?;
        if status == 200 {
            return Ok(PollOutcome::approved(self.credential(&body, "")?, ""));
        }
        match error_code(&body).as_str() {
            "authorization_pending" => Ok(PollOutcome::pending()),
            "slow_down" => Ok(PollOutcome::slow_down(10_000)),
            "access_denied" => Ok(PollOutcome::denied("the sign-in was declined")),
            "expired_token" => Ok(PollOutcome::expired(
                "the code expired; run the command again",
            )),
            _ if status >= 500 || status == 429 => Err(PluginError::transient(
                "poll_failed",
                format!("Example Provider answered HTTP {status}; will retry"),
            )),
            code => Err(PluginError::terminal(
                "poll_failed",
                format!("the sign-in failed (HTTP {status} {code})"),
            )),
        }
    }
}

impl RuntimeImpl for Provider {
    fn needs_refresh(&self, cred: &Credential, now_ms: i64) -> bool {
        cred.expires_at_ms.saturating_sub(now_ms) <= 60_000
    }

    fn refresh(&self, cred: &Credential) -> Result<Credential, PluginError> {
        if cred.refresh_token.is_empty() {
            return Err(PluginError::relogin(
                "no_refresh_token",
                format!("no refresh token is stored; run `{SIGN_IN}`"),
            ));
        }
        let (status, body) = self.post(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &cred.refresh_token),
                ("client_id", CLIENT_ID),
            ],
        )?;
        match (status, error_code(&body).as_str()) {
            (200, _) => self.credential(&body, &cred.refresh_token),
            // Only the server saying the token is dead ends the login; everything else is
            // retried later, so an outage never logs anybody out.
            (400 | 401, "invalid_grant") => Err(PluginError::relogin(
                "refresh_failed",
                format!("the login expired; run `{SIGN_IN}`"),
            )),
            (s, _) if s >= 500 || s == 429 => Err(PluginError::transient(
                "refresh_failed",
                format!("Example Provider answered HTTP {s}; will retry"),
            )),
            (s, code) => Err(PluginError::transient(
                "refresh_failed",
                format!("the token refresh failed (HTTP {s} {code}); will retry"),
            )),
        }
    }

    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError> {
        if cred.access_token.is_empty() {
            return Err(PluginError::relogin(
                "not_logged_in",
                format!("not signed in; run `{SIGN_IN}`"),
            ));
        }
        Ok(Runtime {
            base_url: INFERENCE.into(),
            auth_scheme: auth_scheme::BEARER,
            secret: cred.access_token.clone(),
            extra_headers: RVec::new(),
        })
    }
}

impl StatusImpl for Provider {
    fn status(&self, cred: Option<&Credential>, now_ms: i64) -> StatusReport {
        let mut r = match cred {
            Some(c) if !c.access_token.is_empty() && c.expires_at_ms > now_ms => StatusReport::new(
                status_state::VALID,
                &format!(
                    "logged in, token valid {}",
                    hermes_plugin_sdk::duration::human(c.expires_at_ms - now_ms)
                ),
            ),
            Some(c) if !c.refresh_token.is_empty() => StatusReport::new(
                status_state::REFRESH_ON_NEXT_USE,
                "logged in (token refreshes on next use)",
            ),
            Some(c) if !c.access_token.is_empty() => {
                let mut r = StatusReport::new(status_state::RELOGIN_REQUIRED, "sign-in required");
                r.problems.push(
                    format!("the token expired and cannot be refreshed: run `{SIGN_IN}`").into(),
                );
                r
            }
            _ => {
                let mut r = StatusReport::new(status_state::NOT_LOGGED_IN, "not logged in");
                r.problems
                    .push(format!("not logged in: run `{SIGN_IN}`").into());
                r
            }
        };
        if let Some(c) = cred {
            r.region = c.region.clone();
            r.expires_at_ms = c.expires_at_ms;
        }
        r
    }
}

hermes_plugin_sdk::export_plugin!(ExampleProvider);
