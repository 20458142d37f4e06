//! Supervised diagnostics: `doctor`, `status`, `auth status` and `auth list` never run a
//! plugin's code in their own process. A worker child (this binary, entered through the private
//! `__status-worker` argument, never shown in help) loads the plugins, opens their providers and
//! asks each for its status, announcing every call on its stdout before making it. The parent
//! gives each call a deadline; when the worker hangs or dies, the call it announced last is the
//! one to blame: the parent records one [`Failure`] naming the plugin and the call, and starts a
//! new worker for the plugins after it. Healthy plugins cost one process start in all.
//!
//! The worker's stdout is hermes's own duplicate (see [`crate::output`]): a plugin writing to
//! fd 1 writes to `/dev/null`, not into the report. Every string a plugin returned is clipped
//! in the worker ([`super::boundary::report`]), so a 100 MB summary never crosses the pipe.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use abi_stable::std_types::{RResult, RString};
use hermes_plugin_api::StatusReport;
use serde::{Deserialize, Serialize};

use super::manifest::{self, Record};
use super::runtime::{self, Installed};
use crate::config::Env;
use crate::output::Output;

/// The private argument that makes `hermes` a diagnostics worker.
pub const WORKER_ARG: &str = "__status-worker";

/// The call names used in messages.
pub mod call {
    /// Loading the library and `describe()`.
    pub const DESCRIBE: &str = "describe()";
    pub const PROVIDER: &str = "provider()";
    pub const STATUS: &str = "Status::status";
}

pub use super::boundary::MAX_LINE;

/// One line of the worker's report.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum Msg {
    /// About to make `call` into `plugin`.
    Step { plugin: String, call: String },
    /// `provider()` returned an error.
    ProviderFailed {
        plugin: String,
        provider: String,
        message: String,
    },
    /// A status, for the login `account` (entry id; empty: no login).
    Status {
        plugin: String,
        provider: String,
        account: String,
        report: Report,
    },
    /// The library did not load or its descriptor is invalid (clipped).
    LoadFailed { plugin: String, message: String },
    /// Every plugin was visited.
    Done,
}

/// A status report as it crosses the pipe.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Report {
    state: u32,
    region: String,
    expires_at_ms: i64,
    summary: String,
    problems: Vec<String>,
}

impl From<&StatusReport> for Report {
    fn from(r: &StatusReport) -> Report {
        let r = super::boundary::report(r);
        Report {
            state: r.state,
            region: r.region.into_string(),
            expires_at_ms: r.expires_at_ms,
            summary: r.summary.into_string(),
            problems: r.problems.into_iter().map(RString::into_string).collect(),
        }
    }
}

impl From<Report> for StatusReport {
    fn from(r: Report) -> StatusReport {
        StatusReport {
            state: r.state,
            region: r.region.into(),
            expires_at_ms: r.expires_at_ms,
            summary: r.summary.into(),
            problems: r.problems.into_iter().map(RString::from).collect(),
        }
    }
}

/// A plugin that hung or died during a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub plugin: String,
    pub version: String,
    /// The call it did not come back from ([`call`]).
    pub call: String,
    /// `crashed with signal 11`, `did not answer within 5 s`, …
    pub how: String,
}

impl Failure {
    /// The command that takes the plugin out of the way.
    pub fn fix(&self) -> String {
        format!("hermes plugins disable {}", self.plugin)
    }
    /// The one line without the fix.
    pub fn what(&self) -> String {
        format!(
            "{} {} {} in {}",
            self.plugin, self.version, self.how, self.call
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} — disable it with `{}`", self.what(), self.fix())
    }
}

/// What the workers found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Plugins that hung or died, by id.
    pub failures: BTreeMap<String, Failure>,
    /// Plugin id → why it did not load in the worker (it answered, with an error).
    pub load_errors: BTreeMap<String, String>,
    /// `(plugin, provider)` → why `provider()` failed.
    provider_errors: HashMap<(String, String), String>,
    /// `(plugin, provider, account)` → report.
    reports: HashMap<(String, String, String), Report>,
}

/// What is known about one provider's status.
#[derive(Debug)]
pub enum Outcome {
    /// The plugin answered.
    Report(StatusReport),
    /// The plugin hung or died; the line names it and the call.
    Failed(Failure),
    /// `provider()` returned an error (clipped).
    ProviderError(String),
    /// No answer for this login (it appeared after the worker read the store).
    Missing,
}

impl Outcome {
    /// The report, or the one line that replaces it: a plugin that hung, crashed or
    /// panicked is named with the call, and the fix is to disable it.
    pub fn into_report(self, plugin: &str, provider: &str) -> Result<StatusReport, String> {
        match self {
            Outcome::Report(r) => match r
                .problems
                .iter()
                .find(|p| p.contains(hermes_plugin_sdk::PANIC_PREFIX))
            {
                Some(p) => Err(format!(
                    "plugin {plugin}: {p} — disable it with `hermes plugins disable {plugin}`"
                )),
                None => Ok(r),
            },
            Outcome::Failed(f) => Err(f.to_string()),
            Outcome::ProviderError(why) => Err(format!(
                "plugin {plugin} could not open provider {provider}: {why}"
            )),
            Outcome::Missing => Err(format!(
                "no status for {provider}: its logins changed while hermes read them; run the command again"
            )),
        }
    }
}

impl Findings {
    /// The status of `provider` of `plugin` for the login with entry id `account` (`None`: no
    /// login).
    pub fn status(&self, plugin: &str, provider: &str, account: Option<&str>) -> Outcome {
        if let Some(f) = self.failures.get(plugin) {
            return Outcome::Failed(f.clone());
        }
        if let Some(e) = self
            .provider_errors
            .get(&(plugin.to_string(), provider.to_string()))
        {
            return Outcome::ProviderError(e.clone());
        }
        let key = (
            plugin.to_string(),
            provider.to_string(),
            account.unwrap_or("").to_string(),
        );
        match self.reports.get(&key) {
            Some(r) => Outcome::Report(r.clone().into()),
            None => Outcome::Missing,
        }
    }
    /// Plugins whose `describe()` hung or crashed, with the line to show (for
    /// [`runtime::PluginSet::from_records`]).
    pub fn not_describable(&self) -> BTreeMap<String, String> {
        self.failures
            .iter()
            .filter(|(_, f)| f.call == call::DESCRIBE)
            .map(|(id, f)| (id.clone(), f.to_string()))
            .collect()
    }
}

/// The plugins of a diagnostics command in `scope`: their statuses from supervised workers,
/// and the set described by the descriptors recorded at install — this process loads no
/// plugin. Records written before descriptors were recorded (or whose library is no longer
/// the recorded file) are loaded here as before, each as soon as its describe() has answered
/// in the worker, and their descriptors are then recorded.
pub fn diagnose(
    env: &Env,
    scope: runtime::Scope<'_>,
) -> crate::Result<(runtime::PluginSet, Findings)> {
    let paths = env.paths();
    let manifest = manifest::read(&paths)?;
    let tried: Vec<Result<Installed, Box<Record>>> = manifest
        .plugins
        .iter()
        .map(|r| runtime::try_describe(&paths.home, r.clone()))
        .collect();
    if !tried.iter().all(Result::is_ok) {
        return diagnose_loading(env, &manifest, scope);
    }
    let mut set = runtime::PluginSet::from_installed(tried.into_iter().flatten().collect());
    set.ignored = manifest.ignored;
    let records = runtime::in_scope(&set, scope);
    let found = statuses(env, &records, env.diagnostic_timeout(), &mut |_| {});
    let failed = found.not_describable();
    set.installed
        .retain(|i| records.iter().any(|r| r.id == i.record.id));
    for i in &mut set.installed {
        let why = failed
            .get(&i.record.id)
            .or_else(|| found.load_errors.get(&i.record.id));
        // Only over a recorded descriptor: a library this process already refused (missing,
        // unsafe) keeps that reason.
        if let (Some(why), true) = (why, i.desc().is_some() && !i.is_loaded()) {
            let why = why.strip_prefix("describe() failed: ").unwrap_or(why);
            i.loaded = Some(Err(super::loader::LoadError::Describe(why.to_string())));
            i.recorded = None;
        }
    }
    Ok((set, found))
}

/// [`diagnose`] for a plugin set that needs loading to be described.
fn diagnose_loading(
    env: &Env,
    manifest: &manifest::Manifest,
    scope: runtime::Scope<'_>,
) -> crate::Result<(runtime::PluginSet, Findings)> {
    let paths = env.paths();
    let only: Option<&str> = match scope {
        // A canonical id recorded at install time needs only its own plugin; an alias
        // needs every plugin, since conflicts decide who owns it.
        runtime::Scope::Provider(name) => manifest
            .plugins
            .iter()
            .find(|r| r.enabled && r.providers.iter().any(|p| p.eq_ignore_ascii_case(name)))
            .map(|r| r.id.as_str()),
        runtime::Scope::All => None,
    };
    let records: Vec<Record> = manifest
        .plugins
        .iter()
        .filter(|r| only.is_none_or(|id| r.id == id))
        .cloned()
        .collect();
    // Load each library here as soon as its describe() has returned in the worker, while the
    // worker goes on with the next: the two processes work side by side.
    let mut loaded: HashMap<String, Installed> = HashMap::new();
    let found = statuses(env, &records, env.diagnostic_timeout(), &mut |id| {
        if let Some(r) = records.iter().find(|r| r.id == id) {
            loaded
                .entry(id.to_string())
                .or_insert_with(|| runtime::describe_record(&paths.home, r.clone()));
        }
    });
    let failed = found.not_describable();
    let installed = records
        .into_iter()
        .map(|r| match loaded.remove(&r.id) {
            Some(i) if !failed.contains_key(&r.id) => i,
            _ => runtime::PluginSet::from_records(&paths, vec![r], &failed)
                .installed
                .remove(0),
        })
        .collect();
    let mut set = runtime::PluginSet::from_installed(installed);
    set.ignored = manifest.ignored.clone();
    set.plugin_index = paths.plugin_index.clone();
    let fills = set.fills();
    if !fills.is_empty() {
        // Best effort: the next run describes these plugins without loading them.
        let _ = manifest::try_update(&paths, |m| {
            runtime::apply_fills(m, &fills);
            Ok(())
        });
    }
    Ok((set, found))
}

/// Ask the plugins in `records` for every status, in workers, each call within `deadline`.
/// `described(id)` is called once the worker has come back from plugin `id`'s `describe()`.
pub fn statuses(
    env: &Env,
    records: &[Record],
    deadline: Duration,
    described: &mut dyn FnMut(&str),
) -> Findings {
    let mut findings = Findings::default();
    let mut remaining: Vec<&Record> = records.iter().filter(|r| r.enabled).collect();
    while !remaining.is_empty() {
        let ids: Vec<&str> = remaining.iter().map(|r| r.id.as_str()).collect();
        let (last, how) = match run_worker(env, &ids, deadline, &mut findings, described) {
            Ok(()) => break,
            Err(stop) => stop,
        };
        // Blame the call announced last; without one, the worker itself did not start, and
        // there is nobody to blame but nothing to gain from retrying either.
        let Some((plugin, call)) = last else {
            for r in remaining {
                findings.failures.insert(
                    r.id.clone(),
                    Failure {
                        plugin: r.id.clone(),
                        version: r.version.clone(),
                        call: call::DESCRIBE.into(),
                        how: format!("could not be checked ({how})"),
                    },
                );
            }
            break;
        };
        let pos = remaining.iter().position(|r| r.id == plugin);
        let Some(pos) = pos else { break };
        findings.failures.insert(
            plugin.clone(),
            Failure {
                plugin: plugin.clone(),
                version: remaining[pos].version.clone(),
                call,
                how,
            },
        );
        remaining.drain(..=pos);
    }
    findings
}

type Stop = (Option<(String, String)>, String);

/// One worker over `ids`. `Ok` when it reported `Done`; otherwise the last announced call and
/// what happened.
fn run_worker(
    env: &Env,
    ids: &[&str],
    deadline: Duration,
    findings: &mut Findings,
    described: &mut dyn FnMut(&str),
) -> Result<(), Stop> {
    let exe = crate::fsutil::own_binary()
        .map_err(|e| (None, format!("cannot find the hermes binary: {e}")))?;
    let mut child = Command::new(exe)
        .arg(WORKER_ARG)
        .args(ids)
        .env("HERMES_HOME", &env.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| (None, format!("cannot start a worker process: {e}")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            // The worker clips what it sends; a longer line is not from hermes's own code.
            match (&mut reader).take(1 << 20).read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let Ok(msg) = serde_json::from_str::<Msg>(line.trim_end()) else {
                return;
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    let mut last: Option<(String, String)> = None;
    loop {
        match rx.recv_timeout(deadline) {
            Ok(Msg::Step { plugin, call }) => {
                // Any step after a describe() means that describe() returned.
                if let Some((p, c)) = &last {
                    if c == call::DESCRIBE {
                        described(p);
                    }
                }
                last = Some((plugin, call));
            }
            Ok(Msg::ProviderFailed {
                plugin,
                provider,
                message,
            }) => {
                findings
                    .provider_errors
                    .insert((plugin, provider), crate::text::line(&message, MAX_LINE));
            }
            Ok(Msg::LoadFailed { plugin, message }) => {
                findings
                    .load_errors
                    .insert(plugin, crate::text::line(&message, MAX_LINE));
            }
            Ok(Msg::Status {
                plugin,
                provider,
                account,
                report,
            }) => {
                findings.reports.insert((plugin, provider, account), report);
            }
            Ok(Msg::Done) => {
                if let Some((p, c)) = &last {
                    if c == call::DESCRIBE {
                        described(p);
                    }
                }
                let _ = child.wait();
                return Ok(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                end(&mut child);
                return Err((last, format!("did not answer within {}", seconds(deadline))));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let how = died(&mut child, deadline);
                return Err((last, how));
            }
        }
    }
}

/// `3 s`, `1.5 s`.
pub fn seconds(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// How a worker whose report ended early ended.
fn died(child: &mut Child, deadline: Duration) -> String {
    // The pipe closed: the process is gone or about to be (a plugin may also have closed
    // the descriptor; then the deadline applies).
    exit_of(child, deadline).unwrap_or_else(|| {
        end(child);
        format!("did not answer within {}", seconds(deadline))
    })
}

/// How a child of hermes that stopped talking ended ("crashed with signal 11", "exited with
/// status 3"), once it has: `None` when it is still running after `deadline` (it may have
/// closed its pipe and gone on), for the caller to deal with.
pub fn exit_of(child: &mut Child, deadline: Duration) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => return None,
        }
    };
    Some(match (status.code(), status.signal()) {
        (_, Some(sig)) => format!("crashed with signal {sig}"),
        (Some(c), _) => format!("exited with status {c}"),
        _ => "ended abnormally".into(),
    })
}

/// The worker: visit the plugins `ids` in order, announcing each call on stdout before making
/// it, and report every status. Returns the process exit code.
pub fn worker(env: &Env, ids: &[String]) -> u8 {
    let out = Output::plain(0);
    let send = |m: &Msg| {
        if let Ok(line) = serde_json::to_string(m) {
            out.result(&line);
        }
    };
    let paths = env.paths();
    let Ok(manifest) = manifest::read(&paths) else {
        send(&Msg::Done);
        return 0;
    };
    let file = crate::auth::Store::new(&paths)
        .read()
        .unwrap_or_else(|_| crate::auth::AuthFile::empty());
    let now = crate::timefmt::now_ms();
    for id in ids {
        let Some(record) = manifest.plugins.iter().find(|r| &r.id == id) else {
            continue;
        };
        if !record.enabled {
            continue;
        }
        send(&Msg::Step {
            plugin: id.clone(),
            call: call::DESCRIBE.into(),
        });
        let installed: Installed = runtime::load_record(&paths.home, record.clone());
        let Some(plugin) = installed.usable() else {
            send(&Msg::LoadFailed {
                plugin: id.clone(),
                message: crate::text::line(&installed.reason().unwrap_or_default(), MAX_LINE),
            });
            continue;
        };
        for d in &plugin.desc.providers {
            send(&Msg::Step {
                plugin: id.clone(),
                call: call::PROVIDER.into(),
            });
            let services =
                crate::services::ProviderServices::new(d, env, Default::default(), out.clone());
            let opened = (plugin.module.provider())(d.id.as_str().into(), services.into_box());
            crate::output::restore_stdio();
            let handle = match opened {
                RResult::ROk(h) => h,
                RResult::RErr(e) => {
                    send(&Msg::ProviderFailed {
                        plugin: id.clone(),
                        provider: d.id.clone(),
                        message: crate::text::line(e.message.as_str(), MAX_LINE),
                    });
                    continue;
                }
            };
            let logins = file.entries(&d.id);
            let accounts = std::iter::once(None).chain(logins.iter().map(Some));
            for login in accounts {
                send(&Msg::Step {
                    plugin: id.clone(),
                    call: call::STATUS.into(),
                });
                let report = handle
                    .status
                    .status(login.map(|e| &e.credential).into(), now);
                crate::output::restore_stdio();
                send(&Msg::Status {
                    plugin: id.clone(),
                    provider: d.id.clone(),
                    account: login.map(|e| e.id.clone()).unwrap_or_default(),
                    report: Report::from(&report),
                });
            }
        }
    }
    send(&Msg::Done);
    0
}
