//! `hermes dashboard`: the real process on a free port, its API over plain HTTP (a tiny
//! client, so tests can send any `Host` and `Origin`), sign-ins against the emulator, and the
//! page in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

mod browser;

/// A running `hermes dashboard --port 0 --no-open`, killed by its pid when dropped.
pub struct Dash {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The session token from the printed URL.
    pub token: String,
    /// The URL as printed (with the token).
    pub url: String,
    stderr_path: std::path::PathBuf,
}

impl Dash {
    /// Start it in `home`, with `env` added to the home's environment.
    pub fn start(home: &Home, env: &[(&str, &str)]) -> Dash {
        Dash::start_args(home, &["--no-open"], env)
    }

    /// Start `hermes dashboard --port 0 <args>`.
    pub fn start_args(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Dash {
        Dash::spawn(home, &[&["--port", "0"][..], args].concat(), env)
    }

    /// Start `hermes dashboard --no-open` on this port (free it first).
    pub fn start_on(home: &Home, port: u16) -> Dash {
        Dash::spawn(home, &["--port", &port.to_string(), "--no-open"], &[])
    }

    fn spawn(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Dash {
        let stderr_path = home
            .scratch()
            .join(format!("dashboard-{}.stderr", now_ms()));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = home.command(&[&["dashboard"][..], args].concat());
        cmd.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn hermes dashboard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if !l.is_empty() => l,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hermes dashboard printed no URL; stderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        };
        let url = line.trim().to_string();
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {url:?}"));
        let (port, query) = rest
            .split_once("/?token=")
            .unwrap_or_else(|| panic!("unexpected first line {url:?}"));
        assert!(
            query.len() >= 32 && query.bytes().all(|b| b.is_ascii_hexdigit()),
            "token {query:?}"
        );
        Dash {
            port: port.parse().expect("port"),
            token: query.to_string(),
            url,
            child,
            stderr_path,
        }
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A request with the token and the right Host.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        http(
            self.port,
            method,
            path,
            &[("X-Hermes-Session-Token", &self.token)],
            body,
        )
    }

    /// `api` for a JSON answer with this status.
    #[track_caller]
    pub fn json(&self, method: &str, path: &str, body: Option<&str>, status: u16) -> Value {
        let r = self.api(method, path, body);
        assert_eq!(
            r.status,
            status,
            "{method} {path}: {}\nstderr:\n{}",
            r.body,
            self.stderr()
        );
        r.json()
    }

    /// Start a sign-in; the start answer.
    #[track_caller]
    pub fn start_login(&self, provider: &str, region: Option<&str>) -> Value {
        let body = region.map(|r| json!({ "region": r }).to_string());
        self.json(
            "POST",
            &format!("/api/providers/oauth/{provider}/start"),
            body.as_deref(),
            200,
        )
    }

    /// Poll a session until it is no longer pending (at most `limit`); its last answer.
    #[track_caller]
    pub fn poll_until_done(&self, provider: &str, session: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.json(
                "GET",
                &format!("/api/providers/oauth/{provider}/poll/{session}"),
                None,
                200,
            );
            if v["status"] != "pending" {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "session {session} still pending after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process to exit by itself (at most `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Dash {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection. `Host` is `127.0.0.1:PORT` unless `headers`
/// has one.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Resp {
    http_raw(port, method, path, headers, body.map(str::as_bytes))
}

fn http_raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        // The server may answer (413) and close before reading all of a huge body.
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Install the second device-code provider (approves on its 2nd poll, no network).
fn install_test_provider(home: &Home) {
    home.run(&[
        "plugins",
        "install",
        lib("fixture_test_provider").to_str().unwrap(),
    ])
    .ok();
}

/// An emulator whose logins wait for [`Emulator::approve`], polled without delay.
fn manual() -> EmulatorConfig {
    EmulatorConfig {
        interval_ms: 0,
        ..EmulatorConfig::default()
    }
}

fn year_of(iso: &str) -> i32 {
    iso[..4]
        .parse()
        .unwrap_or_else(|_| panic!("not an ISO date: {iso}"))
}

fn ms_of_iso(iso: &str) -> i64 {
    // Only for sanity windows: parse `YYYY-MM-DDTHH:MM:SS` as UTC.
    let n = |r: std::ops::Range<usize>| {
        iso[r]
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("bad ISO date {iso}"))
    };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000
}

#[test]
fn dashboard_api_requires_the_session_token() {
    let (_emu, home) = minimax(approving());
    let d = Dash::start(&home, &[]);
    let missing = http(d.port, "GET", "/api/providers/oauth", &[], None);
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert_eq!(missing.json()["error"], "unauthorized");
    let wrong_token = "0".repeat(d.token.len());
    let wrong = http(
        d.port,
        "GET",
        "/api/providers/oauth",
        &[("X-Hermes-Session-Token", &wrong_token)],
        None,
    );
    assert_eq!(wrong.status, 401);
    let short = http(
        d.port,
        "GET",
        "/api/doctor",
        &[("X-Hermes-Session-Token", &d.token[..10])],
        None,
    );
    assert_eq!(short.status, 401);
    // Every API route is behind it, the token in a query string does not count.
    for (m, p) in [
        ("POST", "/api/providers/oauth/minimax-oauth/start"),
        ("DELETE", "/api/providers/oauth/minimax-oauth"),
        ("GET", "/api/qr?data=x"),
    ] {
        assert_eq!(http(d.port, m, p, &[], None).status, 401, "{m} {p}");
    }
    let in_query = http(
        d.port,
        "GET",
        &format!("/api/providers/oauth?token={}", d.token),
        &[],
        None,
    );
    assert_eq!(in_query.status, 401);
    assert_eq!(d.api("GET", "/api/providers/oauth", None).status, 200);
    // The page itself holds no secret and loads without the header.
    let page = http(d.port, "GET", "/", &[], None);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("X-Hermes-Session-Token"),
        "the page sends the token as a header"
    );
    assert!(page
        .header("content-security-policy")
        .unwrap_or("")
        .contains("frame-ancestors 'none'"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    // Nothing but the URL line on stdout, and the token is never logged.
    assert!(!d.stderr().contains(&d.token), "{}", d.stderr());
}

#[test]
fn dashboard_refuses_foreign_hosts_and_origins() {
    let (_emu, home) = minimax(approving());
    let d = Dash::start(&home, &[]);
    let tok = ("X-Hermes-Session-Token", d.token.as_str());
    let port = d.port;
    let evil_host = format!("evil.example:{port}");
    let rebinding = format!("rebind.evil.example:{port}");
    for host in [
        evil_host.as_str(),
        rebinding.as_str(),
        "127.0.0.1",
        "127.0.0.1:1",
        "localhost",
    ] {
        for path in ["/", "/api/providers/oauth"] {
            let r = http(port, "GET", path, &[("Host", host), tok], None);
            assert_eq!(r.status, 403, "Host {host} {path}: {}", r.body);
        }
    }
    let localhost = format!("localhost:{port}");
    assert_eq!(
        http(
            port,
            "GET",
            "/api/providers/oauth",
            &[("Host", &localhost), tok],
            None
        )
        .status,
        200
    );

    let ours = format!("http://127.0.0.1:{port}");
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    for origin in [
        "http://evil.example",
        "null",
        other_port.as_str(),
        "https://127.0.0.1",
        "http://localhost",
    ] {
        let r = http(
            port,
            "POST",
            "/api/providers/oauth/minimax-oauth/start",
            &[("Origin", origin), tok],
            Some("{}"),
        );
        assert_eq!(r.status, 403, "Origin {origin}: {}", r.body);
        let r = http(
            port,
            "GET",
            "/api/providers/oauth",
            &[("Origin", origin), tok],
            None,
        );
        assert_eq!(r.status, 403, "Origin {origin}: {}", r.body);
    }
    let same = http(
        port,
        "GET",
        "/api/providers/oauth",
        &[("Origin", &ours), tok],
        None,
    );
    assert_eq!(same.status, 200, "{}", same.body);
    // No CORS, ever: not on success, not on a preflight.
    let preflight = http(
        port,
        "OPTIONS",
        "/api/providers/oauth",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    );
    assert_ne!(preflight.status / 100, 2);
    for r in [&same, &preflight] {
        assert!(
            r.headers
                .iter()
                .all(|(k, _)| !k.starts_with("access-control-")),
            "{:?}",
            r.headers
        );
    }
}

#[test]
fn dashboard_answers_bad_requests_with_errors_and_keeps_running() {
    let (emu, home) = minimax(approving());
    let d = Dash::start(&home, &[]);
    let unknown = d.json(
        "POST",
        "/api/providers/oauth/no-such-provider/start",
        None,
        400,
    );
    assert_eq!(unknown["error"], "unknown_provider");
    assert_eq!(
        d.json(
            "POST",
            "/api/providers/oauth/minimax-oauth/start",
            Some("{not json"),
            400
        )["error"],
        "bad_request"
    );
    assert_eq!(
        d.json(
            "POST",
            "/api/providers/oauth/minimax-oauth/start",
            Some(r#"{"region": 7}"#),
            400
        )["error"],
        "bad_request"
    );
    assert_eq!(
        d.json(
            "POST",
            "/api/providers/oauth/minimax-oauth/start",
            Some("[]"),
            400
        )["error"],
        "bad_request"
    );
    let mars = d.json(
        "POST",
        "/api/providers/oauth/minimax-oauth/start",
        Some(r#"{"region":"mars"}"#),
        400,
    );
    assert_eq!(mars["error"], "unknown_region");
    assert!(
        mars["message"].as_str().unwrap().contains("global, cn"),
        "{mars}"
    );
    let huge = vec![b' '; 4 * 1024 * 1024];
    let r = http_raw(
        d.port,
        "POST",
        "/api/providers/oauth/minimax-oauth/start",
        &[("X-Hermes-Session-Token", &d.token)],
        Some(&huge),
    );
    assert_eq!(r.status, 413, "a huge body is refused");
    // In the documented error shape, like every other refusal.
    let too_large = r.json();
    assert_eq!(too_large["error"], "payload_too_large", "{too_large}");
    assert!(
        too_large["message"].as_str().unwrap().contains("16 KiB"),
        "{too_large}"
    );
    assert_eq!(
        d.json(
            "GET",
            "/api/providers/oauth/minimax-oauth/poll/nope",
            None,
            404
        )["error"],
        "unknown_session"
    );
    assert_eq!(
        d.json("GET", "/api/providers/oauth/nope/poll/nope", None, 400)["error"],
        "unknown_provider"
    );
    assert_eq!(
        d.json("DELETE", "/api/providers/oauth/sessions/nope", None, 404)["error"],
        "unknown_session"
    );
    assert_eq!(
        d.json("DELETE", "/api/providers/oauth/nope", None, 400)["error"],
        "unknown_provider"
    );
    assert_eq!(d.json("GET", "/api/qr", None, 400)["error"], "bad_request");
    let long = format!("/api/qr?data={}", "a".repeat(5000));
    assert_eq!(d.json("GET", &long, None, 400)["error"], "bad_request");
    assert_eq!(
        d.json("GET", "/api/nothing-here", None, 404)["error"],
        "not_found"
    );
    let qr = d.api(
        "GET",
        "/api/qr?data=https%3A%2F%2Fexample.com%2Fverify%3Fuser_code%3DAB-12",
        None,
    );
    assert_eq!(qr.status, 200);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
    assert!(
        qr.body.contains("<svg") && qr.body.contains("<path"),
        "{}",
        &qr.body[..qr.body.len().min(200)]
    );
    // None of that reached the provider, and the server still answers.
    assert_eq!(emu.counters().code_requests, 0);
    assert_eq!(d.api("GET", "/api/providers/oauth", None).status, 200);
}

#[test]
fn dashboard_lists_every_provider_of_every_plugin() {
    let (_emu, home) = minimax(approving());
    install_test_provider(&home);
    login(&home);
    let d = Dash::start(&home, &[]);
    let list = d.json("GET", "/api/providers/oauth", None, 200);
    let providers = list["providers"].as_array().unwrap();
    let ids: Vec<&str> = providers
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["minimax-oauth", "test-provider"]);
    let mm = &providers[0];
    assert_eq!(mm["name"], "MiniMax (OAuth)");
    assert_eq!(mm["flow"], "device_code");
    assert_eq!(mm["cli_command"], "hermes auth add minimax-oauth");
    assert_eq!(mm["regions"], json!(["global", "cn"]));
    let s = &mm["status"];
    assert_eq!(s["logged_in"], true);
    assert_eq!(s["source"], "oauth");
    assert_eq!(s["has_refresh_token"], true);
    assert_eq!(s["region"], "global");
    let preview = s["token_preview"].as_str().unwrap();
    let token = stored(&home)["access_token"].as_str().unwrap().to_string();
    assert!(
        preview.contains('…') && !preview.contains(&token[4..token.len() - 4]),
        "{preview}"
    );
    assert_eq!(providers[1]["status"]["logged_in"], false);
    assert_eq!(providers[1]["flow"], "device_code");
    assert_no_secret(
        &list.to_string(),
        &[
            token,
            stored(&home)["refresh_token"].as_str().unwrap().to_string(),
        ],
    );
}

#[test]
fn dashboard_doctor_is_the_doctor_json() {
    let (_emu, home) = minimax(approving());
    install_test_provider(&home);
    let d = Dash::start(&home, &[]);
    let api = d.json("GET", "/api/doctor", None, 200);
    let cli = home.run(&["doctor", "--json"]).code(1).json();
    assert_eq!(api, cli);
    assert_eq!(api["version"], 1);
    assert!(api["findings"].as_array().unwrap().len() >= 4, "{api}");
}

/// Key sets of what a sign-in stores: the provider block, its pool entries, the top level.
fn stored_shape(home: &Home, provider: &str) -> (Vec<String>, Vec<Vec<String>>, Value) {
    let j = home.auth_json();
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    let pool = j["credential_pool"][provider]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (
        keys(&j["providers"][provider]),
        pool.iter().map(keys).collect(),
        j["active_provider"].clone(),
    )
}

#[test]
fn dashboard_login_saves_exactly_what_the_cli_saves() {
    let (emu, home) = minimax(manual());
    let d = Dash::start(&home, &[]);
    let started = d.start_login("minimax-oauth", Some("global"));
    assert_eq!(started["flow"], "device_code");
    let code = started["user_code"].as_str().unwrap().to_string();
    let url = started["verification_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/verify?user_code=", emu.url())),
        "{url}"
    );
    assert!(started["expires_in"].as_i64().unwrap() > 500, "{started}");
    assert!(started["poll_interval"].as_i64().unwrap() >= 1);
    let sid = started["session_id"].as_str().unwrap().to_string();
    let pending = d.json(
        "GET",
        &format!("/api/providers/oauth/minimax-oauth/poll/{sid}"),
        None,
        200,
    );
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["error_message"], Value::Null);
    assert!(
        !home.path().join("auth.json").exists(),
        "nothing saved before approval"
    );

    assert!(
        emu.approve(&code),
        "the emulator knows the dashboard's code"
    );
    let done = d.poll_until_done("minimax-oauth", &sid, Duration::from_secs(30));
    assert_eq!(done["status"], "approved", "{done}");

    // The same sign-in through the CLI, in another home against the same emulator.
    let mut cli_home = Home::new();
    cli_home.set_env("MINIMAX_PORTAL_BASE_URL", &emu.url());
    cli_home.set_env("MINIMAX_INFERENCE_BASE_URL", &emu.inference_url());
    cli_home.install_minimax();
    emu.set_config(|c| c.auto_approve = true);
    login(&cli_home);
    assert_eq!(
        stored_shape(&home, "minimax-oauth"),
        stored_shape(&cli_home, "minimax-oauth")
    );
    let (a, b) = (stored(&home), stored(&cli_home));
    for k in [
        "provider",
        "region",
        "portal_base_url",
        "inference_base_url",
        "client_id",
        "scope",
        "token_type",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
    assert_eq!(home.auth_json()["active_provider"], "minimax-oauth");
    assert_eq!(emu.counters().logins_completed, 2);
    // And the CLI sees the dashboard's login.
    home.run(&["auth", "status", "minimax-oauth"]).ok();
    let list = d.json("GET", "/api/providers/oauth", None, 200);
    assert_eq!(list["providers"][0]["status"]["logged_in"], true);
}

#[test]
fn dashboard_cancel_never_saves() {
    // Polled every 2 s like production, on the test clock. The clock is held: the sign-in
    // polls once, then waits in its first interval until the test lets the clock go, after
    // the cancel and past several intervals, so a sign-in that kept polling would complete
    // within the window below.
    let (emu, home, clock) = minimax_on_test_clock(EmulatorConfig::default());
    clock.hold(true);
    let d = Dash::start(&home, &[]);
    let started = d.start_login("minimax-portal", None);
    let sid = started["session_id"].as_str().unwrap().to_string();
    // The first poll is answered, and none is in flight.
    let first = Instant::now();
    while emu.counters().polls_pending == 0 {
        assert!(
            first.elapsed() < Duration::from_secs(30),
            "the sign-in never polled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(emu.wait_idle(Duration::from_secs(30)));
    let cancelled = d.json(
        "DELETE",
        &format!("/api/providers/oauth/sessions/{sid}"),
        None,
        200,
    );
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(emu.approve(started["user_code"].as_str().unwrap()));
    clock.advance(10_000);
    clock.hold(false);
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        let v = d.json(
            "GET",
            &format!("/api/providers/oauth/minimax-oauth/poll/{sid}"),
            None,
            200,
        );
        assert_eq!(v["status"], "cancelled");
        assert!(
            !home.path().join("auth.json").exists(),
            "a cancelled sign-in saved"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = emu.counters();
    assert_eq!(
        (c.token_polls, c.logins_completed),
        (1, 0),
        "no poll after the cancel: {c:?}"
    );
    // Cancelling again is harmless.
    assert_eq!(
        d.json(
            "DELETE",
            &format!("/api/providers/oauth/sessions/{sid}"),
            None,
            200
        )["status"],
        "cancelled"
    );
}

#[test]
fn dashboard_logout_is_auth_logout() {
    let (_emu, home) = minimax(approving());
    login(&home);
    home.run(&[
        "auth",
        "add",
        "minimax-oauth",
        "--no-browser",
        "--label",
        "work",
    ])
    .ok();
    let d = Dash::start(&home, &[]);
    let r = d.json("DELETE", "/api/providers/oauth/minimax-portal", None, 200);
    assert_eq!(r["provider"], "minimax-oauth");
    assert_eq!(r["removed"], true);
    let j = home.auth_json();
    assert!(j["providers"].get("minimax-oauth").is_none(), "{j}");
    assert!(j["credential_pool"].get("minimax-oauth").is_none(), "{j}");
    assert_eq!(j["active_provider"], Value::Null);
    assert_eq!(
        d.json("GET", "/api/providers/oauth", None, 200)["providers"][0]["status"]["logged_in"],
        false
    );
    assert_eq!(
        d.json("DELETE", "/api/providers/oauth/minimax-oauth", None, 200)["removed"],
        false
    );
    home.run(&["auth", "status", "minimax-oauth"]).code(1);
}

#[test]
fn dashboard_poll_checks_the_session_and_its_provider() {
    let (_emu, home) = minimax(manual());
    install_test_provider(&home);
    let d = Dash::start(&home, &[]);
    let mm = d.start_login("minimax-oauth", None);
    let sid = mm["session_id"].as_str().unwrap();
    let mismatch = d.json(
        "GET",
        &format!("/api/providers/oauth/test-provider/poll/{sid}"),
        None,
        400,
    );
    assert_eq!(mismatch["error"], "session_provider_mismatch");
    // An alias of the right provider is the same provider.
    let ok = d.json(
        "GET",
        &format!("/api/providers/oauth/minimax-global/poll/{sid}"),
        None,
        200,
    );
    assert_eq!(ok["status"], "pending");
    assert_eq!(
        d.json(
            "GET",
            "/api/providers/oauth/minimax-oauth/poll/0123456789abcdef",
            None,
            404
        )["error"],
        "unknown_session"
    );
}

#[test]
fn regress_dashboard_dispatches_by_provider_id() {
    // The Python dashboard chose the flow by flow kind and started Anthropic's PKCE login for
    // MiniMax. Here each provider id reaches its own plugin, whatever the flow kinds.
    let (emu, home) = minimax(manual());
    install_test_provider(&home);
    let d = Dash::start(&home, &[]);

    let tp = d.start_login("test-provider", None);
    assert!(tp["user_code"].as_str().unwrap().starts_with("TP-"), "{tp}");
    assert_eq!(
        tp["verification_url"],
        "https://test-provider.invalid/verify"
    );
    assert_eq!(
        emu.counters().code_requests,
        0,
        "the test provider's start never reaches MiniMax"
    );

    let mm = d.start_login("minimax-portal", None);
    let mm_code = mm["user_code"].as_str().unwrap().to_string();
    assert!(!mm_code.starts_with("TP-"), "{mm}");
    assert_eq!(emu.pending_user_codes(), vec![mm_code.clone()]);
    let mm2 = d.start_login("MINIMAX_OAUTH", Some("global"));
    assert_eq!(
        emu.counters().code_requests,
        2,
        "exactly the two MiniMax starts reached MiniMax"
    );

    // The test provider approves by itself on its 2nd poll; MiniMax's logins stay pending.
    let tp_done = d.poll_until_done(
        "test-provider",
        tp["session_id"].as_str().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(tp_done["status"], "approved", "{tp_done}");
    let j = home.auth_json();
    assert!(
        j["providers"]["test-provider"]["access_token"]
            .as_str()
            .unwrap()
            .starts_with("tp-at-"),
        "{j}"
    );
    assert!(j["providers"].get("minimax-oauth").is_none(), "{j}");
    for s in [&mm, &mm2] {
        let v = d.json(
            "GET",
            &format!(
                "/api/providers/oauth/minimax-oauth/poll/{}",
                s["session_id"].as_str().unwrap()
            ),
            None,
            200,
        );
        assert_eq!(v["status"], "pending");
    }
    let c = emu.counters();
    assert_eq!((c.code_requests, c.logins_completed), (2, 0), "{c:?}");
}

#[test]
fn regress_year_583911_ms_expiry_dashboard() {
    // MiniMax sends `expired_in` as a unix-ms deadline; the Python dashboard added it to "now"
    // as seconds and crashed with "year 583911 is out of range".
    let (emu, home) = minimax(EmulatorConfig {
        expiry_encoding: ExpiryEncoding::UnixMs,
        ..manual()
    });
    let d = Dash::start(&home, &[]);
    let before = now_ms();
    let started = d.start_login("minimax-oauth", None);
    let sid = started["session_id"].as_str().unwrap().to_string();
    let expires_in = started["expires_in"].as_i64().unwrap();
    assert!(
        (590..=600).contains(&expires_in),
        "the code lives ~10 min: {started}"
    );
    let pending = d.json(
        "GET",
        &format!("/api/providers/oauth/minimax-oauth/poll/{sid}"),
        None,
        200,
    );
    let code_expiry = pending["expires_at"].as_str().unwrap().to_string();
    assert!(
        (2024..2100).contains(&year_of(&code_expiry)),
        "{code_expiry}"
    );
    let away = ms_of_iso(&code_expiry) - before;
    assert!(
        (580_000..=605_000).contains(&away),
        "poll expires_at {code_expiry} is {away} ms away, not ~10 min"
    );

    assert!(emu.approve(started["user_code"].as_str().unwrap()));
    assert_eq!(
        d.poll_until_done("minimax-oauth", &sid, Duration::from_secs(30))["status"],
        "approved"
    );
    let s = stored(&home);
    let iso = s["expires_at"].as_str().unwrap();
    assert!((2024..2100).contains(&year_of(iso)), "{iso}");
    let token_life = ms_of_iso(iso) - before;
    assert!(
        (880_000..=905_000).contains(&token_life),
        "stored expiry is {token_life} ms away, not ~15 min"
    );
    let listed = d.json("GET", "/api/providers/oauth", None, 200);
    let listed_iso = listed["providers"][0]["status"]["expires_at"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(listed_iso, iso);
}

#[test]
fn dashboard_stops_cleanly_on_ctrl_c() {
    let (emu, home) = minimax(EmulatorConfig::default());
    let mut d = Dash::start(&home, &[]);
    let started = d.start_login("minimax-oauth", None);
    let pid = i32::try_from(d.pid()).unwrap();
    // SAFETY: signalling our own child by its pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = d
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after Ctrl-C:\n{}", d.stderr()));
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert!(d.stderr().contains("dashboard stopped"), "{}", d.stderr());
    // The pending sign-in was cancelled, not saved, even once approved.
    emu.approve(started["user_code"].as_str().unwrap());
    assert!(!home.path().join("auth.json").exists());
    assert!(
        TcpStream::connect(("127.0.0.1", d.port)).is_err(),
        "the port is closed"
    );
}

#[test]
fn dashboard_port_in_use_is_a_clear_error() {
    let (_emu, home) = minimax(approving());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let r = home
        .run(&["dashboard", "--port", &port, "--no-open"])
        .code(1);
    assert!(
        r.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--port 0"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn dashboard_lists_api_key_providers_as_external_and_never_starts_them() {
    // A key is never typed into the page: such providers point to the terminal instead.
    let (emu, home) = minimax(approving());
    home.run(&["plugins", "install", "minimax-apikey"]).ok();
    let d = Dash::start(&home, &[]);
    let list = d.json("GET", "/api/providers/oauth", None, 200);
    let providers = list["providers"].as_array().unwrap();
    let keyed: Vec<&Value> = providers
        .iter()
        .filter(|p| p["plugin"] == "minimax-apikey")
        .collect();
    assert!(!keyed.is_empty(), "{list}");
    for p in keyed {
        assert_eq!(p["flow"], "external", "{p}");
        assert!(
            p["cli_command"]
                .as_str()
                .unwrap()
                .contains("--api-key-stdin"),
            "{p}"
        );
        let id = p["id"].as_str().unwrap();
        let r = d.json(
            "POST",
            &format!("/api/providers/oauth/{id}/start"),
            None,
            400,
        );
        assert_eq!(r["error"], "unsupported_flow", "{r}");
    }
    assert_eq!(emu.counters().code_requests, 0);
}

/// A stand-in browser for `HERMES_BROWSER`: records its command line (what `ps` shows every
/// local user), the file it was asked to open and that file's mode, in `dir`.
fn recording_opener(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("opener.sh");
    let d = dir.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             f=\"${{1#file://}}\"\n\
             cat /proc/$$/cmdline | tr '\\0' ' ' > '{d}/cmdline.tmp'\n\
             printf '%s\\n' \"$@\" > '{d}/argv.tmp'\n\
             cat \"$f\" > '{d}/page.tmp' 2>/dev/null\n\
             stat -c %a \"$f\" > '{d}/mode.tmp' 2>/dev/null\n\
             for n in cmdline argv page mode; do mv '{d}'/$n.tmp '{d}'/$n; done\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Wait for the opener to have run (it writes `mode` last).
fn wait_for_opener(dir: &std::path::Path, d: &Dash) {
    let start = Instant::now();
    while !dir.join("mode").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the browser opener never ran:\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn regress_dashboard_token_on_the_opener_command_line() {
    let (_emu, home) = minimax(approving());
    let rec = home.scratch().join("opener");
    std::fs::create_dir_all(&rec).unwrap();
    let opener = recording_opener(&rec);
    let mut d = Dash::start_args(&home, &[], &[("HERMES_BROWSER", opener.to_str().unwrap())]);
    wait_for_opener(&rec, &d);
    let cmdline = std::fs::read_to_string(rec.join("cmdline")).unwrap();
    let argv = std::fs::read_to_string(rec.join("argv")).unwrap();
    // What every local user could read: no session token, only a file path.
    assert!(!cmdline.contains(&d.token), "{cmdline}");
    assert!(!argv.contains(&d.token), "{argv}");
    let file = argv
        .trim()
        .strip_prefix("file://")
        .unwrap_or_else(|| panic!("the opener was not given a file: {argv}"));
    let file = std::path::Path::new(file);
    assert_eq!(file.parent().unwrap(), home.path(), "{argv}");
    assert_eq!(
        std::fs::read_to_string(rec.join("mode")).unwrap().trim(),
        "600"
    );
    // The page forwards to the URL with the token, and the page it forwards to works.
    let page = std::fs::read_to_string(rec.join("page")).unwrap();
    assert!(
        page.contains(&format!("url={}", d.url.replace('&', "&amp;"))),
        "{page}"
    );
    let list = d.json("GET", "/api/providers/oauth", None, 200);
    assert_eq!(list["providers"][0]["id"], "minimax-oauth");
    // Stopping the dashboard removes the page.
    assert!(file.exists());
    let pid = i32::try_from(d.pid()).unwrap();
    // SAFETY: signalling our own child by its pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    d.wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after Ctrl-C:\n{}", d.stderr()));
    assert!(!file.exists(), "the opener page outlived the dashboard");
}

#[test]
fn dashboard_opens_no_browser_with_no_open() {
    let (_emu, home) = minimax(approving());
    let rec = home.scratch().join("opener");
    std::fs::create_dir_all(&rec).unwrap();
    let opener = recording_opener(&rec);
    let d = Dash::start(&home, &[("HERMES_BROWSER", opener.to_str().unwrap())]);
    // A request answered means the dashboard is past the point where it would have opened.
    d.json("GET", "/api/providers/oauth", None, 200);
    assert!(!rec.join("argv.tmp").exists() && !rec.join("argv").exists());
    let leftovers: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("dashboard-open-")
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn dashboard_start_on_a_failing_server_names_the_status_and_message_not_json() {
    let (emu, home) = minimax(manual());
    emu.inject("/oauth2/device/code", Fault::Status500, 1);
    let d = Dash::start(&home, &[]);
    let r = d.json(
        "POST",
        "/api/providers/oauth/minimax-oauth/start",
        None,
        502,
    );
    assert_eq!(r["error"], "start_failed", "{r}");
    let m = r["message"].as_str().unwrap();
    assert!(
        m.contains("HTTP 500") && m.contains("internal server error"),
        "{m}"
    );
    assert!(
        !m.contains('{') && !m.contains("base_resp"),
        "raw JSON: {m}"
    );
}

#[test]
fn dashboard_poll_says_how_often_the_server_failed_while_waiting_and_at_the_end() {
    let (emu, home) = minimax(EmulatorConfig {
        code_ttl_ms: 7_000,
        ..manual()
    });
    emu.inject("/oauth2/token", Fault::Status500, 1000);
    let d = Dash::start(&home, &[]);
    let started = d.start_login("minimax-oauth", None);
    let sid = started["session_id"].as_str().unwrap().to_string();
    let path = format!("/api/providers/oauth/minimax-oauth/poll/{sid}");
    // While the sign-in is still pending, the answer already says the server is failing.
    let start = Instant::now();
    let failing = loop {
        let v = d.json("GET", &path, None, 200);
        assert_eq!(
            v["status"], "pending",
            "ended before a failure was reported: {v}"
        );
        if !v["server_failures"].is_null() {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let f = &failing["server_failures"];
    assert!(f["failed"].as_u64().unwrap() >= 1, "{failing}");
    assert!(f["polls"].as_u64().unwrap() >= f["failed"].as_u64().unwrap());
    assert!(
        f["last"].as_str().unwrap().contains("HTTP 500"),
        "{failing}"
    );
    // At the end, the message says it too (as the terminal does), not only "expired".
    let done = d.poll_until_done("minimax-oauth", &sid, Duration::from_secs(30));
    assert_ne!(done["status"], "approved", "{done}");
    let m = done["error_message"].as_str().unwrap();
    assert!(
        m.contains("the server failed") && m.contains("HTTP 500"),
        "{m}"
    );
    assert_eq!(
        done["server_failures"]["failed"], done["server_failures"]["polls"],
        "{done}"
    );
    assert!(!home.path().join("auth.json").exists());
    // A sign-in whose polls all succeed reports no failures.
    let (emu2, home2) = minimax(manual());
    let d2 = Dash::start(&home2, &[]);
    let ok = d2.start_login("minimax-oauth", None);
    let sid2 = ok["session_id"].as_str().unwrap();
    assert!(emu2.approve(ok["user_code"].as_str().unwrap()));
    let done2 = d2.poll_until_done("minimax-oauth", sid2, Duration::from_secs(30));
    assert_eq!(done2["status"], "approved");
    assert_eq!(done2["server_failures"], Value::Null, "{done2}");
}

#[test]
fn dashboard_names_regions_and_the_region_of_a_sign_in() {
    let (_emu, home) = minimax(manual());
    let d = Dash::start(&home, &[]);
    let list = d.json("GET", "/api/providers/oauth", None, 200);
    assert_eq!(
        list["providers"][0]["region_labels"],
        json!({"global": "Global", "cn": "China"})
    );
    assert_eq!(d.start_login("minimax-oauth", None)["region"], "global");
    let cn = d.start_login("minimax-oauth", Some("CN"));
    assert_eq!(cn["region"], "cn");
    let polled = d.json(
        "GET",
        &format!(
            "/api/providers/oauth/minimax-oauth/poll/{}",
            cn["session_id"].as_str().unwrap()
        ),
        None,
        200,
    );
    assert_eq!(polled["region"], "cn");
}

#[test]
fn a_denied_sign_in_is_not_called_denied_twice() {
    let (emu, home) = minimax(EmulatorConfig {
        auto_approve: false,
        interval_ms: 100,
        ..EmulatorConfig::default()
    });
    let d = Dash::start(&home, &[]);
    let started = d.start_login("minimax-oauth", None);
    let code = started["user_code"].as_str().unwrap().to_string();
    let sid = started["session_id"].as_str().unwrap().to_string();
    assert!(emu.deny(&code));
    let end = d.poll_until_done("minimax-oauth", &sid, Duration::from_secs(30));
    assert_eq!(end["status"], "denied", "{end}");
    // The page says "The sign-in was denied." itself: the message carries only the
    // provider's own words.
    let said = end["error_message"].as_str().unwrap_or("");
    assert!(!said.contains("sign-in was denied"), "{end}");
}

/// The dashboard reads the time from the clock its providers use (the shared test clock here,
/// set back two hours): a login made on that clock shows as valid, and a sign-in's code lives
/// its full ten minutes. On the system clock instead, the token showed as expired two hours
/// ago and the code as expired at once.
#[test]
fn dashboard_reads_the_time_from_its_providers_clock() {
    let (emu, home, clock) = minimax_on_test_clock(EmulatorConfig {
        access_ttl_ms: 30 * 60 * 1000,
        ..approving()
    });
    // The clock only moves forward through its API; set it back by hand.
    std::fs::write(clock.path(), (-2 * 3_600_000i64).to_string()).unwrap();
    login(&home);
    emu.set_config(|c| c.auto_approve = false);
    let d = Dash::start(&home, &[]);
    let list = d.json("GET", "/api/providers/oauth", None, 200);
    let mm = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "minimax-oauth")
        .expect("minimax-oauth")
        .clone();
    assert_eq!(mm["status"]["state"], "valid", "{mm:#}");
    let started = d.start_login("minimax-oauth", None);
    let expires_in = started["expires_in"].as_i64().unwrap();
    assert!((590..=600).contains(&expires_in), "{started}");
}
