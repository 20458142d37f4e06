//! The conformance checks: what every plugin must do, checked through the ABI.
//!
//! One implementation, two callers: the testkit's
//! [`conformance`](crate::testkit::conformance) runs it in the author's `cargo test` over the
//! plugin's [`root_module`](crate::root_module) and a fake host, and `hermes plugins check` /
//! `hermes plugins install` run it in a child process over a built library and the host's own
//! offline services. Every call goes through the FFI objects (`*_TO`) exactly as the host makes
//! it, so what passes here is what the host sees.
//!
//! The checks, in order ([`CHECKS`]):
//!
//! | name | what |
//! |---|---|
//! | `api_version` | the exported interface version has the host's major |
//! | `describe` | `describe()` returns a descriptor (no error, no panic) |
//! | `descriptor` | the descriptor follows the host's rules ([`crate::validate`]) |
//! | `open` | every provider opens, without a network call, with the capabilities its flow needs |
//! | `status_offline` | `Status::status` makes no network call |
//! | `entry_points` | every entry point, called with hostile input, answers without panicking |
//! | `error_kinds` | every error carries a known kind, a code and a message; only terminal errors ask for a relogin, and never because the network failed |
//! | `secrets` | the fake secrets the checks hand over never show up in log lines, messages, request URLs or `Debug` output |
//!
//! The secrets check is real: the checker plants recognisable fake secrets ([`CANARY_ACCESS`],
//! [`CANARY_REFRESH`], [`CANARY_KEY`]) in the credentials and sign-in options it passes, and then
//! scans everything a person could see — log lines (the host prints them with `-v`), error
//! messages and codes, status summaries and problems, challenge codes and URLs, removal
//! messages, runtime base URLs and headers, the `Debug` form of every returned object, and the
//! URLs of requests the plugin tried to make — for any of them.

use abi_stable::std_types::{ROption, RResult, RStr};

use crate::{
    API_VERSION, Challenge, Credential, HostBox, HttpRequest, PluginError, PluginModRef,
    PollOutcome, ProviderHandle, ProviderInfo, Runtime, StatusReport, auth_scheme, flow, kind,
    poll_status, status_state,
};

use crate::{PANIC_PREFIX, validate};

/// A fake access token handed to the plugin; it must never be shown.
pub const CANARY_ACCESS: &str = "hck-access-5f0c1e9a7b3d4e62a8c1";
/// A fake refresh token handed to the plugin; it must never be shown.
pub const CANARY_REFRESH: &str = "hck-refresh-9d2b7a4c6e1f3085b7d2";
/// A fake API key passed in sign-in options; it must never be shown.
pub const CANARY_KEY: &str = "hck-apikey-3e8a1c5d7f9b2046c1e3";

const CANARIES: &[(&str, &str)] = &[
    (CANARY_ACCESS, "access token"),
    (CANARY_REFRESH, "refresh token"),
    (CANARY_KEY, "API key"),
];

/// Every check: name and title, in report order.
pub const CHECKS: &[(&str, &str)] = &[
    ("api_version", "interface version matches this plugin-api"),
    ("describe", "describe() returns a descriptor"),
    ("descriptor", "descriptor follows the host's rules"),
    ("open", "every provider opens without network"),
    ("status_offline", "status makes no network call"),
    ("entry_points", "every entry point survives hostile input"),
    (
        "error_kinds",
        "errors carry known kinds, codes and messages",
    ),
    (
        "secrets",
        "no secret in logs, messages, URLs or Debug output",
    ),
];

/// The services the checks run against, and what they observed. The testkit's `FakeHost` and
/// the host's offline services implement it; neither makes a real network call.
pub trait CheckHost {
    /// Services to hand to one provider; what the provider does with them is recorded here.
    fn host_box(&self) -> HostBox;
    /// Every request made so far, one line each (`METHOD url`).
    fn requests(&self) -> Vec<String>;
    /// Every log line so far, in order; the checks scan the new ones after each call.
    fn logs(&self) -> Vec<String>;
    /// The clock the services report.
    fn now_ms(&self) -> i64;
    /// Called before each call into the plugin. A host that runs the checks in a child process
    /// records it, so that a crash can be reported with the call that caused it.
    fn step(&self, _what: &str) {}
}

/// How one check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran, with no finding (warnings allowed).
    Pass,
    /// Ran, with at least one finding: the plugin breaks a rule.
    Fail,
    /// Not run (an earlier check failed in a way that makes it meaningless).
    Skip,
}

/// One check's result.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// Stable name (see [`CHECKS`]).
    pub name: &'static str,
    /// One line for people, as the report prints it beside the mark.
    pub title: &'static str,
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// What failed, one line each.
    pub findings: Vec<String>,
    /// Worth fixing, but not a failure.
    pub warnings: Vec<String>,
}

/// The result of every check.
#[derive(Clone, Debug)]
pub struct Report {
    /// One entry per check, in [`CHECKS`] order.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// Whether every check passed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }
    /// Every finding, prefixed with its check's name.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .flat_map(|c| c.findings.iter().map(move |f| format!("{}: {f}", c.name)))
            .collect()
    }
    /// Every warning, prefixed with its check's name.
    pub fn warnings(&self) -> Vec<String> {
        self.checks
            .iter()
            .flat_map(|c| c.warnings.iter().map(move |f| format!("{}: {f}", c.name)))
            .collect()
    }
    /// The result of the check called `name`.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl std::fmt::Display for Report {
    /// One line per check (`✓`, `✗` or `-` for skipped), findings and warnings indented below.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.checks {
            let mark = match c.outcome {
                Outcome::Pass => "✓",
                Outcome::Fail => "✗",
                Outcome::Skip => "-",
            };
            writeln!(f, "{mark} {}", c.title)?;
            for x in &c.findings {
                writeln!(f, "    {x}")?;
            }
            for w in &c.warnings {
                writeln!(f, "    warning: {w}")?;
            }
        }
        Ok(())
    }
}

/// A `Debug` rendering to check for leaks: a name, and a function that builds the object
/// around a secret and formats it (the testkit's `debug_of`).
pub type DebugProbe = (String, Box<dyn Fn(&str) -> String>);

/// Run every check on `module` with services from `host`; `debug_probes` adds the plugin's own
/// secret-holding types to the secrets check.
pub fn run(module: PluginModRef, host: &dyn CheckHost, debug_probes: &[DebugProbe]) -> Report {
    let mut c = Checker::new(host);
    host.step("api_version()");
    let version = (module.api_version())();
    let host_major = API_VERSION.split('.').next().unwrap_or("");
    if !validate::is_semver(version.as_str())
        || version.as_str().split('.').next() != Some(host_major)
    {
        c.fail(
            "api_version",
            format!(
                "the plugin says it speaks plugin-api {:?}, this checker speaks {API_VERSION}: rebuild it",
                validate::clip(version.as_str())
            ),
        );
    }
    host.step("describe()");
    let info = match (module.describe())() {
        RResult::ROk(info) => info,
        RResult::RErr(e) => {
            let what = if e.kind == kind::PANICKED {
                "panicked"
            } else {
                "failed"
            };
            c.fail(
                "describe",
                format!("describe() {what}: {}", excerpt(&e.message)),
            );
            return c.finish(true);
        }
    };
    c.after_call("describe()");
    for p in validate::plugin_info(&info) {
        c.fail("descriptor", p);
    }
    for provider in info.providers.iter() {
        c.provider(module, provider);
    }
    c.abi_debug();
    for (name, render) in debug_probes {
        let shown = render(CANARY_KEY);
        if leaked(&shown).is_some() {
            c.fail(
                "secrets",
                format!(
                    "the Debug form of {name} shows the secret it holds: {}",
                    excerpt(&shown)
                ),
            );
        }
    }
    c.request_urls();
    c.finish(false)
}

/// Which canary `text` shows, whole or by its random tail.
fn leaked(text: &str) -> Option<&'static str> {
    CANARIES
        .iter()
        .find(|(c, _)| text.contains(c) || text.contains(&c[c.len() - 16..]))
        .map(|(_, what)| *what)
}

/// At most 160 characters of `s`, one line.
fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(160)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > 160 {
        out.push('…');
    }
    out
}

struct Checker<'a> {
    host: &'a dyn CheckHost,
    findings: Vec<(&'static str, String)>,
    warnings: Vec<(&'static str, String)>,
    logs_seen: usize,
    /// A panic of the current call already reported from its return value.
    panic_reported: bool,
}

impl<'a> Checker<'a> {
    fn new(host: &'a dyn CheckHost) -> Self {
        let logs_seen = host.logs().len();
        Self {
            host,
            findings: Vec::new(),
            warnings: Vec::new(),
            logs_seen,
            panic_reported: false,
        }
    }

    fn fail(&mut self, check: &'static str, finding: String) {
        if !self
            .findings
            .iter()
            .any(|(c, f)| *c == check && *f == finding)
        {
            self.findings.push((check, finding));
        }
    }

    fn warn(&mut self, check: &'static str, warning: String) {
        self.warnings.push((check, warning));
    }

    fn finish(self, skip_rest: bool) -> Report {
        let checks = CHECKS
            .iter()
            .enumerate()
            .map(|(i, (name, title))| {
                let findings: Vec<String> = self
                    .findings
                    .iter()
                    .filter(|(c, _)| c == name)
                    .map(|(_, f)| f.clone())
                    .collect();
                let warnings: Vec<String> = self
                    .warnings
                    .iter()
                    .filter(|(c, _)| c == name)
                    .map(|(_, f)| f.clone())
                    .collect();
                // Everything after `describe` needs the descriptor.
                let outcome = if skip_rest && i > 1 {
                    Outcome::Skip
                } else if findings.is_empty() {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                };
                CheckResult {
                    name,
                    title,
                    outcome,
                    findings,
                    warnings,
                }
            })
            .collect();
        Report { checks }
    }

    fn before(&mut self, call: &str) {
        self.host.step(call);
        self.panic_reported = false;
    }

    /// Scan the log lines the last call produced: a panic the SDK logged (the only trace of a
    /// panic in `needs_refresh`) and any secret.
    fn after_call(&mut self, call: &str) {
        let logs = self.host.logs();
        let new: Vec<String> = logs.get(self.logs_seen..).unwrap_or_default().to_vec();
        self.logs_seen = logs.len();
        for line in new {
            if line.starts_with(PANIC_PREFIX) && !self.panic_reported {
                self.fail(
                    "entry_points",
                    format!("{call} panicked: {}", excerpt(&line)),
                );
                self.panic_reported = true;
            }
            if let Some(what) = leaked(&line) {
                self.fail(
                    "secrets",
                    format!("{call} logged the {what}: {}", excerpt(&line)),
                );
            }
        }
    }

    fn scan(&mut self, call: &str, place: &str, text: &str) {
        if let Some(what) = leaked(text) {
            self.fail(
                "secrets",
                format!("{call} shows the {what} in {place}: {}", excerpt(text)),
            );
        }
    }

    /// Checks an error returned by `call`. `network_failed` says whether the call tried the
    /// network (which the checker's host always refuses).
    fn error(&mut self, call: &str, e: &PluginError, network_failed: bool) {
        if e.kind == kind::PANICKED {
            self.fail(
                "entry_points",
                format!("{call} panicked: {}", excerpt(&e.message)),
            );
            self.panic_reported = true;
        } else if kind::name(e.kind) == "unknown" {
            self.fail(
                "error_kinds",
                format!(
                    "{call} returned an error of unknown kind {} ({})",
                    e.kind,
                    excerpt(&e.message)
                ),
            );
        }
        if e.code.trim().is_empty() {
            self.fail(
                "error_kinds",
                format!(
                    "{call} returned an error without a code ({})",
                    excerpt(&e.message)
                ),
            );
        }
        if e.message.trim().is_empty() {
            self.fail(
                "error_kinds",
                format!(
                    "{call} returned an error ({}) without a message",
                    excerpt(&e.code)
                ),
            );
        }
        if e.relogin_required && e.kind != kind::TERMINAL {
            self.fail(
                "error_kinds",
                format!(
                    "{call} asked for a relogin on a {} error ({}): only terminal errors may, or the host wipes logins over passing failures",
                    kind::name(e.kind),
                    excerpt(&e.message)
                ),
            );
        } else if e.relogin_required && network_failed {
            self.fail(
                "error_kinds",
                format!(
                    "{call} asked for a relogin after its request failed ({}): a network failure is transient, and the host would wipe the login",
                    excerpt(&e.message)
                ),
            );
        }
        self.scan(call, "its error code", &e.code);
        self.scan(call, "its error message", &e.message);
    }

    fn status_report(&mut self, call: &str, r: &StatusReport) {
        for p in r.problems.iter() {
            if p.starts_with(PANIC_PREFIX) {
                self.fail("entry_points", format!("{call} panicked: {}", excerpt(p)));
                self.panic_reported = true;
            }
            self.scan(call, "a status problem", p);
        }
        if !(status_state::NOT_LOGGED_IN..=status_state::RELOGIN_REQUIRED).contains(&r.state) {
            self.fail(
                "entry_points",
                format!("{call} returned an unknown status state {}", r.state),
            );
        }
        self.scan(call, "the status summary", &r.summary);
        self.scan(call, "the status region", &r.region);
    }

    fn credential_out(&mut self, call: &str, c: &Credential) {
        self.scan(call, "the returned credential's label", &c.label);
        self.scan(call, "the returned credential's region", &c.region);
        self.scan(call, "the returned credential's base URL", &c.base_url);
    }

    fn challenge(&mut self, call: &str, ch: &Challenge) {
        self.scan(call, "the challenge's user code", &ch.user_code);
        self.scan(
            call,
            "the challenge's verification URL",
            &ch.verification_uri,
        );
        self.scan(call, "the challenge's Debug form", &format!("{ch:?}"));
    }

    fn poll_outcome(&mut self, call: &str, o: &PollOutcome) -> Option<Credential> {
        if !(poll_status::PENDING..=poll_status::EXPIRED).contains(&o.status) {
            self.fail(
                "entry_points",
                format!("{call} returned an unknown poll status {}", o.status),
            );
        }
        self.scan(call, "the poll message", &o.message);
        match (&o.status, o.credential.as_ref().into_option()) {
            (&poll_status::APPROVED, Some(c)) => {
                self.credential_out(call, c);
                Some(c.clone())
            }
            (&poll_status::APPROVED, None) => {
                self.fail(
                    "entry_points",
                    format!("{call} approved a sign-in without a credential"),
                );
                None
            }
            _ => None,
        }
    }

    fn runtime_out(&mut self, call: &str, rt: &Runtime) {
        if rt.auth_scheme != auth_scheme::BEARER && rt.auth_scheme != auth_scheme::X_API_KEY {
            self.fail(
                "entry_points",
                format!("{call} returned an unknown auth scheme {}", rt.auth_scheme),
            );
        }
        self.scan(call, "the runtime base URL", &rt.base_url);
        for h in rt.extra_headers.iter() {
            self.scan(
                call,
                "an extra header (shown in Debug output; use auth_scheme for the secret)",
                &format!("{}: {}", h.0, h.1),
            );
        }
    }

    fn provider(&mut self, module: PluginModRef, p: &ProviderInfo) {
        let id = p.id.to_string();
        let requests_before = self.host.requests().len();
        let call = format!("provider({id:?})");
        self.before(&call);
        let handle = match (module.provider())(RStr::from_str(&id), self.host.host_box()) {
            RResult::ROk(h) => h,
            RResult::RErr(e) => {
                self.error(&call, &e, false);
                self.after_call(&call);
                if e.kind != kind::PANICKED {
                    self.fail(
                        "open",
                        format!("provider {id} cannot be opened: {}", excerpt(&e.message)),
                    );
                }
                return;
            }
        };
        self.after_call(&call);
        if let Some(first) = self.host.requests().get(requests_before) {
            self.fail(
                "open",
                format!(
                    "opening provider {id} made a network request ({})",
                    excerpt(first)
                ),
            );
        }
        // An unknown id must be answered, not panicked on (the answer itself is the plugin's).
        let call_unknown = "provider(\"no-such-provider\")";
        self.before(call_unknown);
        if let RResult::RErr(e) =
            (module.provider())(RStr::from_str("no-such-provider"), self.host.host_box())
        {
            self.error(call_unknown, &e, false);
        }
        self.after_call(call_unknown);

        let now = self.host.now_ms();
        let region = p.regions.first();
        let live = Credential {
            access_token: CANARY_ACCESS.into(),
            refresh_token: CANARY_REFRESH.into(),
            expires_at_ms: now.saturating_add(3_600_000),
            region: region.map(|r| r.name.clone()).unwrap_or_default(),
            base_url: region
                .map(|r| r.inference_base_url.clone())
                .unwrap_or_default(),
            label: "hermes-check".into(),
            state: "{}".into(),
        };
        let expired = Credential {
            expires_at_ms: now.saturating_sub(3_600_000),
            ..live.clone()
        };
        let empty = Credential::default();
        let garbage = Credential {
            state: "{\"not\": json".into(),
            region: "no-such-region".into(),
            ..live.clone()
        };

        self.status(
            &handle,
            &id,
            now,
            &[
                ("no credential", None),
                ("a live credential", Some(&live)),
                ("an expired credential", Some(&expired)),
                ("an empty credential", Some(&empty)),
                ("a corrupt credential", Some(&garbage)),
            ],
        );
        let approved = self.auth_flow(&handle, p);
        self.runtime(
            &handle,
            now,
            &[&live, &expired, &empty, &garbage],
            approved.as_ref(),
        );
        if let ROption::RSome(rm) = &handle.removal {
            for source in ["oauth", "manual:hermes-check", "", "\u{0}"] {
                let call = format!("RemovalStep::removal({source:?})");
                self.before(&call);
                let plan = rm.removal(RStr::from_str(source));
                if plan.message.starts_with(PANIC_PREFIX) {
                    self.fail(
                        "entry_points",
                        format!("{call} panicked: {}", excerpt(&plan.message)),
                    );
                    self.panic_reported = true;
                }
                self.scan(&call, "its message", &plan.message);
                self.after_call(&call);
            }
        }
    }

    fn status(
        &mut self,
        handle: &ProviderHandle,
        id: &str,
        now: i64,
        cases: &[(&str, Option<&Credential>)],
    ) {
        let before = self.host.requests().len();
        for (what, cred) in cases {
            let call = format!("Status::status with {what}");
            self.before(&call);
            let r = handle.status.status((*cred).into(), now);
            self.status_report(&call, &r);
            self.after_call(&call);
        }
        let requests = self.host.requests();
        if let Some(first) = requests.get(before) {
            self.fail(
                "status_offline",
                format!(
                    "Status::status of {id} made {} network request(s) ({}): status must answer from the credential alone",
                    requests.len() - before,
                    excerpt(first)
                ),
            );
        }
    }

    fn auth_flow(&mut self, handle: &ProviderHandle, p: &ProviderInfo) -> Option<Credential> {
        let ROption::RSome(f) = &handle.auth_flow else {
            if [flow::DEVICE_CODE, flow::API_KEY, flow::PKCE_REDIRECT].contains(&p.flow.as_str()) {
                self.warn(
                    "open",
                    format!(
                        "provider {} declares the {} flow but has no AuthFlow: `hermes auth add {}` cannot sign in",
                        p.id, p.flow, p.id
                    ),
                );
            }
            return None;
        };
        let options = format!("{{\"api_key\": \"{CANARY_KEY}\"}}");
        let mut approved = None;
        let starts: [(&str, &str); 5] = [
            ("", &options),
            ("no-such-region", &options),
            ("", ""),
            ("", "{not json"),
            ("", "{\"api_key\": 42}"),
        ];
        for (i, (region, opts)) in starts.iter().enumerate() {
            let call = format!(
                "AuthFlow::start({region:?}, {})",
                if opts.contains(CANARY_KEY) {
                    "<options with an API key>".to_string()
                } else {
                    format!("{opts:?}")
                }
            );
            self.before(&call);
            let requests_before = self.host.requests().len();
            let res = f.start(RStr::from_str(region), RStr::from_str(opts));
            let network_failed = self.host.requests().len() > requests_before;
            match res {
                RResult::ROk(ch) => {
                    self.challenge(&call, &ch);
                    self.after_call(&call);
                    // Follow the first sign-in through, as the host would.
                    if i == 0 {
                        let call = "AuthFlow::poll(<the session start returned>)";
                        self.before(call);
                        let before = self.host.requests().len();
                        match f.poll(ch.session.as_rstr()) {
                            RResult::ROk(o) => approved = self.poll_outcome(call, &o),
                            RResult::RErr(e) => {
                                let nf = self.host.requests().len() > before;
                                self.error(call, &e, nf)
                            }
                        }
                        self.after_call(call);
                    }
                }
                RResult::RErr(e) => {
                    self.error(&call, &e, network_failed);
                    self.after_call(&call);
                }
            }
        }
        let long = "x".repeat(100_000);
        for session in ["", "{\"garbage\":", "\u{0}\u{1b}[2J", long.as_str()] {
            let call = format!(
                "AuthFlow::poll({:?})",
                excerpt(session).chars().take(24).collect::<String>()
            );
            self.before(&call);
            let before = self.host.requests().len();
            match f.poll(RStr::from_str(session)) {
                RResult::ROk(o) => {
                    self.poll_outcome(&call, &o);
                }
                RResult::RErr(e) => {
                    let nf = self.host.requests().len() > before;
                    self.error(&call, &e, nf)
                }
            }
            self.after_call(&call);
        }
        approved
    }

    fn runtime(
        &mut self,
        handle: &ProviderHandle,
        now: i64,
        creds: &[&Credential],
        approved: Option<&Credential>,
    ) {
        let ROption::RSome(rt) = &handle.runtime else {
            return;
        };
        let names = [
            "a live credential",
            "an expired credential",
            "an empty credential",
            "a corrupt credential",
        ];
        let all: Vec<(&str, &Credential)> = names
            .iter()
            .copied()
            .zip(creds.iter().copied())
            .chain(approved.map(|c| ("the credential its sign-in returned", c)))
            .collect();
        for (what, c) in &all {
            let call = format!("RuntimeCredential::needs_refresh with {what}");
            self.before(&call);
            let _ = rt.needs_refresh(c, now);
            self.after_call(&call);

            let call = format!("RuntimeCredential::runtime with {what}");
            self.before(&call);
            match rt.runtime(c) {
                RResult::ROk(r) => self.runtime_out(&call, &r),
                RResult::RErr(e) => self.error(&call, &e, false),
            }
            self.after_call(&call);

            let call = format!("RuntimeCredential::refresh with {what}");
            self.before(&call);
            let before = self.host.requests().len();
            let res = rt.refresh(c);
            let network_failed = self.host.requests().len() > before;
            match res {
                RResult::ROk(new) => {
                    self.credential_out(&call, &new);
                    self.scan(
                        &call,
                        "the returned credential's Debug form",
                        &format!("{new:?}"),
                    );
                }
                RResult::RErr(e) => self.error(&call, &e, network_failed),
            }
            self.after_call(&call);
        }
    }

    /// The `Debug` forms of the ABI types that carry secrets. In the testkit they are the
    /// plugin's own copies; in the host, the host's. Either way a regression shows here.
    fn abi_debug(&mut self) {
        let cred = Credential {
            access_token: CANARY_ACCESS.into(),
            refresh_token: CANARY_REFRESH.into(),
            state: format!("{{\"api_key\":\"{CANARY_KEY}\"}}").as_str().into(),
            ..Default::default()
        };
        let runtime = Runtime {
            base_url: "https://example.invalid".into(),
            auth_scheme: auth_scheme::BEARER,
            secret: CANARY_ACCESS.into(),
            extra_headers: Default::default(),
        };
        let challenge = Challenge {
            user_code: "CODE".into(),
            verification_uri: "https://example.invalid".into(),
            expires_at_ms: 0,
            interval_ms: 0,
            session: CANARY_KEY.into(),
        };
        let request = HttpRequest {
            method: "POST".into(),
            url: "https://example.invalid/token".into(),
            headers: vec![abi_stable::std_types::Tuple2(
                "authorization".into(),
                format!("Bearer {CANARY_ACCESS}").as_str().into(),
            )]
            .into(),
            body: format!("refresh_token={CANARY_REFRESH}")
                .into_bytes()
                .into(),
            timeout_ms: 0,
        };
        for (name, shown) in [
            ("Credential", format!("{cred:?}")),
            ("Runtime", format!("{runtime:?}")),
            ("Challenge", format!("{challenge:?}")),
            ("HttpRequest", format!("{request:?}")),
        ] {
            if let Some(what) = leaked(&shown) {
                self.fail(
                    "secrets",
                    format!(
                        "the Debug form of {name} shows the {what}: {}",
                        excerpt(&shown)
                    ),
                );
            }
        }
    }

    /// The host logs request URLs (`-v`), so a secret in a URL is a leak.
    fn request_urls(&mut self) {
        for r in self.host.requests() {
            if let Some(what) = leaked(&r) {
                self.fail("secrets", format!("a request URL carries the {what} (URLs are logged; send it in a header or the body): {}", excerpt(&r)));
            }
        }
    }
}
