//! Sign-in sessions started from the dashboard, in memory only.
//!
//! Each session runs the host's device-code driver ([`login::wait_ending`], the code behind
//! `hermes auth add`) on a blocking thread and, on approval, saves with [`login::save`]: the
//! dashboard saves exactly what the CLI saves. A session lives at most
//! [`MAX_SESSION_LIFE_MS`]; after that it is cancelled and forgotten.
//!
//! Cancellation and saving race on purpose-built ground: the worker moves a session from
//! pending to saving, a cancel moves it from pending to cancelled, both under the session's
//! lock, so exactly one of them wins and a cancelled session never saves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hermes_plugin_api::Challenge;

use crate::auth::login::{self, Ending, PollFailures, PollWatch};
use crate::auth::Store;
use crate::plugins::runtime::Provider;

/// The longest a session lives, pending or finished (15 minutes).
pub const MAX_SESSION_LIFE_MS: i64 = 15 * 60 * 1000;
/// The most sessions kept at once; a start beyond it is refused until some expire or are
/// cancelled. Bounds the threads and memory a runaway page can cost.
pub const MAX_SESSIONS: usize = 32;

/// What a poll reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the user.
    Pending,
    /// Signed in and saved.
    Approved,
    /// The user (or the provider) refused.
    Denied,
    /// The code expired first.
    Expired,
    /// The provider or the store failed.
    Error,
    /// Cancelled from the dashboard (or by its shutdown); nothing was saved.
    Cancelled,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Error => "error",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Where a session is. `Saving` reads as pending: the approval is being written.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Pending,
    Saving,
    Done(Status),
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Why it failed (for denied, expired, error, cancelled) or the provider's note (approved).
    message: Option<String>,
}

/// One sign-in in progress (or recently finished).
#[derive(Debug)]
pub struct Session {
    /// Random, unguessable id.
    pub id: String,
    /// Canonical id of the provider it signs in to.
    pub provider_id: String,
    /// When it was started, unix ms.
    pub created_ms: i64,
    /// When its code stops working (capped at the session's life), unix ms.
    pub expires_at_ms: i64,
    /// The region asked for (empty: the provider's default).
    pub region: String,
    cancel: Arc<AtomicBool>,
    /// How the provider's server answered the polls so far.
    polls: PollWatch,
    inner: Mutex<Inner>,
}

/// A session's state for a poll.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub status: Status,
    /// Error message (failed sessions) or the provider's note (approved).
    pub message: Option<String>,
    /// How the provider's server answered the polls so far.
    pub polls: PollFailures,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent at every await-free step, so a panic elsewhere
    // while holding the lock leaves nothing half-written: keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Session {
    /// A new pending session for `provider_id` whose code expires at `code_expires_at_ms`.
    pub fn new(id: String, provider_id: String, now_ms: i64, code_expires_at_ms: i64) -> Session {
        Session {
            id,
            provider_id,
            region: String::new(),
            polls: PollWatch::default(),
            created_ms: now_ms,
            expires_at_ms: code_expires_at_ms.min(now_ms.saturating_add(MAX_SESSION_LIFE_MS)),
            cancel: Arc::new(AtomicBool::new(false)),
            inner: Mutex::new(Inner {
                phase: Phase::Pending,
                message: None,
            }),
        }
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        let g = lock(&self.inner);
        let status = match g.phase {
            Phase::Pending | Phase::Saving => Status::Pending,
            Phase::Done(s) => s,
        };
        Snapshot {
            status,
            message: g.message.clone(),
            polls: self.polls.get(),
        }
    }

    /// Cancel unless it already finished or is being saved; returns the state after.
    pub fn cancel(&self, why: &str) -> Snapshot {
        {
            let mut g = lock(&self.inner);
            if g.phase == Phase::Pending {
                g.phase = Phase::Done(Status::Cancelled);
                g.message = Some(why.to_string());
                self.cancel.store(true, Ordering::SeqCst);
            }
        }
        self.snapshot()
    }

    /// Claim the right to save; false when the session was cancelled first.
    fn begin_save(&self) -> bool {
        let mut g = lock(&self.inner);
        if g.phase == Phase::Pending && !self.cancel.load(Ordering::SeqCst) {
            g.phase = Phase::Saving;
            true
        } else {
            false
        }
    }

    /// Record the end, unless a cancel got there first.
    fn finish(&self, status: Status, message: Option<String>) {
        let mut g = lock(&self.inner);
        if matches!(g.phase, Phase::Pending | Phase::Saving) {
            g.phase = Phase::Done(status);
            g.message = message;
        }
    }

    /// Run the sign-in to its end: poll the provider through the host's driver, save on
    /// approval. Blocks for up to the session's life: call it on a blocking thread.
    pub fn drive(&self, provider: &std::sync::Arc<Provider>, challenge: &Challenge, store: &Store) {
        let result = login::wait_watched(
            provider,
            challenge,
            self.expires_at_ms,
            &self.cancel,
            &mut |_| {},
            &self.polls,
        );
        match result {
            Ok(approved) => {
                if !self.begin_save() {
                    return;
                }
                let note = Some(approved.message.clone()).filter(|m| !m.is_empty());
                match login::save(store, &self.provider_id, approved.credential, None) {
                    Ok(_) => self.finish(Status::Approved, note),
                    Err(e) => self.finish(Status::Error, Some(e.message().to_string())),
                }
            }
            Err(not) => {
                let mut message = not.error.message().to_string();
                let status = match not.ending {
                    Ending::Cancelled => Status::Cancelled,
                    // The page says "denied" itself: only the provider's words go with it.
                    Ending::Denied => {
                        message = not.reason.clone();
                        Status::Denied
                    }
                    Ending::Expired => Status::Expired,
                    // The session's own life ran out before the code's: to the user, the same.
                    Ending::GaveUp => {
                        message = format!(
                            "the sign-in session ended after 15 minutes{}; nothing was saved",
                            self.polls.get().clause()
                        );
                        Status::Expired
                    }
                    Ending::Failed => Status::Error,
                };
                self.finish(status, Some(message));
            }
        }
    }
}

/// Every session of one dashboard.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

/// Why a session could not be added.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Sessions {
    /// Keep `session`, first forgetting those past their life; refused when
    /// [`MAX_SESSIONS`] remain.
    pub fn insert(&self, session: Arc<Session>, now_ms: i64) -> Result<(), Full> {
        let mut map = lock(&self.map);
        purge(&mut map, now_ms);
        if map.len() >= MAX_SESSIONS {
            return Err(Full);
        }
        map.insert(session.id.clone(), session);
        Ok(())
    }

    /// Whether another session may start now.
    pub fn has_room(&self, now_ms: i64) -> bool {
        let mut map = lock(&self.map);
        purge(&mut map, now_ms);
        map.len() < MAX_SESSIONS
    }

    /// The session with this id, if it is still alive.
    pub fn get(&self, id: &str, now_ms: i64) -> Option<Arc<Session>> {
        let mut map = lock(&self.map);
        purge(&mut map, now_ms);
        map.get(id).cloned()
    }

    /// Forget sessions past their life (cancelling any still running).
    pub fn purge(&self, now_ms: i64) {
        purge(&mut lock(&self.map), now_ms);
    }

    /// Cancel every session (the dashboard is stopping).
    pub fn cancel_all(&self) {
        for s in lock(&self.map).values() {
            s.cancel("the dashboard stopped; nothing was saved");
        }
    }
}

fn purge(map: &mut HashMap<String, Arc<Session>>, now_ms: i64) {
    map.retain(|_, s| {
        let alive = now_ms < s.created_ms.saturating_add(MAX_SESSION_LIFE_MS);
        if !alive {
            s.cancel("the sign-in session ended after 15 minutes; nothing was saved");
        }
        alive
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: i64) -> Arc<Session> {
        Arc::new(Session::new("s1".into(), "p".into(), now, now + 600_000))
    }

    #[test]
    fn a_cancel_before_saving_wins_and_blocks_the_save() {
        let s = session(0);
        assert_eq!(s.cancel("stop").status, Status::Cancelled);
        assert!(!s.begin_save(), "a cancelled session never saves");
        s.finish(Status::Approved, None);
        assert_eq!(s.snapshot().status, Status::Cancelled);
    }

    #[test]
    fn a_cancel_while_saving_is_too_late() {
        let s = session(0);
        assert!(s.begin_save());
        assert_eq!(s.cancel("stop").status, Status::Pending);
        s.finish(Status::Approved, None);
        assert_eq!(s.cancel("stop").status, Status::Approved);
    }

    #[test]
    fn life_is_capped_at_15_minutes() {
        let s = Session::new("x".into(), "p".into(), 1_000, i64::MAX);
        assert_eq!(s.expires_at_ms, 1_000 + MAX_SESSION_LIFE_MS);
    }

    #[test]
    fn sessions_are_forgotten_and_cancelled_after_their_life() {
        let all = Sessions::default();
        let s = session(0);
        all.insert(Arc::clone(&s), 0).unwrap();
        assert!(all.get("s1", MAX_SESSION_LIFE_MS - 1).is_some());
        assert!(all.get("s1", MAX_SESSION_LIFE_MS).is_none());
        assert_eq!(s.snapshot().status, Status::Cancelled);
        assert!(lock(&all.map).is_empty());
    }

    #[test]
    fn at_most_max_sessions_are_kept() {
        let all = Sessions::default();
        for i in 0..MAX_SESSIONS {
            all.insert(
                Arc::new(Session::new(i.to_string(), "p".into(), 0, 600_000)),
                0,
            )
            .unwrap();
        }
        assert!(!all.has_room(0));
        let extra = Arc::new(Session::new("extra".into(), "p".into(), 0, 600_000));
        assert_eq!(all.insert(extra, 0), Err(Full));
    }
}
