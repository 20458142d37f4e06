//! The conformance checks on a built library, for `hermes plugins check` and
//! `hermes plugins install`.
//!
//! The checks themselves are the SDK's ([`hermes_plugin_sdk::check`]): the same code an
//! author runs from `cargo test` through the testkit. What the host adds is where they run —
//! in the `__probe-plugin` child, so a plugin that crashes cannot take the host down — and the
//! services they run against: [`OfflineServices`] refuses every HTTP request (nothing leaves
//! the machine while checking an untrusted library) and records what the plugin tried and
//! logged, so the checks can look for network calls and leaked secrets.

use std::sync::{Arc, Mutex, MutexGuard};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use hermes_plugin_api::{
    kind, HostBox, HostServices, HostServices_TO, HttpRequest, HttpResponse, PluginError,
    PluginModRef,
};
use hermes_plugin_sdk::check::{self, CheckHost, Outcome, Report};
use serde::{Deserialize, Serialize};

/// Name of the host's own first check: the library loads as a plugin of this interface.
pub const LOAD_CHECK: &str = "load";
pub const LOAD_TITLE: &str = "loads as a hermes plugin (interface version, ABI layout)";

/// One check's result as it crosses from the probe child to the parent (and into `--json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLine {
    /// Stable name (`load`, then plugin-api's [`check::CHECKS`]).
    pub name: String,
    /// One line for people.
    pub title: String,
    /// `pass`, `fail` or `skip`.
    pub outcome: String,
    /// What failed.
    #[serde(default)]
    pub findings: Vec<String>,
    /// Worth fixing, not a failure.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl CheckLine {
    /// Whether this check failed.
    pub fn failed(&self) -> bool {
        self.outcome == "fail"
    }
    /// The `load` line for a library that loaded, or failed to with `error`.
    pub fn load(error: Option<&str>) -> CheckLine {
        CheckLine {
            name: LOAD_CHECK.into(),
            title: LOAD_TITLE.into(),
            outcome: if error.is_some() { "fail" } else { "pass" }.into(),
            findings: error.map(|e| vec![e.to_string()]).unwrap_or_default(),
            warnings: Vec::new(),
        }
    }
    /// The line of a check that could not run because the library did not load.
    pub fn skipped(name: &str, title: &str) -> CheckLine {
        CheckLine {
            name: name.into(),
            title: title.into(),
            outcome: "skip".into(),
            findings: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Every check's line for a library that did not load: `load` failed, the rest skipped.
pub fn not_loaded(error: &str) -> Vec<CheckLine> {
    std::iter::once(CheckLine::load(Some(error)))
        .chain(check::CHECKS.iter().map(|(n, t)| CheckLine::skipped(n, t)))
        .collect()
}

/// Run plugin-api's checks on a loaded module over [`OfflineServices`]; `step` hears each call
/// before it is made.
pub fn run(module: PluginModRef, step: Box<dyn Fn(&str) + Send + Sync>) -> Vec<CheckLine> {
    let services = OfflineServices::new(step);
    let report: Report = check::run(module, &services, &[]);
    std::iter::once(CheckLine::load(None))
        .chain(report.checks.into_iter().map(|c| {
            CheckLine {
                name: c.name.into(),
                title: c.title.into(),
                outcome: match c.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "fail",
                    Outcome::Skip => "skip",
                }
                .into(),
                findings: c.findings,
                warnings: c.warnings,
            }
        }))
        .collect()
}

#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    logs: Vec<String>,
}

/// Host services that make no network call: every request is refused (and recorded), log
/// lines are recorded instead of printed, the clock is the real one and randomness is real.
#[derive(Clone)]
pub struct OfflineServices {
    seen: Arc<Mutex<Seen>>,
    step: Arc<dyn Fn(&str) + Send + Sync>,
}

impl OfflineServices {
    /// Services that report each step to `step`.
    pub fn new(step: Box<dyn Fn(&str) + Send + Sync>) -> Self {
        Self {
            seen: Arc::default(),
            step: Arc::from(step),
        }
    }
    fn seen(&self) -> MutexGuard<'_, Seen> {
        // A poisoned lock only means a panic elsewhere; the records are still usable.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The most log lines kept: a plugin that logs in a loop must not exhaust memory.
const MAX_LOG_LINES: usize = 10_000;

impl HostServices for OfflineServices {
    fn http(&self, request: HttpRequest) -> RResult<HttpResponse, PluginError> {
        let line = format!("{} {}", request.method, request.url);
        let mut seen = self.seen();
        if seen.requests.len() < MAX_LOG_LINES {
            seen.requests.push(line);
        }
        RResult::RErr(PluginError::new(
            kind::REFUSED,
            "offline",
            "hermes plugins check makes no network calls",
        ))
    }
    fn now_ms(&self) -> i64 {
        crate::timefmt::now_ms()
    }
    fn random_bytes(&self, n: u32) -> RVec<u8> {
        let mut buf = vec![0u8; (n as usize).min(1 << 20)];
        if getrandom::fill(&mut buf).is_err() {
            return RVec::new();
        }
        buf.into()
    }
    fn log(&self, _level: u32, message: RStr<'_>) {
        let mut seen = self.seen();
        if seen.logs.len() < MAX_LOG_LINES {
            seen.logs.push(message.to_string());
        }
    }
    fn config_get(&self, _key: RStr<'_>) -> ROption<RString> {
        ROption::RNone
    }
}

impl CheckHost for OfflineServices {
    fn host_box(&self) -> HostBox {
        HostServices_TO::from_value(self.clone(), TD_Opaque)
    }
    fn requests(&self) -> Vec<String> {
        self.seen().requests.clone()
    }
    fn logs(&self) -> Vec<String> {
        self.seen().logs.clone()
    }
    fn now_ms(&self) -> i64 {
        crate::timefmt::now_ms()
    }
    fn step(&self, what: &str) {
        (self.step)(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_refused_and_recorded() {
        let s = OfflineServices::new(Box::new(|_| {}));
        let b = CheckHost::host_box(&s);
        let e = b
            .http(HttpRequest {
                method: "GET".into(),
                url: "https://example.com/x".into(),
                headers: RVec::new(),
                body: RVec::new(),
                timeout_ms: 0,
            })
            .unwrap_err();
        assert_eq!(e.kind, kind::REFUSED);
        b.log(1, "hello".into());
        assert_eq!(s.requests(), ["GET https://example.com/x"]);
        assert_eq!(s.logs(), ["hello"]);
    }

    #[test]
    fn a_library_that_did_not_load_skips_every_other_check() {
        let lines = not_loaded("not a loadable library: nope");
        assert_eq!(lines[0].outcome, "fail");
        assert_eq!(lines.len(), check::CHECKS.len() + 1);
        assert!(lines[1..].iter().all(|l| l.outcome == "skip"));
    }
}
