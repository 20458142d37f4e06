//! Plugin calls that must run in the command's own process (loading, `provider()`, runtime
//! resolution, refresh, sign-in start and poll) run on a thread of their own, and the command
//! waits for them only so long. On expiry the command reports which plugin and call did not
//! answer and ends, which releases every lock it holds; the stuck thread ends with the process.
//! A crash in such a call still ends the process: only diagnostics run plugins in a separate
//! process (see [`super::supervise`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Deadline of a call that makes no network request (describe, provider, runtime,
/// needs_refresh).
pub const LOCAL: Duration = Duration::from_secs(10);
/// Deadline of a call that may make network requests (refresh, start, poll): room for the
/// longest request timeout a plugin may ask for, and a little more.
pub const NETWORK: Duration = Duration::from_secs(130);

static OVERRIDE: OnceLock<Duration> = OnceLock::new();

/// Use `timeout` for every plugin call of this process (`HERMES_PLUGIN_TIMEOUT_MS`).
pub fn configure(timeout: Option<Duration>) {
    if let Some(t) = timeout {
        let _ = OVERRIDE.set(t);
    }
}

/// The deadline for a call of this kind.
pub fn of(default: Duration) -> Duration {
    OVERRIDE.get().copied().unwrap_or(default)
}

/// Why a call gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The deadline passed.
    TimedOut(Duration),
    /// `cancel` was set (Ctrl-C).
    Cancelled,
    /// The thread ended without an answer.
    Lost,
}

impl Stopped {
    /// The error to report for `call` into `plugin`.
    pub fn error(self, plugin: &str, call: &str) -> Error {
        let what = match self {
            Stopped::TimedOut(d) => format!(
                "plugin {plugin} did not answer within {} in {call}; hermes stopped waiting",
                super::supervise::seconds(d)
            ),
            Stopped::Cancelled => format!("cancelled while plugin {plugin} was in {call}"),
            Stopped::Lost => format!("plugin {plugin} ended without an answer in {call}"),
        };
        super::PluginsError::NoAnswer {
            plugin: plugin.to_string(),
            message: what,
        }
        .into()
    }
}

/// Run `f` on its own thread and wait at most `timeout` for its answer, or until `cancel`
/// is set.
pub fn call<T: Send + 'static>(
    timeout: Duration,
    cancel: Option<&AtomicBool>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stopped> {
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("hermes-plugin-call".into())
        .spawn(move || {
            let v = f();
            crate::output::restore_stdio();
            let _ = tx.send(v);
        });
    if spawned.is_err() {
        return Err(Stopped::Lost);
    }
    let start = Instant::now();
    let slice = Duration::from_millis(if cancel.is_some() { 100 } else { 60_000 });
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(Stopped::TimedOut(timeout));
        }
        match rx.recv_timeout(left.min(slice)) {
            Ok(v) => return Ok(v),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Stopped::Lost),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                    return Err(Stopped::Cancelled);
                }
            }
        }
    }
}
