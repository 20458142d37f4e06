//! What `auth remove` must clean up for each credential source.

use hermes_plugin_sdk::prelude::*;

use crate::descriptor::SIGN_IN_COMMAND;

/// The plan for removing `source`: the `oauth` singleton clears the stored login and is
/// suppressed so that it is not seeded back into the pool; a `manual:` entry (an extra account) is
/// only its own pool entry; an unknown source touches nothing beyond what the host removes itself.
pub fn removal(source: &str) -> RemovalPlan {
    if source == "oauth" {
        RemovalPlan {
            clear_provider_state: true,
            suppress_source: true,
            message: format!(
                "Removed the MiniMax (OAuth) login. Run `{SIGN_IN_COMMAND}` to sign in again."
            )
            .into(),
        }
    } else if source.starts_with("manual:") {
        RemovalPlan {
            clear_provider_state: false,
            suppress_source: false,
            message: "Removed the extra MiniMax (OAuth) account.".into(),
        }
    } else {
        RemovalPlan {
            clear_provider_state: false,
            suppress_source: false,
            message: RString::new(),
        }
    }
}
