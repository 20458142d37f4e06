//! The SDK's panic guard and the conformance checks, tested on small plugins that break one
//! rule each. Every call goes through the FFI objects of `sdk::root_module`, as the host's do.

use std::sync::atomic::{AtomicBool, Ordering};

use hermes_plugin_sdk::check::{CANARY_KEY, Outcome};
use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::testkit::{Conformance, FakeHost, Reply, conformance};
use hermes_plugin_sdk::{self as sdk, Capabilities, Host, PANIC_PREFIX, api_key, root_module};
use hermes_plugin_sdk::{HttpResponse, mask};

fn provider_info(id: &str, flow_kind: &str) -> ProviderInfo {
    let mut p = ProviderInfo::new(id, "Test", flow_kind, api_mode::ANTHROPIC_MESSAGES);
    p.regions.push(RegionInfo {
        name: "global".into(),
        portal_base_url: "".into(),
        inference_base_url: "https://api.test.example/anthropic".into(),
    });
    p.allowed_hosts.push("api.test.example".into());
    p
}

// ---- A well-behaved api_key provider: the baseline every other plugin here breaks. ----

/// How the `Good` provider misbehaves, switched per test (tests in this file that flip one
/// run alone under its lock).
static LOG_THE_KEY: AtomicBool = AtomicBool::new(false);
static STATUS_CALLS_HOME: AtomicBool = AtomicBool::new(false);
static RELOGIN_ON_NETWORK: AtomicBool = AtomicBool::new(false);
static SWITCHES: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Good;

impl sdk::Plugin for Good {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "good",
            "0.1.0",
            "well behaved",
            vec![provider_info("good", flow::API_KEY)],
        )
    }
    fn provider(id: &str, host: Host) -> Result<Capabilities, PluginError> {
        if id != "good" {
            return Err(PluginError::new(
                kind::INVALID_INPUT,
                "unknown_provider",
                "no such provider",
            ));
        }
        let p = GoodProvider { host };
        Ok(Capabilities::new(p.clone())
            .with_auth_flow(p.clone())
            .with_runtime(p))
    }
}

#[derive(Clone)]
struct GoodProvider {
    host: Host,
}

impl sdk::AuthFlowImpl for GoodProvider {
    fn start(&self, _region: &str, options: &str) -> Result<Challenge, PluginError> {
        let key = api_key::from_options(options)?.ok_or_else(|| {
            PluginError::new(kind::INVALID_INPUT, "no_api_key", "no API key given")
        })?;
        Ok(api_key::challenge(&key, self.host.now_ms()))
    }
    fn poll(&self, session: &str) -> Result<PollOutcome, PluginError> {
        let key = api_key::check(session)?;
        let cred = Credential {
            access_token: key.into(),
            region: "global".into(),
            ..Default::default()
        };
        Ok(PollOutcome::approved(cred, ""))
    }
}

impl sdk::RuntimeImpl for GoodProvider {
    fn needs_refresh(&self, _cred: &Credential, _now_ms: i64) -> bool {
        false
    }
    fn refresh(&self, cred: &Credential) -> Result<Credential, PluginError> {
        let resp = self
            .host
            .post("https://api.test.example/refresh")
            .form(&[("token", &cred.access_token)])
            .send();
        match resp {
            Err(e) if RELOGIN_ON_NETWORK.load(Ordering::SeqCst) => {
                Err(PluginError::relogin("dead", e.message))
            }
            Err(e) => Err(PluginError::new(e.kind, "refresh_failed", e.message)),
            Ok(_) => Ok(cred.clone()),
        }
    }
    fn runtime(&self, cred: &Credential) -> Result<Runtime, PluginError> {
        if LOG_THE_KEY.load(Ordering::SeqCst) {
            self.host
                .debug(&format!("runtime for key {}", cred.access_token));
        }
        Ok(Runtime {
            base_url: "https://api.test.example/anthropic".into(),
            auth_scheme: auth_scheme::X_API_KEY,
            secret: cred.access_token.clone(),
            extra_headers: RVec::new(),
        })
    }
}

impl sdk::StatusImpl for GoodProvider {
    fn status(&self, cred: Option<&Credential>, _now_ms: i64) -> StatusReport {
        if STATUS_CALLS_HOME.load(Ordering::SeqCst) {
            let _ = self.host.get("https://api.test.example/whoami").send();
        }
        match cred {
            Some(c) if !c.access_token.is_empty() => StatusReport::new(
                status_state::VALID,
                &format!("key {}", mask(&c.access_token)),
            ),
            _ => StatusReport::new(status_state::NOT_LOGGED_IN, "not logged in"),
        }
    }
}

fn with_switch(switch: &AtomicBool, f: impl FnOnce()) {
    let _g = SWITCHES.lock().unwrap_or_else(|p| p.into_inner());
    switch.store(true, Ordering::SeqCst);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    switch.store(false, Ordering::SeqCst);
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_well_behaved_plugin_passes_every_check() {
    let _g = SWITCHES.lock().unwrap_or_else(|p| p.into_inner());
    let report = conformance::<Good>();
    assert!(
        report.checks.iter().all(|c| c.outcome == Outcome::Pass),
        "{report}"
    );
    assert_eq!(report.checks.len(), hermes_plugin_sdk::check::CHECKS.len());
}

#[test]
fn a_key_in_a_log_line_fails_the_secrets_check() {
    with_switch(&LOG_THE_KEY, || {
        let report = Conformance::<Good>::new().report();
        let secrets = report.check("secrets").unwrap();
        assert_eq!(secrets.outcome, Outcome::Fail, "{report}");
        assert!(
            secrets.findings.iter().any(|f| f.starts_with(
                "RuntimeCredential::runtime with a live credential logged the access token"
            )),
            "{report}"
        );
        assert!(
            secrets
                .findings
                .iter()
                .any(|f| f.contains("with the credential its sign-in returned logged the API key")),
            "{report}"
        );
        let panicked = std::panic::catch_unwind(|| conformance::<Good>());
        assert!(panicked.is_err(), "conformance() panics on a failure");
    });
}

#[test]
fn a_status_that_calls_home_fails_status_offline() {
    with_switch(&STATUS_CALLS_HOME, || {
        let report = Conformance::<Good>::new().report();
        let c = report.check("status_offline").unwrap();
        assert_eq!(c.outcome, Outcome::Fail, "{report}");
        assert!(
            c.findings[0].contains("GET https://api.test.example/whoami"),
            "{report}"
        );
    });
}

#[test]
fn a_relogin_after_a_network_failure_fails_error_kinds() {
    with_switch(&RELOGIN_ON_NETWORK, || {
        let report = Conformance::<Good>::new().report();
        let c = report.check("error_kinds").unwrap();
        assert_eq!(c.outcome, Outcome::Fail, "{report}");
        assert!(
            c.findings
                .iter()
                .any(|f| f.contains("asked for a relogin after its request failed")),
            "{report}"
        );
    });
}

#[test]
fn an_own_type_whose_debug_shows_the_secret_fails_when_registered() {
    let _g = SWITCHES.lock().unwrap_or_else(|p| p.into_inner());
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Leaky {
        key: String,
    }
    let report = Conformance::<Good>::new()
        .debug_of("Leaky", |secret| {
            format!("{:?}", Leaky { key: secret.into() })
        })
        .report();
    let c = report.check("secrets").unwrap();
    assert_eq!(
        c.findings,
        [
            "the Debug form of Leaky shows the secret it holds: Leaky { key: \"hck-apikey-3e8a1c5d7f9b2046c1e3\" }"
        ]
    );
    let masked = Conformance::<Good>::new()
        .debug_of("Masked", |secret| format!("Masked({})", mask(secret)))
        .report();
    assert!(masked.passed(), "{masked}");
}

// ---- A plugin that panics in every entry point: the guard must catch each one. ----

struct Panicky;

impl sdk::Plugin for Panicky {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "panicky",
            "0.1.0",
            "panics",
            vec![provider_info("panicky", flow::DEVICE_CODE)],
        )
    }
    fn provider(_id: &str, _host: Host) -> Result<Capabilities, PluginError> {
        Ok(Capabilities::new(Boom)
            .with_auth_flow(Boom)
            .with_runtime(Boom)
            .with_removal(Boom))
    }
}

struct Boom;

impl sdk::AuthFlowImpl for Boom {
    fn start(&self, _: &str, _: &str) -> Result<Challenge, PluginError> {
        panic!("boom in start")
    }
    fn poll(&self, _: &str) -> Result<PollOutcome, PluginError> {
        panic!("boom in poll")
    }
}
impl sdk::RuntimeImpl for Boom {
    fn needs_refresh(&self, _: &Credential, _: i64) -> bool {
        panic!("boom in needs_refresh")
    }
    fn refresh(&self, _: &Credential) -> Result<Credential, PluginError> {
        panic!("boom in refresh")
    }
    fn runtime(&self, _: &Credential) -> Result<Runtime, PluginError> {
        panic!("boom in runtime")
    }
}
impl sdk::StatusImpl for Boom {
    fn status(&self, _: Option<&Credential>, _: i64) -> StatusReport {
        panic!("boom in status")
    }
}
impl sdk::RemovalImpl for Boom {
    fn removal(&self, _: &str) -> RemovalPlan {
        panic!("boom in removal")
    }
}

#[test]
fn the_guard_turns_every_panic_into_a_panicked_error() {
    let module = root_module::<Panicky>();
    let fake = FakeHost::default();
    let handle = (module.provider())("panicky".into(), fake.host_box()).unwrap();
    let flow = handle.auth_flow.as_ref().unwrap();
    for err in [
        flow.start("".into(), "".into()).unwrap_err(),
        flow.poll("".into()).unwrap_err(),
    ] {
        assert_eq!(err.kind, kind::PANICKED);
        assert_eq!(err.code.as_str(), "panicked");
        assert!(err.message.starts_with(PANIC_PREFIX), "{}", err.message);
    }
    let rt = handle.runtime.as_ref().unwrap();
    let cred = Credential::default();
    assert!(
        rt.needs_refresh(&cred, 0),
        "a panicking check asks for a refresh"
    );
    assert_eq!(rt.refresh(&cred).unwrap_err().kind, kind::PANICKED);
    let err = rt.runtime(&cred).unwrap_err();
    assert!(
        err.message.starts_with("plugin panicked in RuntimeCredential::runtime: boom in runtime at plugin-sdk/tests/conformance.rs:"),
        "the message names the entry point, the panic and where: {}",
        err.message
    );
    let status = handle.status.status(ROption::RNone, 0);
    assert_eq!(status.state, status_state::NOT_LOGGED_IN);
    assert!(status.problems[0].starts_with("plugin panicked in Status::status: boom in status"));
    let plan = handle.removal.as_ref().unwrap().removal("oauth".into());
    assert!(!plan.clear_provider_state && !plan.suppress_source);
    // Each caught panic is also logged through the host, at error level.
    let logs = fake.logs();
    assert!(
        logs.iter()
            .any(|(lvl, l)| *lvl == hermes_plugin_sdk::log_level::ERROR
                && l.starts_with(
                    "plugin panicked in RuntimeCredential::needs_refresh: boom in needs_refresh"
                ))
    );
    assert_eq!(logs.len(), 7, "{logs:?}");
}

#[test]
fn the_checks_report_each_panicking_entry_point() {
    let report = Conformance::<Panicky>::new().report();
    let c = report.check("entry_points").unwrap();
    assert_eq!(c.outcome, Outcome::Fail);
    for entry in [
        "Status::status with no credential panicked: plugin panicked in Status::status: boom in status",
        "AuthFlow::start(\"\", <options with an API key>) panicked: plugin panicked in AuthFlow::start: boom in start",
        "AuthFlow::poll(\"\") panicked: plugin panicked in AuthFlow::poll: boom in poll",
        "RuntimeCredential::needs_refresh with a live credential panicked: plugin panicked in RuntimeCredential::needs_refresh",
        "RuntimeCredential::runtime with a live credential panicked",
        "RuntimeCredential::refresh with a live credential panicked",
        "RemovalStep::removal(\"oauth\") panicked",
    ] {
        assert!(
            c.findings.iter().any(|f| f.starts_with(entry)),
            "missing {entry:?} in\n{report}"
        );
    }
    // The other checks still ran.
    assert_eq!(
        report.check("status_offline").unwrap().outcome,
        Outcome::Pass
    );
    assert_eq!(report.check("descriptor").unwrap().outcome, Outcome::Pass);
}

struct PanicInDescribe;

impl sdk::Plugin for PanicInDescribe {
    fn info() -> PluginInfo {
        panic!("no descriptor today")
    }
    fn provider(_id: &str, _host: Host) -> Result<Capabilities, PluginError> {
        Err(PluginError::terminal("unreachable", "unreachable"))
    }
}

#[test]
fn a_panic_in_describe_fails_describe_and_skips_the_rest() {
    let report = Conformance::<PanicInDescribe>::new().report();
    let d = report.check("describe").unwrap();
    assert!(
        d.findings[0]
            .starts_with("describe() panicked: plugin panicked in describe: no descriptor today"),
        "{report}"
    );
    assert!(
        report.checks[2..]
            .iter()
            .all(|c| c.outcome == Outcome::Skip),
        "{report}"
    );
    assert!(!report.passed());
}

struct PanicInProvider;

impl sdk::Plugin for PanicInProvider {
    fn info() -> PluginInfo {
        PluginInfo::new("pp", "0.1.0", "", vec![provider_info("pp", flow::EXTERNAL)])
    }
    fn provider(_id: &str, _host: Host) -> Result<Capabilities, PluginError> {
        panic!("cannot open")
    }
}

#[test]
fn a_panic_in_provider_is_reported_once_and_logged() {
    let fake = FakeHost::default();
    let err = match (root_module::<PanicInProvider>().provider())("pp".into(), fake.host_box()) {
        RResult::RErr(e) => e,
        RResult::ROk(_) => panic!("must fail"),
    };
    assert_eq!(err.kind, kind::PANICKED);
    assert_eq!(fake.logs().len(), 1);
    let report = Conformance::<PanicInProvider>::new().report();
    let c = report.check("entry_points").unwrap();
    assert_eq!(
        c.findings
            .iter()
            .filter(|f| f.starts_with("provider(\"pp\") panicked"))
            .count(),
        1,
        "{report}"
    );
}

// ---- Errors without kinds, and descriptors the host would refuse. ----

struct Sloppy;

impl sdk::Plugin for Sloppy {
    fn info() -> PluginInfo {
        let mut p = provider_info("Sloppy Provider", "telepathy");
        p.aliases.push("bad alias".into());
        PluginInfo::new("sloppy", "one", "", vec![p])
    }
    fn provider(_id: &str, _host: Host) -> Result<Capabilities, PluginError> {
        Ok(Capabilities::new(SloppyStatus).with_runtime(SloppyStatus))
    }
}

struct SloppyStatus;
impl sdk::StatusImpl for SloppyStatus {
    fn status(&self, _: Option<&Credential>, _: i64) -> StatusReport {
        StatusReport::new(status_state::NOT_LOGGED_IN, "no")
    }
}
impl sdk::RuntimeImpl for SloppyStatus {
    fn needs_refresh(&self, _: &Credential, _: i64) -> bool {
        false
    }
    fn refresh(&self, _: &Credential) -> Result<Credential, PluginError> {
        Err(PluginError {
            relogin_required: true,
            ..PluginError::transient("", "")
        })
    }
    fn runtime(&self, _: &Credential) -> Result<Runtime, PluginError> {
        Err(PluginError::new(99, "odd", "an odd kind"))
    }
}

#[test]
fn errors_without_kinds_codes_or_messages_are_findings() {
    let report = Conformance::<Sloppy>::new().report();
    let k = report.check("error_kinds").unwrap();
    let all = k.findings.join("\n");
    for needle in [
        "RuntimeCredential::runtime with a live credential returned an error of unknown kind 99 (an odd kind)",
        "RuntimeCredential::refresh with a live credential returned an error without a code",
        "RuntimeCredential::refresh with a live credential returned an error () without a message",
        "asked for a relogin on a transient error",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{report}");
    }
    let d = report.check("descriptor").unwrap().findings.join("\n");
    for needle in [
        "plugin version \"one\" is not semver",
        "provider id \"Sloppy Provider\" is not valid",
        "unknown flow kind \"telepathy\"",
        "alias \"bad alias\" is not valid",
    ] {
        assert!(d.contains(needle), "missing {needle:?} in\n{report}");
    }
}

// ---- The SDK helpers the checks rely on and authors asked for. ----

#[test]
fn requests_carry_their_timeout_headers_and_body() {
    let fake = FakeHost::default();
    fake.on_request(|_| Reply::json(200, "{}"));
    let host = fake.sdk_host();
    host.post("https://x.example/t")
        .header("accept", "application/json")
        .form(&[("a", "b c")])
        .timeout_ms(15_000)
        .send()
        .unwrap();
    host.post_form("https://x.example/f", &[("k", "v")], &[("x-extra", "1")])
        .unwrap();
    host.get("https://x.example/g").send().unwrap();
    host.post("https://x.example/j")
        .json("{\"a\":1}")
        .send()
        .unwrap();
    let r = fake.requests();
    assert_eq!(r[0].timeout_ms, 15_000);
    assert_eq!(r[0].header("accept"), Some("application/json"));
    assert_eq!(
        r[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r[0].field("a").as_deref(), Some("b c"));
    assert_eq!((r[1].timeout_ms, r[1].header("x-extra")), (0, Some("1")));
    assert_eq!(r[1].body, "k=v");
    assert_eq!((r[2].method.as_str(), r[2].body.as_str()), ("GET", ""));
    assert_eq!(r[3].header("content-type"), Some("application/json"));
}

#[test]
fn a_full_reply_carries_headers_truncation_and_final_url() {
    let fake = FakeHost::default();
    fake.on_request(|_| {
        let mut resp = Reply::response(200, "{\"partial\":");
        resp.truncated = true;
        resp.final_url = "https://account.x.example/after-redirect".into();
        resp.headers.push(Tuple2("retry-after".into(), "5".into()));
        Reply::Full(resp)
    });
    let resp: HttpResponse = fake.sdk_host().get("https://x.example/").send().unwrap();
    assert!(resp.truncated);
    assert_eq!(
        resp.final_url.as_str(),
        "https://account.x.example/after-redirect"
    );
    assert_eq!(resp.headers[0].1.as_str(), "5");
    fake.on_request(|_| Reply::Full(Reply::response(204, "")));
    let resp = fake
        .sdk_host()
        .get("https://x.example/here")
        .send()
        .unwrap();
    assert_eq!(
        resp.final_url.as_str(),
        "https://x.example/here",
        "an empty final URL is the request's"
    );
}

#[test]
fn seeded_fakes_hand_out_the_same_bytes() {
    let a = FakeHost::default().with_seed(7).sdk_host().random_bytes(16);
    let b = FakeHost::default().with_seed(7).sdk_host().random_bytes(16);
    let c = FakeHost::default().with_seed(8).sdk_host().random_bytes(16);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn poll_outcomes_for_denial_expiry_and_slow_down() {
    let d = PollOutcome::denied("the user said no");
    assert_eq!(
        (d.status, d.message.as_str()),
        (poll_status::DENIED, "the user said no")
    );
    assert!(d.credential.is_none());
    assert_eq!(PollOutcome::expired("").status, poll_status::EXPIRED);
    let s = PollOutcome::slow_down(10_000);
    assert_eq!((s.status, s.interval_ms), (poll_status::PENDING, 10_000));
}

#[test]
fn api_key_options_are_read_strictly_and_never_echoed() {
    assert_eq!(api_key::from_options("").unwrap(), None);
    assert_eq!(api_key::from_options("{}").unwrap(), None);
    assert_eq!(
        api_key::from_options(r#"{"api_key": "  sk-abc  "}"#)
            .unwrap()
            .as_deref(),
        Some("sk-abc")
    );
    for bad in [
        r#"{"api_key": "sk-a sk-b"}"#,
        r#"{"api_key": 5}"#,
        "[]",
        "{",
        r#"{"api_key": ""}"#,
    ] {
        let e = api_key::from_options(bad).unwrap_err();
        assert_eq!(e.kind, kind::INVALID_INPUT, "{bad}");
        assert!(!e.message.contains("sk-"), "{}", e.message);
    }
    let ch = api_key::challenge(CANARY_KEY, 1_000);
    assert!(ch.verification_uri.is_empty() && ch.user_code.is_empty());
    assert_eq!(ch.expires_at_ms, 1_000 + api_key::CHALLENGE_TTL_MS);
    assert!(!format!("{ch:?}").contains(CANARY_KEY));
}
