//! The trial load of `hermes plugins install` and `hermes plugins check`: a child process
//! (this binary, entered through the private `__probe-plugin` argument) loads the library and
//! runs the conformance checks on it, so that a library that crashes, hangs or exhausts memory
//! cannot take the parent down.
//!
//! - The child reports on a private pipe (its number in [`FD_ENV`]), never on its stdout: one
//!   JSON line per call before it is made ([`Msg::Step`]), then the report ([`Msg::Report`]).
//! - The parent gives each call a deadline ([`super::deadline::LOCAL`], or
//!   `HERMES_PLUGIN_TIMEOUT_MS`) and names the call a hang or crash happened in; a library
//!   that hung or crashed still gets a report (the `load` check fails with that line), so
//!   `plugins check --json` always prints JSON.
//! - The child limits its address space ([`MEMORY_LIMIT_MB`], `HERMES_PROBE_MEMORY_MB`) before
//!   loading: a library that allocates without bound fails its allocation and the probe
//!   reports the crash instead of the machine swapping.
//! - The child's fd 1 is a pipe of its own, looked at after every call: a library that writes
//!   to stdout, or closes or replaces fd 1, fails the `stdout` check with a finding naming the
//!   call ("wrote to stdout during describe()").

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::check::{self as checks, CheckLine};
use super::confine::Identity;
use super::descriptor::{self, PluginDesc};
use super::loader::{self, Layout};
use crate::error::{Error, Result};

/// The private argument that makes `hermes` a probe child.
pub const PROBE_ARG: &str = "__probe-plugin";
/// The environment variable that carries the number of the report pipe to the child.
pub const FD_ENV: &str = "HERMES_PROBE_FD";
/// The environment variable that sets the child's address-space limit, MiB.
pub const MEMORY_ENV: &str = "HERMES_PROBE_MEMORY_MB";
/// The child's address-space limit by default, MiB (`RLIMIT_AS`): far above what any plugin
/// needs to load and answer, far below what the machine can give.
pub const MEMORY_LIMIT_MB: u64 = 4096;
/// Name of the check on stdout.
pub const STDOUT_CHECK: &str = "stdout";
/// Its title.
pub const STDOUT_TITLE: &str = "leaves stdout to hermes (writes nothing to it, never closes it)";
/// The call announced before the library is loaded and described.
pub const LOAD_CALL: &str = "describe()";
/// Longest report line read from the child.
const MAX_REPORT: u64 = 16 << 20;

/// What a trial load reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Loaded and described.
    pub ok: bool,
    /// Interface version, when read.
    pub api_version: Option<String>,
    /// Descriptor, when loaded.
    pub desc: Option<PluginDesc>,
    /// `ok`, `incompatible` or `failed to load`.
    pub status: String,
    /// One line.
    pub error: Option<String>,
    /// The long report (layout errors).
    pub detail: Option<String>,
    /// Descriptor problems.
    #[serde(default)]
    pub problems: Vec<String>,
    /// The conformance checks (`load` first), run in the child on a library that loaded.
    #[serde(default)]
    pub checks: Vec<CheckLine>,
    /// The file the child opened and loaded.
    #[serde(default)]
    pub identity: Option<Identity>,
}

impl ProbeReport {
    /// The failed checks' findings, each prefixed with its check's name.
    pub fn check_failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.failed())
            .flat_map(|c| c.findings.iter().map(move |f| format!("{}: {f}", c.name)))
            .collect()
    }

    /// The report of a library that did not finish its trial load: `error` says why.
    pub fn failed(error: String) -> ProbeReport {
        ProbeReport {
            ok: false,
            api_version: None,
            desc: None,
            status: "failed to load".into(),
            checks: checks::not_loaded(&error),
            error: Some(error),
            detail: None,
            problems: Vec::new(),
            identity: None,
        }
    }
}

/// One line on the report pipe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum Msg {
    /// About to make `call`.
    Step { call: String },
    /// The whole report.
    Report { report: Box<ProbeReport> },
}

/// The child: limit memory, watch fd 1, load `path`, run the checks, and write every step and
/// the report to the pipe named in [`FD_ENV`]. Returns the exit code.
pub fn child(path: &Path) -> u8 {
    let Some(fd) = std::env::var(FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2)
    else {
        return 2;
    };
    // SAFETY: the parent passed this descriptor, open and ours alone, for this purpose.
    let pipe = Arc::new(ReportPipe(unsafe { OwnedFd::from_raw_fd(fd) }));
    limit_memory(memory_limit_mb());
    let watch = Arc::new(Mutex::new(StdoutWatch::new()));
    let step = {
        let (pipe, watch) = (Arc::clone(&pipe), Arc::clone(&watch));
        move |call: &str| {
            lock(&watch).after_call();
            lock(&watch).current = call.to_string();
            pipe.send(&Msg::Step { call: call.into() });
        }
    };
    step(LOAD_CALL);
    let mut report = probe(path, Box::new(step.clone()));
    let mut watch = lock(&watch);
    watch.after_call();
    report.checks.push(watch.line());
    let ok = report.ok;
    pipe.send(&Msg::Report {
        report: Box::new(report),
    });
    if ok {
        0
    } else {
        1
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Load `path`, describe it and run the conformance checks on it; `step` hears each call
/// before it is made.
pub fn probe(path: &Path, step: Box<dyn Fn(&str) + Send + Sync>) -> ProbeReport {
    let opened = std::fs::File::open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => loader::LoadError::Missing(path.to_path_buf()),
            _ => loader::LoadError::NotALibrary(format!("{}: {e}", path.display())),
        })
        .map(|f| {
            let id = Identity::of(&f).ok();
            (f, id)
        });
    let identity = opened.as_ref().ok().and_then(|(_, id)| *id);
    let mut report = match opened.and_then(|(f, _)| loader::load_file(f, path, Layout::Check)) {
        Ok(p) => ProbeReport {
            ok: true,
            api_version: Some(p.api_version.clone()),
            problems: p.problems.clone(),
            checks: checks::run(p.module, step),
            desc: Some(p.desc),
            status: "ok".into(),
            error: None,
            detail: None,
            identity: None,
        },
        Err(e) => ProbeReport {
            ok: false,
            api_version: None,
            desc: None,
            status: e.status().into(),
            detail: e.detail().map(String::from),
            checks: checks::not_loaded(&e.to_string()),
            error: Some(e.to_string()),
            problems: Vec::new(),
            identity: None,
        },
    };
    report.identity = identity;
    report
}

/// The write end of the report pipe.
struct ReportPipe(OwnedFd);

impl ReportPipe {
    fn send(&self, msg: &Msg) {
        let Ok(mut line) = serde_json::to_vec(msg) else {
            return;
        };
        line.push(b'\n');
        let mut rest = line.as_slice();
        while !rest.is_empty() {
            // SAFETY: writes from a valid slice to a descriptor this struct owns.
            let n = unsafe { libc::write(self.0.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                return;
            }
            rest = &rest[n as usize..];
        }
    }
}

/// The limit in force: [`MEMORY_ENV`] if set to a number, else [`MEMORY_LIMIT_MB`].
fn memory_limit_mb() -> u64 {
    std::env::var(MEMORY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|mb| *mb > 0)
        .unwrap_or(MEMORY_LIMIT_MB)
}

/// Limit this process's address space to `mb` MiB (`RLIMIT_AS`); best effort.
fn limit_memory(mb: u64) {
    let bytes = mb.saturating_mul(1 << 20) as libc::rlim_t;
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct passed by reference.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &limit);
    }
}

/// fd 1 of the probe child: a pipe of its own whose read end is looked at after each call.
struct StdoutWatch {
    read: Option<OwnedFd>,
    write: Option<OwnedFd>,
    /// Inode of the pipe, to tell it from whatever a library put at fd 1.
    ino: u64,
    /// The call being made.
    current: String,
    findings: Vec<String>,
}

fn inode(fd: RawFd) -> Option<u64> {
    // SAFETY: fstat fills the struct; a closed descriptor only makes it fail.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_ino)
}

impl StdoutWatch {
    fn new() -> StdoutWatch {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills two descriptors; both ends are non-blocking, so a library that
        // writes more than the pipe holds gets an error instead of hanging the probe.
        let made =
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == 0;
        let mut w = StdoutWatch {
            read: None,
            write: None,
            ino: 0,
            current: String::new(),
            findings: Vec::new(),
        };
        if made {
            // SAFETY: both descriptors were just created and are owned here.
            unsafe {
                w.read = Some(OwnedFd::from_raw_fd(fds[0]));
                w.write = Some(OwnedFd::from_raw_fd(fds[1]));
            }
            w.ino = inode(fds[1]).unwrap_or(0);
            w.point_fd1();
        }
        w
    }

    fn point_fd1(&self) {
        if let Some(wr) = &self.write {
            // SAFETY: dup2 onto fd 1; the copy is not close-on-exec, which does not matter here.
            unsafe { libc::dup2(wr.as_raw_fd(), 1) };
        }
    }

    /// Look at fd 1 after the current call: what was written, whether it was closed.
    fn after_call(&mut self) {
        let Some(rd) = &self.read else { return };
        let call = if self.current.is_empty() {
            "loading"
        } else {
            self.current.as_str()
        };
        let mut written = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a valid buffer from a non-blocking descriptor owned here.
            let n = unsafe { libc::read(rd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            if written.len() < 400 {
                written.extend_from_slice(&buf[..n as usize]);
            }
        }
        let mut found = Vec::new();
        if !written.is_empty() {
            found.push(format!(
                "wrote to stdout during {}: {:?} (stdout belongs to hermes: a plugin's output there would corrupt `--json` and the token `hermes auth token` prints; log through the host instead)",
                descriptor::clip(call),
                crate::text::line(&String::from_utf8_lossy(&written), 80)
            ));
        }
        if inode(1) != Some(self.ino) {
            found.push(format!(
                "closed or replaced stdout (fd 1) during {} (a plugin must leave the process's descriptors alone)",
                descriptor::clip(call)
            ));
            self.point_fd1();
        }
        self.findings.extend(found);
    }

    fn line(&self) -> CheckLine {
        CheckLine {
            name: STDOUT_CHECK.into(),
            title: STDOUT_TITLE.into(),
            outcome: if self.findings.is_empty() {
                "pass"
            } else {
                "fail"
            }
            .into(),
            findings: self.findings.clone(),
            warnings: Vec::new(),
        }
    }
}

/// Trial-load `path` in a child process so that a crashing, hanging or memory-hungry library
/// cannot take this one down. Always a report, unless the child cannot be started.
pub fn in_child(path: &Path) -> Result<ProbeReport> {
    let exe =
        crate::fsutil::own_binary().map_err(|e| Error::io("cannot find the hermes binary", e))?;
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two descriptors, both close-on-exec.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io(
            "cannot start the trial load",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let child_end = write.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg(PROBE_ARG)
        .arg(path)
        .env(FD_ENV, child_end.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec: the
        // report pipe's write end is kept open across exec in the child alone.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(child_end, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("cannot start the trial load", e))?;
    drop(write);
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(std::fs::File::from(read));
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut reader).take(MAX_REPORT).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let Ok(msg) = serde_json::from_slice::<Msg>(&line) else {
                return;
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    let deadline = super::deadline::of(super::deadline::LOCAL);
    let mut last: Option<String> = None;
    let during = |last: &Option<String>| match last {
        Some(c) => descriptor::clip(c).to_string(),
        None => "loading".to_string(),
    };
    loop {
        match rx.recv_timeout(deadline) {
            Ok(Msg::Step { call }) => last = Some(call),
            Ok(Msg::Report { report }) => {
                let _ = child.wait();
                return Ok(*report);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(ProbeReport::failed(format!(
                    "the library did not answer within {} in {}",
                    super::supervise::seconds(deadline),
                    during(&last)
                )));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let how = ended(&mut child, deadline);
                // Loading covers the library's initialisers as well as describe().
                return Ok(ProbeReport::failed(
                    match last.as_deref().filter(|c| *c != LOAD_CALL) {
                        Some(_) => format!(
                        "the library {how} during {} (a crash the SDK's panic guard cannot catch)",
                        during(&last)
                    ),
                        None => format!(
                        "the library {how} while loading (a panic or crash in its initialisation)"
                    ),
                    },
                ));
            }
        }
    }
}

/// How a child whose report pipe closed ended.
fn ended(child: &mut std::process::Child, deadline: Duration) -> String {
    super::supervise::exit_of(child, deadline).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        format!(
            "closed the probe's report pipe and did not answer within {}",
            super::supervise::seconds(deadline)
        )
    })
}
