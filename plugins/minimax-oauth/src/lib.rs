//! The `minimax-oauth` hermes plugin: MiniMax sign-in (device code + PKCE), token refresh
//! and the Anthropic-compatible inference endpoint.
//!
//! Pure protocol logic over [`Host`]: all I/O (HTTP, clock, randomness, logs, configuration)
//! goes through the host, so the crate has no async runtime and is tested with the testkit's
//! fake host. The wire contract is `minimax-protocol.md`; each module cites the rule it
//! implements.
//!
//! * [`descriptor`]: the provider as data, and the protocol constants.
//! * [`login`]: `AuthFlow` (`/oauth/code`, then `/oauth/token` polls).
//! * [`refresh`] and [`runtime`]: `RuntimeCredential`.
//! * [`status`] and [`removal`]: `Status` and `RemovalStep`.
//! * [`expiry`]: the single `expired_in` parser every path uses.
//! * [`state`]: the stored provider block (`Credential::state`).

#![deny(missing_docs)]

pub mod descriptor;
pub mod expiry;
pub mod login;
pub mod pkce;
pub mod refresh;
pub mod removal;
pub mod runtime;
pub mod state;
pub mod status;
pub mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::{
    AuthFlowImpl, Capabilities, Host, Plugin, RemovalImpl, RuntimeImpl, StatusImpl,
};

/// The plugin type exported to the host.
pub struct MiniMaxPlugin;

impl Plugin for MiniMaxPlugin {
    fn info() -> PluginInfo {
        descriptor::plugin_info()
    }

    fn provider(id: &str, host: Host) -> Result<Capabilities, PluginError> {
        if !descriptor::is_our_provider(id) {
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "unknown_provider",
                format!(
                    "plugin {} has no provider {:?}",
                    descriptor::PROVIDER_ID,
                    id.chars().take(64).collect::<String>()
                ),
            ));
        }
        let p = MiniMax { host };
        Ok(Capabilities::new(p.clone())
            .with_auth_flow(p.clone())
            .with_runtime(p.clone())
            .with_removal(p))
    }
}

/// The `minimax-oauth` provider bound to the host's services.
#[derive(Clone)]
pub struct MiniMax {
    host: Host,
}

impl MiniMax {
    /// The provider over `host`.
    pub fn new(host: Host) -> Self {
        Self { host }
    }
}

impl AuthFlowImpl for MiniMax {
    fn start(&self, region: &str, options: &str) -> Result<Challenge, PluginError> {
        login::start(&self.host, region, options)
    }
    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError> {
        login::poll(&self.host, session)
    }
}

impl RuntimeImpl for MiniMax {
    fn needs_refresh(&self, cred: &Credential, now_ms: i64) -> bool {
        runtime::needs_refresh(cred, now_ms)
    }
    fn refresh(&self, cred: &Credential) -> Result<Credential, PluginError> {
        refresh::refresh(&self.host, cred)
    }
    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError> {
        runtime::runtime(&self.host, cred)
    }
}

impl StatusImpl for MiniMax {
    fn status(&self, cred: Option<&Credential>, now_ms: i64) -> StatusReport {
        status::status(cred, now_ms)
    }
}

impl RemovalImpl for MiniMax {
    fn removal(&self, source: &str) -> RemovalPlan {
        removal::removal(source)
    }
}

hermes_plugin_sdk::export_plugin!(MiniMaxPlugin);
