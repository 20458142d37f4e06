//! The refresh worker: the `hermes` binary refreshes a token in a child process of its own
//! (this binary, entered through the private `__refresh-worker` argument, never shown in help).
//!
//! A refresh is the one moment a kill loses a login: the server rotates the pair when it
//! answers, and until the answer is on disk the process holds the only copy of the new
//! refresh token. The worker is started in a process group of its own, so Ctrl-C, a closed
//! terminal or a kill of the command that needed the token do not reach it, and it ignores
//! SIGINT, SIGHUP and SIGTERM, so a stop of every process (a service manager's, a container
//! runtime's) lets it finish: once a refresh request is sent, its answer is saved whatever
//! happens to the command. The worker takes the provider's single-flight lock itself, so other
//! processes wait for it, not for its parent. What is left is a kill of the worker itself
//! between the rotation and the journal (see [`super::store::Journal`]): about a millisecond.
//!
//! The parent writes one JSON [`Request`] on the worker's stdin (it may carry the rejected
//! token, which never goes on a command line) and reads one JSON line back: how the refresh
//! ended. The credential itself is read from the store, where the worker left it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pool::Slot;
use super::AuthError;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::secret::Secret;

/// The private argument that makes `hermes` a refresh worker.
pub const WORKER_ARG: &str = "__refresh-worker";

static EXE: OnceLock<PathBuf> = OnceLock::new();

/// Refresh through workers started from `exe` from now on. The `hermes` binary does this at
/// start; a program that uses the library without it (tests, benchmarks) refreshes in its own
/// process.
pub fn enable(exe: PathBuf) {
    let _ = EXE.set(exe);
}

/// The binary to start workers from, once [`enable`]d.
pub(super) fn exe() -> Option<&'static Path> {
    EXE.get().map(PathBuf::as_path)
}

/// How a worker's refresh ended: the one line it writes on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The store holds a usable credential for the login (refreshed now, or by another
    /// process while the worker waited).
    Stored { refreshed: bool },
    /// The refresh failed in a way that may pass; the login is kept.
    Transient { message: String },
    /// Anything else, as the error it was.
    Failed { error: Failure },
}

/// An error as it crosses the pipe: the auth layer's own errors keep their variant (a
/// gateway answers those that need a sign-in with a 401); the rest keep their words.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Auth(AuthError),
    Other {
        message: String,
        help: Option<String>,
    },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Auth(a) => Failure::Auth(a),
            e => Failure::Other {
                message: e.message(),
                help: e.help(),
            },
        }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Auth(a) => Error::Auth(a),
            Failure::Other { message, help } => Error::Other { message, help },
        }
    }
}

/// What the worker is asked to do, on its stdin.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The provider id.
    pub provider: String,
    /// The login to refresh.
    pub slot: Slot,
    /// Its name, for what the worker says while it waits.
    pub name: String,
    /// The token the API rejected, if the refresh is the answer to a 401.
    #[serde(with = "exposed")]
    pub rejected: Option<Secret>,
    /// The command's `-v` count and `--quiet`.
    pub verbose: u8,
    pub quiet: bool,
}

/// The rejected token as it crosses the pipe: the one place a [`Request`] exposes it.
mod exposed {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::secret::Secret;

    pub fn serialize<S: Serializer>(token: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        token.as_ref().map(Secret::expose).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Secret::new))
    }
}

/// Start a worker for `request`. The worker inherits stderr, where it says what it waits for
/// and, with `-v`, what it does.
pub(super) fn start(exe: &Path, home: &Path, request: &Request) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .arg0("hermes")
        .arg(WORKER_ARG)
        .env("HERMES_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Not in the command's process group: Ctrl-C and a closed terminal do not reach it.
        .process_group(0)
        .spawn()?;
    if let (Some(mut stdin), Ok(line)) = (child.stdin.take(), serde_json::to_string(request)) {
        // A worker that is already gone is reported by `finish`.
        let _ = writeln!(stdin, "{line}");
    }
    Ok(child)
}

/// Wait for the worker's answer. It waits for another process's refresh at most the refresh
/// deadline plus the store lock's timeout, then makes its own request within the refresh
/// deadline; past both (and a margin), or when it ends without an answer, the refresh is
/// reported as failed, and a worker still running is left to finish and save what it gets.
pub(super) fn finish(mut child: Child, lock_timeout: Duration) -> Result<Outcome> {
    let pid = child.id();
    let Some(stdout) = child.stdout.take() else {
        return Err(ended(pid, "has no stdout"));
    };
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut line = String::new();
        // One short JSON line; a longer one is not the worker's.
        let _ = BufReader::new(stdout.take(64 << 10)).read_line(&mut line);
        let _ = tx.send(line);
    });
    let limit = 2 * crate::services::REFRESH_DEADLINE + 2 * lock_timeout + Duration::from_secs(30);
    let line = match rx.recv_timeout(limit) {
        Ok(line) => line,
        Err(_) => {
            return Err(AuthError::Transient {
                message: format!(
                    "the token refresh (worker process {pid}) did not finish within {} s; it \
                     goes on, and saves what it gets",
                    limit.as_secs()
                ),
            }
            .into())
        }
    };
    match serde_json::from_str::<Outcome>(line.trim_end()) {
        Ok(outcome) => {
            let _ = child.wait();
            Ok(outcome)
        }
        Err(_) => Err(ended(pid, &how_it_ended(&mut child))),
    }
}

fn ended(pid: u32, how: &str) -> Error {
    Error::msg(format!(
        "the token refresh (worker process {pid}) {how} without saying how the refresh went"
    ))
    .with_help("run `hermes doctor`; run the command again with -v for details")
}

/// How a worker whose answer pipe closed ended. One still running then is left to finish: it
/// may hold an answer to save.
fn how_it_ended(child: &mut Child) -> String {
    crate::plugins::supervise::exit_of(child, Duration::from_secs(5))
        .unwrap_or_else(|| "closed its answer pipe and went on running".into())
}

/// The worker finishes what it started: SIGINT, SIGHUP and SIGTERM are ignored, so a service
/// manager or container runtime that stops every process (SIGTERM first, SIGKILL after a
/// grace period) lets the refresh save its answer. The worker ends within its own deadlines
/// (see [`finish`]), so nothing waits on it for longer than a refresh may take.
pub fn ignore_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGTERM] {
        // SAFETY: setting a signal's disposition to "ignore" installs no handler code.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

/// The worker's side: read the [`Request`] from stdin, run `refresh`, and write how it ended
/// on stdout.
pub fn serve(refresh: impl FnOnce(Request) -> Result<Outcome>) {
    let mut line = String::new();
    let _ = std::io::stdin().lock().take(64 << 10).read_line(&mut line);
    let outcome = match serde_json::from_str::<Request>(line.trim_end()) {
        Ok(request) => refresh(request),
        Err(e) => Err(Error::msg(format!(
            "the refresh worker got no request: {e}"
        ))),
    }
    .unwrap_or_else(|e| Outcome::Failed { error: e.into() });
    if let Ok(json) = serde_json::to_string(&outcome) {
        // The parent may be gone (killed mid-refresh); the store holds the answer anyway.
        Output::plain(0).result(&json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_outcomes_survive_the_pipe() {
        for (slot, rejected) in [
            (Slot::Singleton, None),
            (
                Slot::Pool("a1b2c3".into()),
                Some(Secret::new("mm-at-rejected")),
            ),
        ] {
            let request = Request {
                provider: "minimax-oauth".into(),
                slot,
                name: "work".into(),
                rejected,
                verbose: 2,
                quiet: true,
            };
            let wire = serde_json::to_string(&request).unwrap();
            assert!(!wire.contains('\n'), "{wire}");
            assert!(!format!("{request:?}").contains("mm-at-rejected"));
            assert_eq!(serde_json::from_str::<Request>(&wire).unwrap(), request);
        }
        let e = Error::from(AuthError::RefreshRejected {
            provider: "MiniMax".into(),
            message: "refresh token reused".into(),
            login: "hermes auth add minimax-oauth".into(),
        });
        let wire = serde_json::to_string(&Outcome::Failed { error: e.into() }).unwrap();
        let Outcome::Failed { error } = serde_json::from_str(&wire).unwrap() else {
            panic!("{wire}");
        };
        let back = Error::from(error);
        assert!(back.needs_sign_in(), "{back:?}");
        assert_eq!(back.to_string(), "MiniMax: refresh token reused");
        assert_eq!(
            back.help().as_deref(),
            Some("run `hermes auth add minimax-oauth`")
        );
    }
}
