//! Plugin calls that must run in the command's own process (loading, `provider()`, runtime
//! resolution, refresh, sign-in start and poll) run on a thread other than the caller's, and
//! the command waits for them only so long. On expiry the command reports which plugin and call
//! did not answer and ends, which releases every lock it holds; the stuck thread ends with the
//! process. Call threads are kept for the next call once theirs has returned (a few idle ones
//! at most), so a call costs a channel hand-over, not a thread start; a thread whose call
//! never returns is simply never reused.
//! A crash in such a call still ends the process: only diagnostics run plugins in a separate
//! process (see [`super::supervise`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex, OnceLock, PoisonError};
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

/// A call handed to a call thread: it runs the call and gives back what hands the answer to
/// the caller, so that the thread is idle again before the caller wakes.
type Job = Box<dyn FnOnce() -> Deliver + Send>;
type Deliver = Box<dyn FnOnce() + Send>;

/// Call threads waiting for a call, each by the sender of its queue.
static IDLE: Mutex<Vec<mpsc::Sender<Job>>> = Mutex::new(Vec::new());

/// At most this many call threads wait for work; a thread finishing beyond that ends.
const MAX_IDLE: usize = 4;

/// Run `job` on an idle call thread, or on a new one. False when no thread could be started.
fn hand_over(mut job: Job) -> bool {
    loop {
        let idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let Some(queue) = idle else { break };
        match queue.send(job) {
            Ok(()) => return true,
            // That thread is gone (it panicked); try the next one.
            Err(mpsc::SendError(back)) => job = back,
        }
    }
    let (queue, jobs) = mpsc::channel::<Job>();
    let own = queue.clone();
    let spawned = std::thread::Builder::new()
        .name("hermes-plugin-call".into())
        .spawn(move || {
            while let Ok(job) = jobs.recv() {
                let deliver = job();
                let stay = {
                    let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
                    let stay = idle.len() < MAX_IDLE;
                    if stay {
                        idle.push(own.clone());
                    }
                    stay
                };
                deliver();
                if !stay {
                    return;
                }
            }
        });
    spawned.is_ok() && queue.send(job).is_ok()
}

/// Run `f` on a call thread and wait at most `timeout` for its answer, or until `cancel` is
/// set.
pub fn call<T: Send + 'static>(
    timeout: Duration,
    cancel: Option<&AtomicBool>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stopped> {
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let v = f();
        crate::output::restore_stdio();
        Box::new(move || {
            let _ = tx.send(v);
        })
    });
    if !hand_over(job) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_id() -> std::thread::ThreadId {
        std::thread::current().id()
    }

    #[test]
    fn a_returned_call_s_thread_takes_the_next_call() {
        let t = Duration::from_secs(10);
        let first = call(t, None, thread_id).unwrap();
        assert_ne!(first, thread_id(), "the call ran on the caller's thread");
        // Other tests share the idle threads, take them and leave theirs: any one of 50
        // calls in a row on a thread that an earlier one ran on is enough. Without reuse
        // every call starts a thread of its own.
        let mut seen = std::collections::HashSet::from([first]);
        let again = (0..50).any(|_| !seen.insert(call(t, None, thread_id).unwrap()));
        assert!(again, "no call thread was ever reused");
    }

    #[test]
    fn a_stuck_call_times_out_and_the_next_call_gets_another_thread() {
        let (release, stuck) = mpsc::channel::<()>();
        let held = call(Duration::from_millis(50), None, move || {
            let _ = stuck.recv();
            thread_id()
        });
        assert_eq!(held, Err(Stopped::TimedOut(Duration::from_millis(50))));
        assert_eq!(call(Duration::from_secs(10), None, || 7), Ok(7));
        drop(release);
    }

    #[test]
    fn a_panicking_call_is_lost_and_calls_go_on() {
        let lost = call(Duration::from_secs(10), None, || -> u8 { panic!("boom") });
        assert_eq!(lost, Err(Stopped::Lost));
        assert_eq!(call(Duration::from_secs(10), None, || 8), Ok(8));
    }
}
