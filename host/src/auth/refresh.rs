//! Turning a stored login into a usable token: the refresh coordinator.
//!
//! * **Fast path**: a token resolved earlier in this process and not yet due is returned from
//!   memory without touching the disk (an `Arc` clone under an uncontended mutex).
//! * **Single flight**: when the provider says a refresh is due, take the in-process mutex and
//!   then the provider's refresh lock (`auth.refresh.<provider>.lock`), *re-read* the store,
//!   and refresh only if the credential is still due. Any number of threads and processes
//!   racing on one expiring rotating refresh token therefore make exactly one refresh
//!   request, and all of them get the new token. Waiters wait for the holder's answer (it
//!   may take up to [`crate::services::REFRESH_DEADLINE`]) and say on stderr what they wait
//!   for; a holder that dies releases the lock at once.
//! * **Never abandon a sent refresh**: the request runs in a
//!   [`crate::services::RefreshScope`], so it gets the long refresh deadline whatever the
//!   interactive timeout is. The store's lock (`auth.lock`) is taken only to re-read and to
//!   save the answer, never across the network call, so one provider's slow refresh does not
//!   hold up another provider's token.
//! * **In a worker**: the `hermes` binary runs the locked part of a refresh in a worker process
//!   of its own (see [`super::worker`]), so a kill or Ctrl-C of the command that needed the
//!   token never abandons a refresh that was sent.
//! * **Quarantine**: a terminal refresh error (`relogin_required`) clears the login's tokens
//!   and records the error; the next use fails fast with no network call. Transient errors
//!   never quarantine: the old token is used while it still works.
//! * **401 recovery**: [`TokenSource::after_unauthorized`] refreshes once even if the expiry
//!   says the token is fine, unless another caller already replaced the rejected token.

use std::sync::{Arc, Mutex};

use abi_stable::std_types::{RBox, Tuple2};
use hermes_plugin_api::{auth_scheme, Credential, RuntimeCredential_TO};

use super::pool::{EntryView, Slot};
use super::store::Store;
use super::worker;
use super::AuthError;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::plugins::runtime::Provider;
use crate::plugins::{boundary, deadline};
use crate::secret::Secret;

/// A token ready for a request.
#[derive(Debug)]
pub struct Resolved {
    /// The secret to present.
    pub token: Secret,
    /// Expiry, unix ms (0: none).
    pub expires_at_ms: i64,
    /// Base URL of the inference API.
    pub base_url: String,
    /// How to present the token.
    pub auth_scheme: u32,
    /// Extra headers for every request.
    pub extra_headers: Vec<(String, String)>,
    /// The pool entry used.
    pub entry_id: String,
    /// Its label or source.
    pub entry_name: String,
    /// Why this entry was chosen.
    pub reason: String,
    /// Whether this resolution refreshed the token.
    pub refreshed: bool,
}

impl Resolved {
    fn fresh_at(&self, now_ms: i64, skew_ms: i64) -> bool {
        self.expires_at_ms == 0 || self.expires_at_ms - skew_ms > now_ms
    }
    /// The header that carries the token: (name, value).
    pub fn auth_header(&self) -> std::result::Result<(&'static str, String), String> {
        match self.auth_scheme {
            auth_scheme::BEARER => Ok(("authorization", format!("Bearer {}", self.token.expose()))),
            auth_scheme::X_API_KEY => Ok(("x-api-key", self.token.expose().to_string())),
            other => Err(format!(
                "the plugin asks for auth scheme {other}, which this hermes does not know"
            )),
        }
    }
}

/// Tokens of one provider login, resolved on demand.
pub struct TokenSource {
    store: Store,
    provider: Arc<Provider>,
    account: Option<String>,
    account_reason: String,
    skew_ms: i64,
    cache: Mutex<Option<Arc<Resolved>>>,
    flight: Mutex<()>,
    fallback_said: std::sync::atomic::AtomicBool,
    out: Output,
    clock: crate::timefmt::Clock,
}

impl TokenSource {
    /// A source for `provider`, using `account` (an entry's number, id or label) when given.
    /// `account_reason` says where the account choice came from, for `-v` and `status`.
    pub fn new(
        store: Store,
        provider: Arc<Provider>,
        account: Option<String>,
        account_reason: &str,
        out: Output,
    ) -> TokenSource {
        let skew_ms = i64::try_from(provider.desc.refresh_skew_ms).unwrap_or(60_000);
        TokenSource {
            store,
            clock: provider.time.clock.clone(),
            provider,
            account,
            account_reason: account_reason.to_string(),
            skew_ms,
            cache: Mutex::new(None),
            flight: Mutex::new(()),
            fallback_said: std::sync::atomic::AtomicBool::new(false),
            out,
        }
    }

    /// Use `clock` instead of the system clock (give the provider's services the same one).
    pub fn with_clock(mut self, clock: crate::timefmt::Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// A token from memory if one is known and not due. Never blocks on I/O.
    pub fn cached(&self) -> Option<Arc<Resolved>> {
        let guard = self.cache.lock().ok()?;
        let c = guard.as_ref()?;
        c.fresh_at(self.now(), self.skew_ms).then(|| Arc::clone(c))
    }

    /// A usable token: from memory, from the store, or refreshed.
    pub fn token(&self) -> Result<Arc<Resolved>> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        self.resolve(None)
    }

    /// After the API rejected `rejected` with a 401: refresh once, unless someone already
    /// replaced that token.
    pub fn after_unauthorized(&self, rejected: &Resolved) -> Result<Arc<Resolved>> {
        self.resolve(Some(&rejected.token))
    }

    fn not_logged_in(&self) -> Error {
        let d = &self.provider.desc;
        AuthError::NotSignedIn {
            provider: d.display_name.clone(),
            login: d.login_command(),
        }
        .into()
    }

    fn relogin(&self, e: &EntryView) -> Error {
        let d = &self.provider.desc;
        AuthError::ReloginRequired {
            provider: d.display_name.clone(),
            account: e.name().to_string(),
            why: e.last_error.as_ref().map(|le| le.message.clone()),
            login: d.login_command(),
        }
        .into()
    }

    fn pick(&self, entries: &[EntryView]) -> Result<(EntryView, String)> {
        let d = &self.provider.desc;
        let choice = super::choice::AccountChoice {
            key: self.account.clone(),
            source: self.account_reason.clone(),
        };
        let chosen = super::choice::choose(&d.display_name, &d.id, entries, &choice)?
            .ok_or_else(|| self.not_logged_in())?;
        if let Some(note) = &chosen.fallback {
            if !self
                .fallback_said
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                self.out.warn(note);
            }
        }
        Ok((chosen.entry, chosen.reason))
    }

    /// Without a usable cached token: read the store, choose the login, and refresh it when
    /// it is due or was `rejected`, one thread and one process at a time.
    fn resolve(&self, rejected: Option<&Secret>) -> Result<Arc<Resolved>> {
        let _flight = self.flight.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread may have finished the work while we waited.
        if let Some(c) = self.cache.lock().ok().and_then(|g| g.clone()) {
            let replaced = rejected.is_some_and(|r| c.token != *r);
            if replaced || (rejected.is_none() && c.fresh_at(self.now(), self.skew_ms)) {
                return Ok(c);
            }
        }
        let id = &self.provider.desc.id;
        if self.provider.handle.runtime.is_none() {
            return Err(AuthError::NoRuntime { id: id.clone() }.into());
        }
        let file = self.store.read()?;
        let entries = file.entries(id);
        let (entry, reason) = self.pick(&entries)?;
        if entry.credential.access_token.is_empty() && entry.credential.refresh_token.is_empty() {
            return Err(self.relogin_or_absent(&entry));
        }
        if !self.due(&entry.credential, rejected.map(Secret::expose))? {
            return self.finish(&entry, entry.credential.clone(), &reason, false);
        }

        let step = match worker::exe() {
            Some(exe) => self.refresh_in_worker(exe, &entry, rejected)?,
            None => self.refresh_slot(&entry.slot, entry.name(), rejected.map(Secret::expose))?,
        };
        match step {
            Step::Stored { cred, refreshed } => self.finish(&entry, cred, &reason, refreshed),
            Step::Transient { message } => {
                let c = &entry.credential;
                let still_valid = !c.access_token.is_empty()
                    && (c.expires_at_ms == 0 || c.expires_at_ms > self.now());
                if rejected.is_none() && still_valid {
                    self.out.warn(&format!(
                        "could not refresh the {id} token ({}); using the current one while it lasts",
                        message
                    ));
                    return self.finish(&entry, c.clone(), &reason, false);
                }
                Err(AuthError::Transient { message }.into())
            }
        }
    }

    /// Whether `c` needs a refresh: it is the token the API `rejected`, or (nothing rejected)
    /// the provider says it is due.
    fn due(&self, c: &Credential, rejected: Option<&str>) -> Result<bool> {
        match rejected {
            Some(r) => Ok(c.access_token.as_str() == r),
            None => Ok(c.access_token.is_empty() || {
                let (c, now) = (c.clone(), self.now());
                self.plugin_call(
                    "RuntimeCredential::needs_refresh",
                    deadline::LOCAL,
                    move |rt| rt.needs_refresh(&c, now),
                )?
            }),
        }
    }

    /// The refresh in a worker process (see [`worker`]): the worker runs
    /// [`TokenSource::refresh_slot`] and says how it ended; the credential is then read from
    /// the store, where the worker left it.
    fn refresh_in_worker(
        &self,
        exe: &std::path::Path,
        entry: &EntryView,
        rejected: Option<&Secret>,
    ) -> Result<Step> {
        let request = worker::Request {
            provider: self.provider.desc.id.clone(),
            slot: entry.slot.clone(),
            name: entry.name().to_string(),
            rejected: rejected.cloned(),
            verbose: self.out.verbose(),
            quiet: self.out.is_quiet(),
        };
        let child = match worker::start(exe, &self.store.paths().home, &request) {
            Ok(child) => child,
            Err(e) => {
                self.out.log(
                    1,
                    &format!("cannot start a refresh worker ({e}); refreshing in this process"),
                );
                return self.refresh_slot(&entry.slot, entry.name(), rejected.map(Secret::expose));
            }
        };
        match worker::finish(child, self.store.paths().lock_timeout)? {
            worker::Outcome::Stored { refreshed } => {
                let file = self.store.read()?;
                let cred = file
                    .credential(&self.provider.desc.id, &entry.slot)
                    .ok_or_else(|| self.not_logged_in())?;
                Ok(Step::Stored { cred, refreshed })
            }
            worker::Outcome::Transient { message } => Ok(Step::Transient { message }),
            worker::Outcome::Failed { error } => Err(error.into()),
        }
    }

    /// The worker's side of [`TokenSource::refresh_in_worker`]: refresh the login `request`
    /// names here and say how it ended.
    pub fn refresh_for_worker(&self, request: &worker::Request) -> Result<worker::Outcome> {
        let rejected = request.rejected.as_ref().map(Secret::expose);
        Ok(
            match self.refresh_slot(&request.slot, &request.name, rejected)? {
                Step::Stored { refreshed, .. } => worker::Outcome::Stored { refreshed },
                Step::Transient { message } => worker::Outcome::Transient { message },
            },
        )
    }

    /// The refresh itself, in this process: take the provider's single-flight lock, re-read
    /// the store, and refresh the login in `slot` (called `name`) if it is still due (or still
    /// holds the `rejected` token). The answer reaches the journal first, then the store.
    fn refresh_slot(&self, slot: &Slot, name: &str, rejected: Option<&str>) -> Result<Step> {
        let id = &self.provider.desc.id;

        // One refresh per provider at a time, across processes: the others wait here for its
        // answer (and then find the token fresh). The store's own lock is not held while the
        // request is in flight, so other providers' tokens are never held up by this one.
        let what = format!("the {id} token ({name})");
        let flight = self.store.refresh_lock(id, |holder| {
            let who = if holder.is_empty() {
                "another hermes process".to_string()
            } else {
                holder.to_string()
            };
            self.out
                .info(&format!("waiting for {who} to finish refreshing {what}…"));
        })?;
        flight.note(&format!(
            "process {} (refreshing {what})",
            std::process::id()
        ));
        // Re-read under the store's lock, which also finishes a write a killed process left
        // half done: the token may have been refreshed while we waited.
        let (file, journal) = self.store.lock()?.read_with_journal()?;
        let entries = file.entries(id);
        let Some(entry) = entries.iter().find(|e| e.slot == *slot).cloned() else {
            return Err(self.not_logged_in());
        };
        if !entry.usable() {
            return Err(self.relogin_or_absent(&entry));
        }
        if !self.due(&entry.credential, rejected)? {
            return Ok(Step::Stored {
                cred: entry.credential,
                refreshed: false,
            });
        }
        self.out.log(1, &format!("refreshing {what}"));
        // What the plugin returns is bounded, and what the server says is never stored or
        // printed with a token in it.
        let secrets = [
            entry.credential.access_token.to_string(),
            entry.credential.refresh_token.to_string(),
        ];
        let cred = entry.credential.clone();
        // The server rotates the pair when it answers, and the answer is then the only copy
        // of the new refresh token: it goes into the journal (made before the request, built
        // on the store as read above) on this very thread, before any lock, re-read or
        // hand-over. A kill from then on is recovered by the next command.
        let pending = journal.map(|j| (j, file.clone(), id.clone(), entry.slot.clone()));
        let (answer, journal) =
            self.plugin_call("RuntimeCredential::refresh", deadline::NETWORK, move |rt| {
                // The plugin's requests run on this thread: they get the refresh deadline.
                let _scope = crate::services::RefreshScope::enter();
                let answer = rt.refresh(&cred);
                let journal = pending.map(|(mut journal, mut base, id, slot)| {
                    if let abi_stable::std_types::RResult::ROk(new) = &answer {
                        if let Ok(new) = boundary::credential(new.clone()) {
                            if base.update_credential(&id, &slot, &new).is_ok() {
                                journal.record(base);
                            }
                        }
                    }
                    journal
                });
                (answer, journal)
            })?;
        let answer = answer
            .into_result()
            .map_err(|mut e| {
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                e.message = crate::secret::redact(&e.message, &secrets).into();
                boundary::error(e)
            })
            .and_then(boundary::credential);
        // Whatever the answer, the store is changed under its lock against a fresh read, and
        // only if the login still holds the refresh token that was presented (a sign-in may
        // have replaced it meanwhile).
        let presented = entry.credential.refresh_token.to_string();
        let still_ours = |f: &super::store::AuthFile| {
            f.entries(id)
                .iter()
                .any(|e| e.slot == entry.slot && e.credential.refresh_token.as_str() == presented)
        };
        match answer {
            Ok(new) => {
                // The journal holds the new pair already; make it the store if nothing else
                // was written meanwhile, or else apply the change to what is there now.
                let locked = self.store.lock()?;
                let mut file = locked.read()?;
                if still_ours(&file) {
                    match journal.map(|j| locked.commit(j)).transpose()?.flatten() {
                        Some(committed) => file = committed,
                        None => {
                            file.update_credential(id, &entry.slot, &new)?;
                            locked.write(&mut file)?;
                        }
                    }
                }
                drop(locked);
                drop(flight);
                // Use it as stored: the plugin's own keys only, whatever it returned.
                let stored = file.credential(id, &entry.slot).unwrap_or(new);
                Ok(Step::Stored {
                    cred: stored,
                    refreshed: true,
                })
            }
            Err(e) if e.relogin_required => {
                let locked = self.store.lock()?;
                let mut file = locked.read()?;
                if still_ours(&file) {
                    file.quarantine(id, &entry.slot, &e, self.now());
                    locked.write(&mut file)?;
                }
                Err(AuthError::RefreshRejected {
                    provider: self.provider.desc.display_name.clone(),
                    message: e.message.to_string(),
                    login: self.provider.desc.login_command(),
                }
                .into())
            }
            Err(e) if !e.is_transient() => {
                // Terminal but not a dead login (say, a key the server refuses): nothing to
                // quarantine and nothing to retry; the stored credential stays as it is.
                Err(AuthError::CredentialRefused {
                    message: e.message.to_string(),
                    login: self.provider.desc.login_command(),
                }
                .into())
            }
            Err(e) => {
                // Best effort: the note is for doctor; failing to write it changes nothing else.
                if let Ok(locked) = self.store.lock() {
                    if let Ok(mut file) = locked.read() {
                        if still_ours(&file) {
                            file.note_transient_failure(id, &entry.slot, &e, self.now());
                            let _ = locked.write(&mut file);
                        }
                    }
                }
                Ok(Step::Transient {
                    message: e.message.to_string(),
                })
            }
        }
    }

    /// Call the provider's runtime capability on a thread of its own, within the deadline
    /// for calls of this kind; on expiry the error names the plugin and the call.
    fn plugin_call<T: Send + 'static>(
        &self,
        call: &str,
        kind: std::time::Duration,
        f: impl FnOnce(&RuntimeCredential_TO<'static, RBox<()>>) -> T + Send + 'static,
    ) -> Result<T> {
        let p = Arc::clone(&self.provider);
        deadline::call(deadline::of(kind), None, move || {
            p.handle.runtime.as_ref().into_option().map(f)
        })
        .map_err(|s| s.error(&self.provider.plugin_id, call))?
        .ok_or_else(|| {
            AuthError::NoRuntime {
                id: self.provider.desc.id.clone(),
            }
            .into()
        })
    }

    fn relogin_or_absent(&self, e: &EntryView) -> Error {
        if e.last_error.is_some() {
            self.relogin(e)
        } else {
            self.not_logged_in()
        }
    }

    fn finish(
        &self,
        entry: &EntryView,
        cred: Credential,
        reason: &str,
        refreshed: bool,
    ) -> Result<Arc<Resolved>> {
        let c = cred.clone();
        let runtime = match self
            .plugin_call("RuntimeCredential::runtime", deadline::LOCAL, move |rt| {
                rt.runtime(&c)
            })?
            .into_result()
            .map_err(boundary::error)
            .and_then(boundary::runtime)
        {
            Ok(r) => r,
            Err(e) if e.relogin_required => return Err(self.relogin(entry)),
            Err(e) => {
                return Err(AuthError::Runtime {
                    provider: self.provider.desc.display_name.clone(),
                    message: e.message.to_string(),
                }
                .into())
            }
        };
        let resolved = Arc::new(Resolved {
            token: Secret::new(runtime.secret.as_str()),
            expires_at_ms: cred.expires_at_ms,
            base_url: runtime.base_url.to_string(),
            auth_scheme: runtime.auth_scheme,
            extra_headers: runtime
                .extra_headers
                .iter()
                .map(|Tuple2(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            entry_id: entry.id.clone(),
            entry_name: entry.name().to_string(),
            reason: reason.to_string(),
            refreshed,
        });
        if let Ok(mut g) = self.cache.lock() {
            *g = Some(Arc::clone(&resolved));
        }
        Ok(resolved)
    }
}

/// How a refresh that was due ended (errors aside).
enum Step {
    /// The store holds this credential for the login: refreshed now, or found fresh after
    /// waiting for another process's refresh.
    Stored { cred: Credential, refreshed: bool },
    /// The refresh failed in a way that may pass; the login is kept as it was.
    Transient { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_resolved_token_is_masked() {
        let r = Resolved {
            token: Secret::new("mm-at-SECRETSECRETSECRET-9f3a"),
            expires_at_ms: 1,
            base_url: "https://api.minimax.io/anthropic".into(),
            auth_scheme: auth_scheme::BEARER,
            extra_headers: vec![("anthropic-version".into(), "2023-06-01".into())],
            entry_id: "abc123".into(),
            entry_name: "oauth".into(),
            reason: "the only login".into(),
            refreshed: false,
        };
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("SECRETSECRET"), "{dbg}");
        assert!(dbg.contains("mm-…9f3a"), "{dbg}");
        assert_eq!(
            r.auth_header().unwrap().1,
            "Bearer mm-at-SECRETSECRETSECRET-9f3a"
        );
    }
}
