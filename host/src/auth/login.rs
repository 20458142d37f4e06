//! The sign-in driver, shared by `hermes auth add` and the dashboard: start a flow, poll it
//! at the provider's interval until approval, denial, expiry, a deadline or cancellation, and
//! save the result exactly one way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hermes_plugin_api::{poll_status, Challenge, Credential};

use super::pool::{self, Slot};
use super::store::Store;
use super::AuthError;
use crate::error::{Error, Result};
use crate::plugins::runtime::Provider;
use crate::plugins::{boundary, deadline};

/// A finished sign-in.
#[derive(Debug)]
pub struct Approved {
    pub credential: Credential,
    /// A note from the provider (may be empty).
    pub message: String,
}

/// Start a sign-in.
pub fn start(provider: &Arc<Provider>, region: Option<&str>, options: &str) -> Result<Challenge> {
    if provider.handle.auth_flow.is_none() {
        return Err(AuthError::NoSignInFlow {
            provider: provider.desc.display_name.clone(),
        }
        .into());
    }
    let options_copy = options.to_string();
    let (p, region, options) = (
        Arc::clone(provider),
        region.unwrap_or("").to_string(),
        options.to_string(),
    );
    let started = deadline::call(deadline::of(deadline::NETWORK), None, move || {
        p.handle
            .auth_flow
            .as_ref()
            .into_option()
            .map(|f| f.start(region.as_str().into(), options.as_str().into()))
    })
    .map_err(|s| s.error(&provider.plugin_id, "AuthFlow::start"))?
    .ok_or_else(|| AuthError::NoSignInFlow {
        provider: provider.desc.display_name.clone(),
    })?
    .into_result()
    .map_err(boundary::error)
    .and_then(boundary::challenge);
    crate::output::restore_stdio();
    // The options may carry a key (api-key flows) that a server can echo back.
    started
        .map_err(|e| AuthError::SignIn(scrub(&e.message, &json_strings(&options_copy, ""))).into())
}

/// The string values of a JSON document the host holds for a plugin (sign-in options, the
/// opaque session blob): they may be secrets (an API key, a PKCE verifier, a device code),
/// so a message that echoes one is masked. URLs and `except` (the code the user types, shown
/// anyway) are left out.
fn json_strings(doc: &str, except: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(m) => m.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match serde_json::from_str::<serde_json::Value>(doc) {
        Ok(v) => walk(&v, &mut out),
        Err(_) => out.push(doc.to_string()),
    }
    out.retain(|s| s != except && !s.starts_with("http://") && !s.starts_with("https://"));
    out
}

/// A message from a plugin or its server, with every secret the host knows masked.
fn scrub(message: &str, secrets: &[String]) -> String {
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    crate::secret::redact(message, &refs)
}

/// What happened while waiting.
pub enum Tick {
    /// Still waiting; ms left before the deadline.
    Waiting(i64),
    /// A poll failed in a way that may pass (429, 5xx, a dropped connection): still waiting,
    /// but the user should know the server is failing, not only at the end.
    ServerFailing {
        /// Polls that failed so far.
        failed: u32,
        /// Polls so far.
        polls: u32,
        /// What the last failure said.
        last: String,
    },
}

/// "the server failed 3 of 5 polls (last: …)", for the waiting line and the final error.
pub fn server_failing(failed: u32, polls: u32, last: &str) -> String {
    format!(
        "the server failed {failed} of {polls} {} (last: {})",
        if polls == 1 { "poll" } else { "polls" },
        crate::text::line(last, 200)
    )
}

/// How a sign-in that did not succeed ended: the dashboard reports it as a status, the CLI
/// only prints the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `cancel` was set.
    Cancelled,
    /// The user (or the provider) refused.
    Denied,
    /// The code expired before approval (reported by the provider, or its deadline passed).
    Expired,
    /// `deadline_ms` (shorter than the code's life) passed first.
    GaveUp,
    /// Anything else: the provider failed.
    Failed,
}

/// A sign-in that did not succeed.
#[derive(Debug)]
pub struct NotApproved {
    pub ending: Ending,
    /// What to tell the user (boxed: a sign-in's `Err` stays small).
    pub error: Box<Error>,
    /// For a denial: the provider's own words (empty when it gave none), for a display that
    /// already says "denied" in its own way.
    pub reason: String,
}

/// Poll until done. `deadline_ms` caps the wait (the challenge's own expiry also applies);
/// `cancel` stops it between polls; `tick` is called about every 100 ms with the ms left
/// before the deadline. Time is the provider's ([`Provider::time`]): its clock, and its
/// sleeper between polls.
pub fn wait(
    provider: &Arc<Provider>,
    challenge: &Challenge,
    deadline_ms: i64,
    cancel: &AtomicBool,
    tick: &mut dyn FnMut(Tick),
) -> Result<Approved> {
    wait_ending(provider, challenge, deadline_ms, cancel, tick).map_err(|n| *n.error)
}

/// How the server answered a sign-in's polls so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollFailures {
    /// Polls answered (or failed) so far.
    pub polls: u32,
    /// Of those, how many the server failed (429, 5xx, dropped).
    pub failed: u32,
    /// The last failure's message (empty when none failed).
    pub last: String,
}

impl PollFailures {
    /// What ends a sign-in's message when polls failed: `; the server failed N of M polls
    /// (last: …)`; empty when none did.
    pub fn clause(&self) -> String {
        if self.failed == 0 {
            String::new()
        } else {
            format!("; {}", server_failing(self.failed, self.polls, &self.last))
        }
    }
}

/// Where a waiting sign-in publishes its [`PollFailures`] after each poll, for a watcher
/// that shows them while it waits (the dashboard).
#[derive(Debug, Default)]
pub struct PollWatch(Mutex<PollFailures>);

impl PollWatch {
    /// The counts after the last poll.
    pub fn get(&self) -> PollFailures {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn set(&self, polls: u32, failed: u32, last: &str) {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (g.polls, g.failed) = (polls, failed);
        if g.last != last {
            g.last = last.to_string();
        }
    }
}

/// [`wait`], saying how a sign-in that did not succeed ended.
pub fn wait_ending(
    provider: &Arc<Provider>,
    challenge: &Challenge,
    deadline_ms: i64,
    cancel: &AtomicBool,
    tick: &mut dyn FnMut(Tick),
) -> std::result::Result<Approved, NotApproved> {
    let watch = PollWatch::default();
    wait_watched(provider, challenge, deadline_ms, cancel, tick, &watch)
}

/// [`wait_ending`], publishing the poll counts to `watch` after each poll.
pub fn wait_watched(
    provider: &Arc<Provider>,
    challenge: &Challenge,
    deadline_ms: i64,
    cancel: &AtomicBool,
    tick: &mut dyn FnMut(Tick),
    watch: &PollWatch,
) -> std::result::Result<Approved, NotApproved> {
    // The provider's clock (the one its plugin made the challenge's deadlines with) and its
    // sleeper: a test clock moves instead of the test waiting.
    let now_ms = || provider.time.now_ms();
    let secrets = json_strings(challenge.session.as_str(), challenge.user_code.as_str());
    let end = |ending: Ending, message: String| NotApproved {
        ending,
        error: Box::new(AuthError::SignIn(scrub(&message, &secrets)).into()),
        reason: String::new(),
    };
    if provider.handle.auth_flow.is_none() {
        return Err(end(
            Ending::Failed,
            format!("{} has no sign-in flow", provider.desc.display_name),
        ));
    }
    let mut interval = challenge.interval_ms.max(1);
    let hard_deadline = deadline_ms.min(challenge.expires_at_ms.max(now_ms()));
    // Polls the server failed (429, 5xx, dropped): said at the end, so a sign-in the user
    // approved but the server never confirmed is not reported as a plain timeout.
    let (mut polls, mut failed, mut last_failure) = (0u32, 0u32, String::new());
    let failing = |polls: u32, failed: u32, last: &str| {
        PollFailures {
            polls,
            failed,
            last: last.to_string(),
        }
        .clause()
    };
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(end(
                Ending::Cancelled,
                "sign-in cancelled; nothing was saved".into(),
            ));
        }
        let (p, session) = (Arc::clone(provider), challenge.session.clone());
        // A hanging poll is bounded by the call deadline, the --timeout deadline and Ctrl-C.
        let left = Duration::from_millis((deadline_ms - now_ms()).max(1) as u64);
        let polled = match deadline::call(
            deadline::of(deadline::NETWORK).min(left.max(Duration::from_secs(1))),
            Some(cancel),
            move || {
                p.handle
                    .auth_flow
                    .as_ref()
                    .into_option()
                    .map(|f| f.poll(session.as_str().into()))
            },
        ) {
            Ok(Some(r)) => r.into_result().map_err(boundary::error),
            Ok(None) => return Err(end(Ending::Failed, "no sign-in flow".into())),
            Err(deadline::Stopped::Cancelled) => {
                return Err(end(
                    Ending::Cancelled,
                    "sign-in cancelled; nothing was saved".into(),
                ))
            }
            Err(deadline::Stopped::TimedOut(_)) if now_ms() >= deadline_ms => {
                return Err(end(
                    Ending::GaveUp,
                    format!(
                        "gave up waiting for approval (plugin {} did not answer in AuthFlow::poll); nothing was saved",
                        provider.plugin_id
                    ),
                ))
            }
            Err(stop) => {
                return Err(NotApproved {
                    ending: Ending::Failed,
                    error: Box::new(stop.error(&provider.plugin_id, "AuthFlow::poll")),
                    reason: String::new(),
                })
            }
        };
        polls += 1;
        let outcome = match polled {
            Ok(o) => o,
            // A passing server problem (429, 5xx) must not end a sign-in the user may be
            // approving right now: keep polling; the deadline decides.
            Err(e) if e.is_transient() && now_ms() < hard_deadline => {
                failed += 1;
                last_failure = scrub(&e.message, &secrets);
                tick(Tick::ServerFailing {
                    failed,
                    polls,
                    last: last_failure.clone(),
                });
                hermes_plugin_api::PollOutcome::pending()
            }
            Err(e) => {
                // A provider that reports its own timeout does so once its code is dead.
                let ending = if now_ms() >= challenge.expires_at_ms {
                    Ending::Expired
                } else {
                    Ending::Failed
                };
                return Err(end(
                    ending,
                    format!("{}{}", e.message, failing(polls, failed, &last_failure)),
                ));
            }
        };
        watch.set(polls, failed, &last_failure);
        if outcome.interval_ms > 0 {
            interval = outcome.interval_ms;
        }
        match outcome.status {
            poll_status::APPROVED => {
                let Some(credential) = outcome.credential.into_option() else {
                    return Err(end(
                        Ending::Failed,
                        "the provider approved the sign-in but sent no credential".into(),
                    ));
                };
                let credential = match boundary::credential(credential) {
                    Ok(c) => c,
                    Err(e) => return Err(end(Ending::Failed, e.message.to_string())),
                };
                let mut known = secrets.clone();
                known.push(credential.access_token.to_string());
                known.push(credential.refresh_token.to_string());
                return Ok(Approved {
                    message: crate::text::line(
                        &scrub(&outcome.message, &known),
                        boundary::MAX_LINE,
                    ),
                    credential,
                });
            }
            poll_status::DENIED => {
                let reason = scrub(
                    &crate::text::line(&outcome.message, boundary::MAX_LINE),
                    &secrets,
                );
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                let mut not = end(Ending::Denied, format!("sign-in was denied{why}"));
                not.reason = reason;
                return Err(not);
            }
            poll_status::EXPIRED => {
                return Err(end(
                    Ending::Expired,
                    format!(
                        "the sign-in code expired before it was approved{}; nothing was saved",
                        failing(polls, failed, &last_failure)
                    ),
                ))
            }
            _ => {}
        }
        // Sleep the interval, but never past the deadline; the poll after the challenge's
        // deadline lets the plugin report its own timeout.
        let now = now_ms();
        if now >= deadline_ms && deadline_ms < challenge.expires_at_ms {
            return Err(end(
                Ending::GaveUp,
                format!(
                    "gave up waiting for approval (--timeout reached){}; nothing was saved",
                    failing(polls, failed, &last_failure)
                ),
            ));
        }
        // Still pending at the code's deadline: the provider had its poll to report its own
        // timeout, and polling on would spin without sleeping.
        if now >= hard_deadline {
            return Err(end(
                Ending::Expired,
                format!(
                    "the sign-in code expired before it was approved{}; nothing was saved",
                    failing(polls, failed, &last_failure)
                ),
            ));
        }
        let wake = (now + interval as i64).min(hard_deadline.max(now));
        while now_ms() < wake {
            if cancel.load(Ordering::SeqCst) {
                return Err(end(
                    Ending::Cancelled,
                    "sign-in cancelled; nothing was saved".into(),
                ));
            }
            tick(Tick::Waiting(
                challenge.expires_at_ms.min(deadline_ms) - now_ms(),
            ));
            (provider.time.sleep)(
                Duration::from_millis(100)
                    .min(Duration::from_millis((wake - now_ms()).max(1) as u64)),
            );
        }
        if now_ms() >= deadline_ms && deadline_ms < challenge.expires_at_ms {
            return Err(end(
                Ending::GaveUp,
                format!(
                    "gave up waiting for approval (--timeout reached){}; nothing was saved",
                    failing(polls, failed, &last_failure)
                ),
            ));
        }
    }
}

/// Where a sign-in was saved.
#[derive(Clone, Debug)]
pub struct Saved {
    pub slot: Slot,
    /// Whether it became an extra account rather than the main login.
    pub extra_account: bool,
    /// The login it replaced, when one already had this label: its name and id.
    pub replaced: Option<(String, String)>,
}

/// Save a sign-in. Labels are unique per provider: a label that names an existing login
/// replaces that login (main or extra); a new label, while a usable main login exists, adds an
/// extra account with its own tokens; anything else becomes the main login. Check the label
/// with [`pool::check_label`] before signing in.
pub fn save(
    store: &Store,
    provider_id: &str,
    mut cred: Credential,
    label: Option<&str>,
) -> Result<Saved> {
    if let Some(l) = label {
        pool::check_label(l).map_err(Error::msg)?;
        cred.label = l.into();
    }
    store.update(|f| {
        let entries = f.entries(provider_id);
        let main = entries.iter().find(|e| e.slot == Slot::Singleton);
        let same_label: Vec<&pool::EntryView> = match label {
            Some(l) => entries
                .iter()
                .filter(|e| e.label.eq_ignore_ascii_case(l))
                .collect(),
            None => Vec::new(),
        };
        let replaced = same_label
            .first()
            .map(|e| (e.name().to_string(), e.id.clone()));
        // Older versions allowed one label twice: the new sign-in replaces all of them.
        let extra = same_label
            .iter()
            .filter_map(|e| match &e.slot {
                Slot::Pool(id) => Some(id.clone()),
                Slot::Singleton => None,
            })
            .collect::<Vec<_>>();
        let replaces_main = same_label.iter().any(|e| e.slot == Slot::Singleton);
        if let (Some(l), Some(id)) = (label, extra.first()) {
            if !replaces_main {
                for dup in &extra[1..] {
                    f.remove_pool_entry(provider_id, dup);
                }
                f.replace_account(provider_id, id, &cred, l)?;
                return Ok(Saved {
                    slot: Slot::Pool(id.clone()),
                    extra_account: true,
                    replaced,
                });
            }
        }
        for dup in &extra {
            f.remove_pool_entry(provider_id, dup);
        }
        let new_account = !replaces_main && label.is_some() && main.is_some_and(|m| m.usable());
        if new_account {
            let id = f.add_account(provider_id, &cred, label.unwrap_or(""));
            Ok(Saved {
                slot: Slot::Pool(id),
                extra_account: true,
                replaced,
            })
        } else {
            f.save_singleton(provider_id, &cred);
            Ok(Saved {
                slot: Slot::Singleton,
                extra_account: false,
                replaced,
            })
        }
    })
}

/// Sign out of a provider: remove its main login and every pool entry, and unset
/// `active_provider` if it pointed there (`hermes auth logout` and the dashboard). Returns
/// whether there was anything to remove.
pub fn logout(store: &Store, provider_id: &str) -> Result<bool> {
    store.update(|f| {
        let had = f.provider_state(provider_id).is_some() || !f.pool(provider_id).is_empty();
        f.remove_provider_state(provider_id);
        f.remove_pool(provider_id);
        if f.active_provider() == Some(provider_id) {
            f.set_active_provider(None);
        }
        Ok(had)
    })
}
