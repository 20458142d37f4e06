//! Status without network: what `auth status`, `doctor` and the dashboard show.

use hermes_plugin_sdk::prelude::*;

use crate::descriptor::{SIGN_IN_AGAIN, SIGN_IN_COMMAND};
use crate::state::{credential_region, ProviderState};

/// The state of `cred` (or of having none) at `now_ms`. Never refreshes: an expired access
/// token with a refresh token is still a login, refreshed on next use.
pub fn status(cred: Option<&Credential>, now_ms: i64) -> StatusReport {
    let Some(cred) = cred else {
        return not_logged_in();
    };
    let st = ProviderState::parse(&cred.state);
    let region = credential_region(cred, &st);
    let mut report = if cred.access_token.trim().is_empty() {
        match st.last_auth_error().filter(|e| e.relogin_required) {
            Some(e) => relogin(&stored_problem(&e.message)),
            None => not_logged_in(),
        }
    } else if cred.expires_at_ms > now_ms {
        StatusReport::new(
            status_state::VALID,
            &format!(
                "logged in, region {}, token valid {}",
                region.shown(),
                remaining(cred.expires_at_ms.saturating_sub(now_ms))
            ),
        )
    } else if !cred.refresh_token.trim().is_empty() {
        StatusReport::new(
            status_state::REFRESH_ON_NEXT_USE,
            "logged in (token refreshes on next use)",
        )
    } else {
        relogin(&format!(
            "the access token expired and no refresh token is stored: run `{SIGN_IN_COMMAND}`"
        ))
    };
    report.region = region.name.into();
    report.expires_at_ms = cred.expires_at_ms;
    report
}

fn not_logged_in() -> StatusReport {
    let mut r = StatusReport::new(status_state::NOT_LOGGED_IN, "not logged in");
    r.problems
        .push(format!("not logged in: run `{SIGN_IN_COMMAND}`").into());
    r
}

fn relogin(problem: &str) -> StatusReport {
    let mut r = StatusReport::new(status_state::RELOGIN_REQUIRED, "sign-in required");
    r.problems.push(problem.into());
    r
}

/// The stored quarantine message with the fix, without repeating the fix when the message
/// (written by this plugin) already ends with it.
fn stored_problem(message: &str) -> String {
    let message = message.trim();
    if message.is_empty() {
        format!("the login was revoked or expired. {SIGN_IN_AGAIN}")
    } else if message.contains(SIGN_IN_COMMAND) {
        message.to_string()
    } else {
        format!("{message} {SIGN_IN_AGAIN}")
    }
}

/// The time left on a token as the host writes durations, with "under 1 min" for the last
/// minute (a count of seconds would be stale by the time it is read).
fn remaining(ms: i64) -> String {
    if ms < 60_000 {
        return "under 1 min".to_string();
    }
    hermes_plugin_sdk::duration::human(ms)
}
