//! The sign-in driver, shared by `hermes auth add` and the dashboard: start a flow, poll it
//! at the provider's interval until approval, denial, expiry, a deadline or cancellation, and
//! save the result exactly one way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use abi_stable::std_types::RResult;
use hermes_plugin_api::{poll_status, Challenge, Credential};

use super::pool::Slot;
use super::store::Store;
use crate::error::{Error, Result};
use crate::plugins::runtime::Provider;
use crate::timefmt::now_ms;

/// A finished sign-in.
#[derive(Debug)]
pub struct Approved {
    /// The new credential.
    pub credential: Credential,
    /// A note from the provider (may be empty).
    pub message: String,
}

/// Start a sign-in.
pub fn start(provider: &Provider, region: Option<&str>, options: &str) -> Result<Challenge> {
    let Some(flow) = provider.handle.auth_flow.as_ref().into_option() else {
        return Err(Error::msg(format!("{} has no sign-in flow", provider.desc.display_name)));
    };
    match flow.start(region.unwrap_or("").into(), options.into()) {
        RResult::ROk(c) => Ok(c),
        RResult::RErr(e) => Err(Error::msg(e.message.to_string())),
    }
}

/// What happened while waiting.
pub enum Tick {
    /// Still waiting; ms left before the deadline.
    Waiting(i64),
}

/// Poll until done. `deadline_ms` caps the wait (the challenge's own expiry also applies);
/// `cancel` stops it between polls; `tick` is called about every 100 ms.
pub fn wait(
    provider: &Provider,
    challenge: &Challenge,
    deadline_ms: i64,
    cancel: &AtomicBool,
    tick: &mut dyn FnMut(Tick),
) -> Result<Approved> {
    let Some(flow) = provider.handle.auth_flow.as_ref().into_option() else {
        return Err(Error::msg(format!("{} has no sign-in flow", provider.desc.display_name)));
    };
    let mut interval = challenge.interval_ms.max(1);
    let hard_deadline = deadline_ms.min(challenge.expires_at_ms.max(now_ms()));
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(Error::msg("sign-in cancelled; nothing was saved"));
        }
        let outcome = match flow.poll(challenge.session.as_str().into()) {
            RResult::ROk(o) => o,
            RResult::RErr(e) => return Err(Error::msg(e.message.to_string())),
        };
        if outcome.interval_ms > 0 {
            interval = outcome.interval_ms;
        }
        match outcome.status {
            poll_status::APPROVED => {
                let Some(credential) = outcome.credential.into_option() else {
                    return Err(Error::msg("the provider approved the sign-in but sent no credential"));
                };
                return Ok(Approved {
                    credential,
                    message: outcome.message.to_string(),
                });
            }
            poll_status::DENIED => {
                let why = if outcome.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", outcome.message)
                };
                return Err(Error::msg(format!("sign-in was denied{why}")));
            }
            poll_status::EXPIRED => return Err(Error::msg("the sign-in code expired before it was approved")),
            _ => {}
        }
        // Sleep the interval, but never past the deadline; the poll after the challenge's
        // deadline lets the plugin report its own timeout.
        let now = now_ms();
        if now >= deadline_ms && deadline_ms < challenge.expires_at_ms {
            return Err(Error::msg("gave up waiting for approval (--timeout reached); nothing was saved"));
        }
        let wake = (now + interval as i64).min(hard_deadline.max(now));
        while now_ms() < wake {
            if cancel.load(Ordering::SeqCst) {
                return Err(Error::msg("sign-in cancelled; nothing was saved"));
            }
            tick(Tick::Waiting(challenge.expires_at_ms.min(deadline_ms) - now_ms()));
            std::thread::sleep(Duration::from_millis(100).min(Duration::from_millis((wake - now_ms()).max(1) as u64)));
        }
        if now_ms() >= deadline_ms && deadline_ms < challenge.expires_at_ms {
            return Err(Error::msg("gave up waiting for approval (--timeout reached); nothing was saved"));
        }
    }
}

/// Where a sign-in was saved.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The slot.
    pub slot: Slot,
    /// Whether it became an extra account rather than the main login.
    pub extra_account: bool,
}

/// Save a sign-in: as the main login, or — when `label` names a new account while a main login
/// exists — as an extra account with its own tokens.
pub fn save(store: &Store, provider_id: &str, mut cred: Credential, label: Option<&str>) -> Result<Saved> {
    if let Some(l) = label {
        cred.label = l.into();
    }
    store.update(|f| {
        let entries = f.entries(provider_id);
        let main = entries.iter().find(|e| e.slot == Slot::Singleton);
        let new_account = match (label, main) {
            (Some(l), Some(m)) => m.usable() && !m.label.eq_ignore_ascii_case(l),
            _ => false,
        };
        if new_account {
            let id = f.add_account(provider_id, &cred, label.unwrap_or(""));
            Ok(Saved { slot: Slot::Pool(id), extra_account: true })
        } else {
            f.save_singleton(provider_id, &cred);
            Ok(Saved { slot: Slot::Singleton, extra_account: false })
        }
    })
}
