//! The emulator exercised over real HTTP with a small HTTP/1.1 client on `std::net::TcpStream`,
//! so what is tested is the bytes on the wire, not axum's view of them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::state::now_ms;
use super::*;

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// Sends one request with `connection: close` and returns every byte the server sent before it
/// closed the connection.
fn send_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(raw)
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a complete response; an error means it was not complete (or not HTTP).
fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("no complete response head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty head")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        let mut rest = rest;
        loop {
            let line_end = find(rest, b"\r\n").ok_or("chunk size line cut")?;
            let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk")?;
            let size = usize::from_str_radix(size_text.trim(), 16).map_err(|_| "bad chunk")?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size + 2 {
                return Err("chunk cut short".into());
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body
    } else if let Some((_, len)) = headers.iter().find(|(k, _)| k == "content-length") {
        let len: usize = len.parse().map_err(|_| "bad content-length")?;
        if rest.len() < len {
            return Err(format!("body cut short: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn http(
    emu: &Emulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let raw = send_raw(emu.addr(), method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    parse_response(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn post_json(emu: &Emulator, path: &str, body: &Value) -> HttpResponse {
    http(
        emu,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn get(emu: &Emulator, path: &str) -> HttpResponse {
    http(emu, "GET", path, &[], b"")
}

// ---------------------------------------------------------------------------------------------
// Protocol helpers, written from the contract (not from any client)
// ---------------------------------------------------------------------------------------------

const REQUEST_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A distinct, valid verifier (86 base64url chars, like 64 random bytes) and its S256 challenge.
fn pkce() -> (String, String) {
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = N.fetch_add(1, Ordering::SeqCst).to_le_bytes();
    let bytes: Vec<u8> = (0..64u8).map(|i| i ^ seed[usize::from(i % 8)]).collect();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn code_form(challenge: &str, state: &str) -> Vec<u8> {
    form(&[
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("scope", SCOPE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", state),
    ])
}

/// `POST {prefix}/oauth2/device/code` with a valid request; returns the JSON answer.
fn device_code(emu: &Emulator, prefix: &str, challenge: &str) -> Value {
    let response = http(
        emu,
        "POST",
        &format!("{prefix}/oauth2/device/code"),
        &[
            FORM,
            ("x-request-id", REQUEST_ID),
            ("accept", "application/json"),
        ],
        &code_form(challenge, "state-123"),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn poll(emu: &Emulator, prefix: &str, user_code: &str, verifier: &str) -> HttpResponse {
    http(
        emu,
        "POST",
        &format!("{prefix}/oauth2/token"),
        &[FORM],
        &form(&[
            ("grant_type", LOGIN_GRANT),
            ("client_id", CLIENT_ID),
            ("user_code", user_code),
            ("code_verifier", verifier),
        ]),
    )
}

fn refresh(emu: &Emulator, prefix: &str, refresh_token: &str) -> HttpResponse {
    http(
        emu,
        "POST",
        &format!("{prefix}/oauth2/token"),
        &[FORM],
        &form(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", refresh_token),
        ]),
    )
}

/// A full login in `prefix`'s region; returns (access, refresh).
fn login(emu: &Emulator, prefix: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let code = device_code(emu, prefix, &challenge);
    let user_code = code["user_code"].as_str().unwrap_or_default().to_string();
    assert!(emu.approve(&user_code));
    let response = poll(emu, prefix, &user_code, &verifier);
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["status"], "success");
    (
        body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn hello(text: &str) -> Value {
    json!({"model": "MiniMax-M2.7", "max_tokens": 64, "messages": [{"role": "user", "content": text}]})
}

fn messages(emu: &Emulator, prefix: &str, auth: &[(&str, &str)], body: &Value) -> HttpResponse {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
    ];
    headers.extend_from_slice(auth);
    http(
        emu,
        "POST",
        &format!("{prefix}/anthropic/v1/messages"),
        &headers,
        body.to_string().as_bytes(),
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `(event, data)` pairs of an SSE body, checking each data's `type` matches its event name.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_string();
            let data: Value = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null);
            assert_eq!(data["type"], event.as_str(), "event and data type differ");
            (event, data)
        })
        .collect()
}

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default())
}

// ---------------------------------------------------------------------------------------------
// Legacy paths
// ---------------------------------------------------------------------------------------------

#[test]
fn legacy_paths_answer_307_with_absolute_location_in_each_region() {
    let emu = emulator();
    for (prefix, from, to) in [
        ("", "/oauth/code", "/oauth2/device/code"),
        ("", "/oauth/token", "/oauth2/token"),
        ("/cn", "/oauth/code", "/oauth2/device/code"),
        ("/cn", "/oauth/token", "/oauth2/token"),
    ] {
        let response = http(
            &emu,
            "POST",
            &format!("{prefix}{from}"),
            &[FORM, ("x-request-id", REQUEST_ID)],
            &code_form(&pkce().1, "s"),
        );
        assert_eq!(response.status, 307, "{prefix}{from}");
        assert_eq!(
            response.header("location"),
            Some(format!("http://{}{prefix}{to}", emu.addr()).as_str())
        );
    }
    let counters = emu.counters();
    assert_eq!(counters.legacy_redirects, 4);
    assert_eq!(counters.cn.legacy_redirects, 2);
    // Nothing was processed: a redirect is not a device-code request.
    assert_eq!(counters.code_requests, 0);
}

#[test]
fn legacy_paths_are_served_directly_when_redirects_are_off() {
    let emu = Emulator::start(EmulatorConfig {
        redirect_legacy_paths: false,
        auto_approve: true,
        ..EmulatorConfig::default()
    });
    let (verifier, challenge) = pkce();
    let response = http(
        &emu,
        "POST",
        "/oauth/code",
        &[FORM, ("x-request-id", REQUEST_ID)],
        &code_form(&challenge, "s"),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let user_code = response.json()["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = http(
        &emu,
        "POST",
        "/oauth/token",
        &[FORM],
        &form(&[
            ("grant_type", LOGIN_GRANT),
            ("client_id", CLIENT_ID),
            ("user_code", &user_code),
            ("code_verifier", &verifier),
        ]),
    );
    assert_eq!(token.status, 200);
    assert_eq!(token.json()["status"], "success");
    assert_eq!(emu.counters().legacy_redirects, 0);
}

// ---------------------------------------------------------------------------------------------
// Device code
// ---------------------------------------------------------------------------------------------

#[test]
fn device_code_answers_the_contract_fields() {
    let emu = emulator();
    let body = device_code(&emu, "", &pkce().1);
    let user_code = body["user_code"].as_str().unwrap_or_default();
    assert!(!user_code.is_empty());
    assert_eq!(
        body["verification_uri"],
        format!("{}/verify?user_code={user_code}", emu.url())
    );
    assert_eq!(body["interval"], 2000);
    assert_eq!(body["state"], "state-123");
    assert!(body["expired_in"].as_i64().unwrap_or(0) > 1_000_000_000_000);
    assert_eq!(emu.pending_user_codes(), vec![user_code.to_string()]);

    let cn = device_code(&emu, "/cn", &pkce().1);
    assert!(cn["verification_uri"]
        .as_str()
        .unwrap_or_default()
        .starts_with(&format!("{}/verify?", emu.cn_url())));
    assert_eq!(emu.counters().cn.code_requests, 1);
}

#[test]
fn device_code_rejects_bad_or_missing_parameters_with_400_json() {
    let emu = emulator();
    let challenge = pkce().1;
    let good: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("scope", SCOPE),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "s"),
    ];
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        http(&emu, "POST", "/oauth2/device/code", headers, body)
    };
    let with_id = [FORM, ("x-request-id", REQUEST_ID)];

    // Each field missing, then each field wrong.
    for i in 0..good.len() {
        let mut fields = good.clone();
        let (name, _) = fields.remove(i);
        let response = post(&with_id, &form(&fields));
        assert_eq!(response.status, 400, "without {name}");
        let body = response.json();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains(name),
            "{body}"
        );
    }
    for (name, bad) in [
        ("response_type", "token"),
        ("client_id", "someone-else"),
        ("scope", "group_id profile"),
        ("code_challenge", "too-short"),
        (
            "code_challenge",
            "=========================================ab",
        ),
        ("code_challenge_method", "plain"),
        ("state", ""),
    ] {
        let fields: Vec<(&str, &str)> = good
            .iter()
            .map(|(k, v)| (*k, if *k == name { bad } else { *v }))
            .collect();
        let response = post(&with_id, &form(&fields));
        assert_eq!(response.status, 400, "{name}={bad}");
        assert!(response.json()["base_resp"]["status_msg"].is_string());
    }
    let body = form(&good);
    assert_eq!(post(&[FORM], &body).status, 400, "no x-request-id");
    assert_eq!(
        post(&[FORM, ("x-request-id", "not-a-uuid")], &body).status,
        400
    );
    assert_eq!(
        post(
            &[
                ("x-request-id", REQUEST_ID),
                ("content-type", "application/json")
            ],
            &body
        )
        .status,
        400,
        "not a form"
    );
    assert_eq!(post(&with_id, b"a=%zz").status, 400, "bad escape");
    assert_eq!(
        post(&with_id, &[b'a', b'=', 0xff, 0xfe]).status,
        400,
        "not UTF-8"
    );
    assert_eq!(
        http(&emu, "GET", "/oauth2/device/code", &[], b"").status,
        405
    );
    assert_eq!(post(&with_id, &body).status, 200, "the good request");
    assert_eq!(emu.counters().code_requests, 19);
}

// ---------------------------------------------------------------------------------------------
// Login poll
// ---------------------------------------------------------------------------------------------

#[test]
fn login_is_pending_until_approved_then_exchanged_once() {
    let emu = Emulator::start(EmulatorConfig {
        notification_message: Some("Welcome to MiniMax".into()),
        resource_url: Some("https://api.minimax.io/anthropic".into()),
        ..EmulatorConfig::default()
    });
    let (verifier, challenge) = pkce();
    let code = device_code(&emu, "", &challenge);
    let user_code = code["user_code"].as_str().unwrap_or_default();

    let pending = poll(&emu, "", user_code, &verifier);
    assert_eq!(pending.status, 200);
    assert_eq!(pending.json(), json!({"status": "pending"}));

    assert!(emu.approve(user_code));
    assert!(!emu.approve(user_code), "already decided");
    assert!(emu.pending_user_codes().is_empty());

    let done = poll(&emu, "", user_code, &verifier);
    assert_eq!(done.status, 200);
    let body = done.json();
    assert_eq!(body["status"], "success");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["notification_message"], "Welcome to MiniMax");
    assert_eq!(body["resource_url"], "https://api.minimax.io/anthropic");
    let access = body["access_token"].as_str().unwrap_or_default();
    let refresh_token = body["refresh_token"].as_str().unwrap_or_default();
    assert!(access.starts_with("mm-at-") && access.len() >= 32);
    assert!(refresh_token.starts_with("mm-rt-") && refresh_token.len() >= 32);

    let again = poll(&emu, "", user_code, &verifier);
    assert_eq!(again.status, 400, "a user code is exchanged once");
    assert_eq!(again.json()["error"], "invalid_grant");

    let counters = emu.counters();
    assert_eq!(counters.token_polls, 3);
    assert_eq!(counters.polls_pending, 1);
    assert_eq!(counters.logins_approved, 1);
    assert_eq!(counters.logins_completed, 1);
}

#[test]
fn pkce_check_rejects_a_wrong_or_missing_verifier() {
    let emu = Emulator::start(EmulatorConfig {
        auto_approve: true,
        ..EmulatorConfig::default()
    });
    let (verifier, challenge) = pkce();
    let (other_verifier, _) = pkce();
    let user_code = device_code(&emu, "", &challenge)["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let wrong = poll(&emu, "", &user_code, &other_verifier);
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json()["error"], "invalid_grant");
    let missing = http(
        &emu,
        "POST",
        "/oauth2/token",
        &[FORM],
        &form(&[
            ("grant_type", LOGIN_GRANT),
            ("client_id", CLIENT_ID),
            ("user_code", &user_code),
        ]),
    );
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"], "invalid_grant");
    // The challenge itself is not the verifier.
    assert_eq!(poll(&emu, "", &user_code, &challenge).status, 400);

    // A wrong verifier does not burn the code.
    let right = poll(&emu, "", &user_code, &verifier);
    assert_eq!(right.json()["status"], "success");
}

#[test]
fn unknown_user_code_and_wrong_client_are_rejected() {
    let emu = emulator();
    let response = poll(&emu, "", "NOPE-NOPE", &pkce().0);
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({"base_resp": {"status_code": 1004, "status_msg": "invalid user code"}})
    );

    // A code of one region is unknown in the other.
    let (verifier, challenge) = pkce();
    let user_code = device_code(&emu, "", &challenge)["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(poll(&emu, "/cn", &user_code, &verifier).status, 400);

    let wrong_client = http(
        &emu,
        "POST",
        "/oauth2/token",
        &[FORM],
        &form(&[
            ("grant_type", LOGIN_GRANT),
            ("client_id", "x"),
            ("user_code", &user_code),
            ("code_verifier", &verifier),
        ]),
    );
    assert_eq!(wrong_client.status, 400);
    assert_eq!(wrong_client.json()["error"], "invalid_client");

    let unsupported = http(
        &emu,
        "POST",
        "/oauth2/token",
        &[FORM],
        &form(&[("grant_type", "password"), ("client_id", CLIENT_ID)]),
    );
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.json()["error"], "unsupported_grant_type");
}

#[test]
fn expired_user_code_is_rejected() {
    let emu = Emulator::start(EmulatorConfig {
        code_ttl_ms: 100,
        ..EmulatorConfig::default()
    });
    let (verifier, challenge) = pkce();
    let user_code = device_code(&emu, "", &challenge)["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    std::thread::sleep(Duration::from_millis(150));
    assert!(emu.pending_user_codes().is_empty());
    assert!(
        !emu.approve(&user_code),
        "an expired code cannot be approved"
    );
    let response = poll(&emu, "", &user_code, &verifier);
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json()["base_resp"]["status_msg"],
        "user code expired"
    );
}

#[test]
fn denied_login_answers_status_error() {
    let emu = emulator();
    let (verifier, challenge) = pkce();
    let user_code = device_code(&emu, "/cn", &challenge)["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(emu.deny(&user_code));
    let response = poll(&emu, "/cn", &user_code, &verifier);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({"status": "error", "base_resp": {"status_code": 1001, "status_msg": "user denied authorization"}})
    );
    assert_eq!(emu.counters().cn.logins_denied, 1);
}

#[test]
fn auto_approve_waits_for_the_configured_number_of_pending_answers() {
    let emu = Emulator::start(EmulatorConfig {
        auto_approve: true,
        approve_after_polls: 2,
        ..EmulatorConfig::default()
    });
    let (verifier, challenge) = pkce();
    let user_code = device_code(&emu, "", &challenge)["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let statuses: Vec<Value> = (0..3)
        .map(|_| poll(&emu, "", &user_code, &verifier).json()["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!("pending"), json!("pending"), json!("success")]
    );
}

#[test]
fn wrong_state_echoes_a_different_state() {
    let emu = Emulator::start(EmulatorConfig {
        wrong_state: true,
        ..EmulatorConfig::default()
    });
    let body = device_code(&emu, "", &pkce().1);
    let state = body["state"].as_str().unwrap_or_default();
    assert!(!state.is_empty());
    assert_ne!(state, "state-123");
}

#[test]
fn expired_in_follows_each_encoding() {
    let tolerance_ms = 5_000;
    for encoding in [
        ExpiryEncoding::UnixMs,
        ExpiryEncoding::UnixSeconds,
        ExpiryEncoding::TtlSeconds,
    ] {
        let emu = Emulator::start(EmulatorConfig {
            expiry_encoding: encoding,
            auto_approve: true,
            code_ttl_ms: 600_000,
            access_ttl_ms: 900_000,
            ..EmulatorConfig::default()
        });
        let (verifier, challenge) = pkce();
        let now = now_ms();
        let code = device_code(&emu, "", &challenge);
        let token = poll(
            &emu,
            "",
            code["user_code"].as_str().unwrap_or_default(),
            &verifier,
        )
        .json();
        let code_expiry = code["expired_in"].as_i64().unwrap_or(-1);
        let token_expiry = token["expired_in"].as_i64().unwrap_or(-1);
        let refresh_response = refresh(
            &emu,
            "",
            token["refresh_token"].as_str().unwrap_or_default(),
        )
        .json();
        let refresh_expiry = refresh_response["expired_in"].as_i64().unwrap_or(-1);
        let near = |got: i64, want: i64, unit: i64| (got - want).abs() <= tolerance_ms / unit;
        match encoding {
            ExpiryEncoding::UnixMs => {
                assert!(near(code_expiry, now + 600_000, 1), "{code_expiry}");
                assert!(near(token_expiry, now + 900_000, 1), "{token_expiry}");
                assert!(near(refresh_expiry, now + 900_000, 1), "{refresh_expiry}");
            }
            ExpiryEncoding::UnixSeconds => {
                assert!(
                    near(code_expiry, (now + 600_000) / 1000, 1000),
                    "{code_expiry}"
                );
                assert!(
                    near(token_expiry, (now + 900_000) / 1000, 1000),
                    "{token_expiry}"
                );
                assert!(near(refresh_expiry, (now + 900_000) / 1000, 1000));
            }
            ExpiryEncoding::TtlSeconds => {
                assert_eq!(code_expiry, 600);
                assert_eq!(token_expiry, 900);
                assert_eq!(refresh_expiry, 900);
            }
        }
    }
}

#[test]
fn ttl_seconds_never_sends_zero_for_a_live_token() {
    assert_eq!(
        state::encode_expiry(ExpiryEncoding::TtlSeconds, 1_500, 1_000),
        1
    );
    assert_eq!(
        state::encode_expiry(ExpiryEncoding::UnixSeconds, 1_999, 0),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

#[test]
fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let emu = emulator();
    let (access0, refresh0) = login(&emu, "");

    let first = refresh(&emu, "", &refresh0);
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    assert_eq!(first["status"], "success");
    let access1 = first["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let refresh1 = first["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(access1, access0);
    assert_ne!(refresh1, refresh0);
    assert!(refresh1.starts_with("mm-rt-"));

    // Both access tokens work until the family is revoked.
    assert_eq!(
        messages(
            &emu,
            "",
            &[("authorization", &bearer(&access0))],
            &hello("a")
        )
        .status,
        200
    );
    assert_eq!(
        messages(
            &emu,
            "",
            &[("authorization", &bearer(&access1))],
            &hello("b")
        )
        .status,
        200
    );

    let reused = refresh(&emu, "", &refresh0);
    assert_eq!(reused.status, 400);
    assert_eq!(reused.json()["error"], "refresh_token_reused");

    // The whole family is gone: the current refresh token and every access token.
    let current = refresh(&emu, "", &refresh1);
    assert_eq!(current.status, 400);
    assert_eq!(current.json()["error"], "invalid_grant");
    for access in [&access0, &access1] {
        let response = messages(&emu, "", &[("authorization", &bearer(access))], &hello("c"));
        assert_eq!(response.status, 401);
    }

    // Another login is not affected.
    let (other_access, other_refresh) = login(&emu, "");
    assert_eq!(refresh(&emu, "", &other_refresh).status, 200);
    assert_eq!(
        messages(
            &emu,
            "",
            &[("authorization", &bearer(&other_access))],
            &hello("d")
        )
        .status,
        200
    );

    let counters = emu.counters();
    assert_eq!(counters.refresh_requests, 4);
    assert_eq!(counters.refresh_success, 2);
    assert_eq!(counters.refresh_reused, 1);
    assert_eq!(counters.refresh_invalid_grant, 1);
}

#[test]
fn unknown_refresh_token_is_invalid_grant_and_regions_are_separate() {
    let emu = emulator();
    let response = refresh(&emu, "", "mm-rt-does-not-exist-000000000000000000");
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"], "invalid_grant");

    let (_, cn_refresh) = emu.issue_tokens("cn", 60_000);
    assert_eq!(
        refresh(&emu, "", &cn_refresh).status,
        400,
        "cn token at global"
    );
    assert_eq!(refresh(&emu, "/cn", &cn_refresh).status, 200);
    let counters = emu.counters();
    assert_eq!(counters.global.refresh_invalid_grant, 2);
    assert_eq!(counters.cn.refresh_success, 1);

    let missing = http(
        &emu,
        "POST",
        "/oauth2/token",
        &[FORM],
        &form(&[("grant_type", "refresh_token"), ("client_id", CLIENT_ID)]),
    );
    assert_eq!(missing.status, 400);
}

#[test]
fn omitted_refresh_token_keeps_the_presented_one_current() {
    let emu = Emulator::start(EmulatorConfig {
        omit_refresh_token_on_refresh: true,
        ..EmulatorConfig::default()
    });
    let (_, refresh_token) = emu.issue_tokens("global", 60_000);
    for _ in 0..2 {
        let response = refresh(&emu, "", &refresh_token);
        assert_eq!(response.status, 200);
        let body = response.json();
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert!(body["access_token"]
            .as_str()
            .unwrap_or_default()
            .starts_with("mm-at-"));
    }
    assert_eq!(emu.counters().refresh_reused, 0);
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[test]
fn messages_answer_the_anthropic_shape_with_a_deterministic_reply() {
    let emu = emulator();
    let (access, _) = emu.issue_tokens("global", 60_000);
    let response = messages(
        &emu,
        "",
        &[
            ("authorization", &bearer(&access)),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
        ],
        &json!({
            "model": "MiniMax-M2.7-highspeed",
            "max_tokens": 1024,
            "system": "be brief",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "ping "}, {"type": "text", "text": "pong"}]},
            ],
        }),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert!(body["id"].as_str().unwrap_or_default().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "MiniMax-M2.7-highspeed");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Hello from the MiniMax emulator. You said: ping pong"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert!(body["usage"]["input_tokens"].as_u64().unwrap_or(0) > 0);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0);

    let last = emu
        .counters()
        .last_messages_request
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(last.path, "/anthropic/v1/messages");
    assert_eq!(last.auth, AuthStyle::Bearer);
    assert_eq!(last.status, 200);
    assert_eq!(last.anthropic_version.as_deref(), Some("2023-06-01"));
    assert_eq!(
        last.anthropic_beta.as_deref(),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(last.model.as_deref(), Some("MiniMax-M2.7-highspeed"));
}

#[test]
fn messages_reject_missing_expired_and_misplaced_credentials_with_401() {
    let emu = Emulator::start(EmulatorConfig {
        access_ttl_ms: 1_000,
        ..EmulatorConfig::default()
    });
    let unauthorized = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid or expired token"}});

    let none = messages(&emu, "", &[], &hello("x"));
    assert_eq!(none.status, 401);
    assert_eq!(none.json(), unauthorized);

    // Short-lived by configuration.
    let (short, _) = login(&emu, "");
    assert_eq!(
        messages(&emu, "", &[("authorization", &bearer(&short))], &hello("x")).status,
        200
    );
    // A second later on the emulator's clock.
    emu.set_config(|c| c.clock_offset_ms += 1_100);
    assert_eq!(
        messages(&emu, "", &[("authorization", &bearer(&short))], &hello("x")).status,
        401
    );

    // Born expired.
    let (dead, _) = emu.issue_tokens("global", 0);
    assert_eq!(
        messages(&emu, "", &[("authorization", &bearer(&dead))], &hello("x")).status,
        401
    );

    // Expired server-side; tokens issued afterwards work.
    let (live, _) = emu.issue_tokens("global", 60_000);
    emu.expire_all_access_tokens();
    assert_eq!(
        messages(&emu, "", &[("authorization", &bearer(&live))], &hello("x")).status,
        401
    );
    let (fresh, _) = emu.issue_tokens("global", 60_000);
    assert_eq!(
        messages(&emu, "", &[("authorization", &bearer(&fresh))], &hello("x")).status,
        200
    );

    // An access token is not an API key, and not valid in the other region.
    let as_key = messages(&emu, "", &[("x-api-key", &fresh)], &hello("x"));
    assert_eq!(as_key.status, 401);
    assert_eq!(
        emu.counters().last_messages_request.map(|r| r.auth),
        Some(AuthStyle::ApiKey)
    );
    assert_eq!(
        messages(
            &emu,
            "/cn",
            &[("authorization", &bearer(&fresh))],
            &hello("x")
        )
        .status,
        401
    );
    assert_eq!(
        messages(&emu, "", &[("authorization", &fresh)], &hello("x")).status,
        401,
        "no scheme"
    );

    emu.add_api_key("sk-emulator-test-key");
    assert_eq!(
        messages(
            &emu,
            "",
            &[("x-api-key", "sk-emulator-test-key")],
            &hello("x")
        )
        .status,
        200
    );
    assert_eq!(
        messages(
            &emu,
            "/cn",
            &[("x-api-key", "sk-emulator-test-key")],
            &hello("x")
        )
        .status,
        200
    );

    let counters = emu.counters();
    assert_eq!(counters.messages_unauthorized, 7);
    assert_eq!(counters.messages_requests, 11);
}

#[test]
fn messages_validate_headers_and_body_with_400() {
    let emu = emulator();
    let (access, _) = emu.issue_tokens("global", 60_000);
    let auth = bearer(&access);

    let no_version = http(
        &emu,
        "POST",
        "/anthropic/v1/messages",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        hello("x").to_string().as_bytes(),
    );
    assert_eq!(no_version.status, 400);
    assert_eq!(no_version.json()["error"]["type"], "invalid_request_error");

    let cases = [
        json!({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "claude-3-opus", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "MiniMax-M2.7", "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "MiniMax-M2.7", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "MiniMax-M2.7", "max_tokens": 131_073, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "MiniMax-M2.7", "max_tokens": 1}),
        json!({"model": "MiniMax-M2.7", "max_tokens": 1, "messages": []}),
        json!({"model": "MiniMax-M2.7", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}),
        json!({"model": "MiniMax-M2.7", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]}),
        json!({"model": "MiniMax-M2.7", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
        json!([1, 2, 3]),
    ];
    for body in &cases {
        let response = messages(&emu, "", &[("authorization", &auth)], body);
        assert_eq!(response.status, 400, "{body}");
        let error = response.json();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(error["error"]["message"].is_string());
    }
    let not_json = http(
        &emu,
        "POST",
        "/anthropic/v1/messages",
        &[
            ("authorization", &auth),
            ("anthropic-version", "2023-06-01"),
        ],
        b"{\"model\": ",
    );
    assert_eq!(not_json.status, 400);
    assert_eq!(emu.counters().messages_invalid, cases.len() as u64 + 2);
    assert_eq!(
        http(&emu, "GET", "/anthropic/v1/messages", &[], b"").status,
        405
    );
}

#[test]
fn streaming_follows_the_anthropic_event_order() {
    let emu = Emulator::start(EmulatorConfig {
        stream_event_delay_ms: 2,
        ..EmulatorConfig::default()
    });
    let (access, _) = emu.issue_tokens("cn", 60_000);
    let mut body = hello("stream me");
    body["stream"] = json!(true);
    let response = messages(&emu, "/cn", &[("authorization", &bearer(&access))], &body);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&response.text());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let start = &events[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["role"], "assistant");
    assert!(start["usage"]["input_tokens"].as_u64().unwrap_or(0) > 0);
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(text, format!("{REPLY_PREFIX}stream me"));
    let delta = &events[8].1;
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0);

    let counters = emu.counters();
    assert_eq!(counters.cn.messages_streamed, 1);
    assert_eq!(
        counters.last_messages_request.map(|r| (r.stream, r.path)),
        Some((true, "/cn/anthropic/v1/messages".to_string()))
    );
}

#[test]
fn streaming_can_fail_mid_stream_with_an_error_event() {
    let emu = Emulator::start(EmulatorConfig {
        stream_error_after_chunks: Some(2),
        ..EmulatorConfig::default()
    });
    let (access, _) = emu.issue_tokens("global", 60_000);
    let mut body = hello("x");
    body["stream"] = json!(true);
    let response = messages(&emu, "", &[("authorization", &bearer(&access))], &body);
    assert_eq!(response.status, 200);
    let events = sse_events(&response.text());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "error",
        ]
    );
    assert_eq!(
        events[5].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(emu.counters().stream_errors, 1);
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[test]
fn status_faults_apply_count_times_then_stop() {
    let emu = emulator();
    let (_, refresh_token) = emu.issue_tokens("global", 60_000);
    emu.inject("/oauth2/token", Fault::Status500, 2);
    emu.inject("/oauth2/token", Fault::Status429, 1);

    for _ in 0..2 {
        let response = refresh(&emu, "", &refresh_token);
        assert_eq!(response.status, 500);
        assert!(response.json()["base_resp"].is_object());
    }
    let limited = refresh(&emu, "", &refresh_token);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    // A faulted request was not processed: the token is still current.
    assert_eq!(refresh(&emu, "", &refresh_token).status, 200);

    let counters = emu.counters();
    assert_eq!(counters.faults_injected, 3);
    assert_eq!(counters.refresh_requests, 1);
}

#[test]
fn malformed_json_fault_cuts_the_body() {
    let emu = emulator();
    emu.inject("/v1/messages", Fault::MalformedJson, 1);
    let response = messages(&emu, "", &[], &hello("x"));
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "{\"status\":\"succ");
    assert!(serde_json::from_slice::<Value>(&response.body).is_err());
}

#[test]
fn drop_fault_closes_the_connection_without_a_byte() {
    let emu = emulator();
    let (_, refresh_token) = emu.issue_tokens("global", 60_000);
    emu.inject("/oauth2/token", Fault::DropConnection, 1);
    let started = Instant::now();
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("refresh_token", &refresh_token),
    ]);
    match send_raw(emu.addr(), "POST", "/oauth2/token", &[FORM], &body) {
        Ok(raw) => assert!(raw.is_empty(), "got {:?}", String::from_utf8_lossy(&raw)),
        Err(err) => assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
            "{err}"
        ),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed, not hung"
    );
    // The next request is served normally, on a new connection.
    assert_eq!(refresh(&emu, "", &refresh_token).status, 200);
}

#[test]
fn truncated_fault_sends_less_than_its_content_length() {
    let emu = emulator();
    emu.inject("/oauth2/token", Fault::TruncatedBody, 1);
    let raw = send_raw(
        emu.addr(),
        "POST",
        "/oauth2/token",
        &[FORM],
        &form(&[("grant_type", "refresh_token")]),
    )
    .unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let error = parse_response(&raw).map(|_| ()).unwrap_err();
    assert!(error.contains("body cut short"), "{error}");
    assert!(text.ends_with("\"access_token\":\"mm-at-"), "{text}");
}

#[test]
fn slow_fault_delays_then_answers_normally() {
    let emu = emulator();
    emu.inject(
        "/oauth2/device/code",
        Fault::Slow(Duration::from_millis(300)),
        1,
    );
    let started = Instant::now();
    let body = device_code(&emu, "", &pkce().1);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(body["user_code"].is_string());
    device_code(&emu, "", &pkce().1);
    let counters = emu.counters();
    assert_eq!((counters.faults_injected, counters.code_requests), (1, 2));
}

#[test]
fn faults_match_the_path_after_the_redirect_and_by_region_suffix() {
    let emu = emulator();
    emu.inject("/cn/oauth2/token", Fault::Status500, 1);
    let (_, global_refresh) = emu.issue_tokens("global", 60_000);
    let (_, cn_refresh) = emu.issue_tokens("cn", 60_000);
    assert_eq!(
        refresh(&emu, "", &global_refresh).status,
        200,
        "global untouched"
    );
    // The legacy path is not the suffix: the 307 passes, the redirected request fails.
    let legacy = http(&emu, "POST", "/cn/oauth/token", &[FORM], b"");
    assert_eq!(legacy.status, 307);
    assert_eq!(refresh(&emu, "/cn", &cn_refresh).status, 500);
    assert_eq!(emu.counters().cn.faults_injected, 1);
}

// ---------------------------------------------------------------------------------------------
// Control endpoints, verification page, robustness, lifecycle
// ---------------------------------------------------------------------------------------------

#[test]
fn control_endpoints_drive_the_emulator_over_http() {
    let emu = emulator();

    let config = post_json(
        &emu,
        "/_emulator/config",
        &json!({"auto_approve": true, "access_ttl_ms": 30000, "expiry_encoding": "unix_seconds", "notification_message": "hi"}),
    );
    assert_eq!(config.status, 200, "{}", config.text());
    let current = emu.config();
    assert!(current.auto_approve);
    assert_eq!(current.access_ttl_ms, 30_000);
    assert_eq!(current.expiry_encoding, ExpiryEncoding::UnixSeconds);
    assert_eq!(current.notification_message.as_deref(), Some("hi"));
    assert_eq!(
        get(&emu, "/_emulator/config").json()["access_ttl_ms"],
        30000
    );
    assert_eq!(
        post_json(&emu, "/_emulator/config", &json!({"nope": 1})).status,
        400
    );
    assert_eq!(
        post_json(&emu, "/_emulator/config", &json!({"port": 1})).status,
        400
    );
    assert_eq!(
        post_json(&emu, "/_emulator/config", &json!({"access_ttl_ms": "x"})).status,
        400
    );
    assert_eq!(
        post_json(&emu, "/_emulator/config", &json!({"auto_approve": false})).status,
        200
    );

    let global_code = device_code(&emu, "", &pkce().1)["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cn_code = device_code(&emu, "/cn", &pkce().1)["user_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let all = get(&emu, "/_emulator/pending").json();
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    assert_eq!(get(&emu, "/cn/_emulator/pending").json(), json!([cn_code]));
    assert_eq!(
        get(&emu, "/_emulator/pending?region=global").json(),
        json!([global_code])
    );

    let approved = post_json(
        &emu,
        "/_emulator/approve",
        &json!({"user_code": global_code}),
    );
    assert_eq!(approved.status, 200);
    assert_eq!(approved.json()["ok"], true);
    assert_eq!(
        post_json(
            &emu,
            "/_emulator/approve",
            &json!({"user_code": global_code})
        )
        .status,
        404
    );
    // The verification page's form, as a browser sends it.
    let denied = http(
        &emu,
        "POST",
        "/_emulator/deny",
        &[FORM, ("accept", "text/html")],
        &form(&[("user_code", &cn_code)]),
    );
    assert_eq!(denied.status, 200);
    assert!(denied.text().contains("denied"));
    assert_eq!(
        post_json(&emu, "/_emulator/approve", &json!({})).status,
        400
    );

    let fault = post_json(
        &emu,
        "/_emulator/fault",
        &json!({"path": "/v1/messages", "fault": "429", "count": 1}),
    );
    assert_eq!(fault.status, 200, "{}", fault.text());
    assert_eq!(messages(&emu, "", &[], &hello("x")).status, 429);
    assert_eq!(
        post_json(
            &emu,
            "/_emulator/fault",
            &json!({"path": "/x", "fault": "boom"})
        )
        .status,
        400
    );
    assert_eq!(
        post_json(
            &emu,
            "/_emulator/fault",
            &json!({"path": "/x", "fault": "slow_ms:5", "count": -1})
        )
        .status,
        400
    );

    let issued = post_json(
        &emu,
        "/cn/_emulator/issue-tokens",
        &json!({"access_ttl_ms": 60000}),
    )
    .json();
    assert_eq!(issued["region"], "cn");
    let access = issued["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        messages(
            &emu,
            "/cn",
            &[("authorization", &bearer(&access))],
            &hello("x")
        )
        .status,
        200
    );
    let expired = post_json(&emu, "/_emulator/expire-access-tokens", &json!({}));
    assert_eq!(expired.status, 200);
    assert_eq!(
        messages(
            &emu,
            "/cn",
            &[("authorization", &bearer(&access))],
            &hello("x")
        )
        .status,
        401
    );

    assert_eq!(
        post_json(&emu, "/_emulator/api-keys", &json!({"key": "k-1234567890"})).status,
        200
    );
    assert_eq!(
        messages(&emu, "", &[("x-api-key", "k-1234567890")], &hello("x")).status,
        200
    );

    let counters: Counters = serde_json::from_value(get(&emu, "/_emulator/counters").json())
        .unwrap_or_else(|e| panic!("counters JSON: {e}"));
    assert_eq!(counters, emu.counters());
    assert_eq!(counters.faults_injected, 1);
    assert_eq!(counters.logins_approved, 1);
    assert_eq!(counters.logins_denied, 1);

    assert_eq!(get(&emu, "/_emulator/nope").status, 404);
    assert_eq!(get(&emu, "/_emulator/approve").status, 405);
}

#[test]
fn control_paths_are_never_faulted() {
    let emu = emulator();
    emu.inject("/counters", Fault::DropConnection, 1);
    assert_eq!(get(&emu, "/_emulator/counters").status, 200);
}

#[test]
fn verification_page_offers_approve_and_deny() {
    let emu = emulator();
    let page = get(&emu, "/verify?user_code=AB%3Cx%3E");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("action=\"/_emulator/approve\""));
    assert!(html.contains("action=\"/_emulator/deny\""));
    assert!(
        html.contains("AB&lt;x&gt;") && !html.contains("<x>"),
        "escaped"
    );
}

#[test]
fn garbage_input_never_breaks_the_server() {
    let emu = emulator();
    let paths = [
        "/oauth/code",
        "/oauth2/device/code",
        "/oauth2/token",
        "/cn/oauth2/token",
        "/anthropic/v1/messages",
        "/cn/anthropic/v1/messages",
        "/verify",
        "/_emulator/approve",
        "/_emulator/config",
        "/_emulator/fault",
        "/_emulator/issue-tokens",
        "/cn",
        "/cnx/oauth2/token",
        "/%ff",
    ];
    let bodies: [&[u8]; 8] = [
        b"",
        b"\xff\xfe\x00",
        b"%",
        b"a=%e2%82",
        b"{\"user_code\":",
        b"{\"user_code\":[1,{\"a\":null}],\"path\":5,\"fault\":{}}",
        b"&&&===&",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ];
    let header_sets: [&[(&str, &str)]; 4] = [
        &[],
        &[FORM],
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer"),
        ],
        &[
            ("authorization", "Bearer \u{7f}"),
            ("x-api-key", ""),
            ("anthropic-version", "x"),
        ],
    ];
    for path in paths {
        for body in bodies {
            for headers in header_sets {
                for method in ["POST", "GET", "PUT"] {
                    let raw = send_raw(emu.addr(), method, path, headers, body)
                        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                    let response =
                        parse_response(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                    assert!(
                        response.status < 500,
                        "{method} {path} -> {}",
                        response.status
                    );
                }
            }
        }
    }
    // The server may close before reading all of an oversized body, so the client can see a
    // reset instead of the 413; either way the server must stay up.
    let huge = vec![b'a'; (1 << 20) + 10];
    if let Ok(raw) = send_raw(emu.addr(), "POST", "/oauth2/token", &[FORM], &huge) {
        if let Ok(response) = parse_response(&raw) {
            assert_eq!(response.status, 413);
        }
    }
    assert_eq!(get(&emu, "/healthz").status, 200);
}

#[test]
fn dropping_the_emulator_frees_the_port() {
    let emu = emulator();
    let addr = emu.addr();
    // An idle keep-alive connection and a slow request in flight must not hold up the drop.
    let _idle = TcpStream::connect(addr);
    emu.inject("/oauth2/token", Fault::Slow(Duration::from_secs(30)), 1);
    let slow = std::thread::spawn(move || send_raw(addr, "POST", "/oauth2/token", &[FORM], b""));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(emu);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(addr).is_err());
    assert!(slow
        .join()
        .map(|r| r.unwrap_or_default().is_empty())
        .unwrap_or(false));
}

#[test]
fn emulators_run_side_by_side_with_separate_state() {
    let a = emulator();
    let b = emulator();
    assert_ne!(a.addr(), b.addr());
    let (access, _) = a.issue_tokens("global", 60_000);
    assert_eq!(
        messages(&a, "", &[("authorization", &bearer(&access))], &hello("x")).status,
        200
    );
    assert_eq!(
        messages(&b, "", &[("authorization", &bearer(&access))], &hello("x")).status,
        401
    );
    assert_eq!(a.inference_url(), format!("{}/anthropic", a.url()));
    assert_eq!(a.cn_url(), format!("{}/cn", a.url()));
}

#[test]
fn fault_and_expiry_names_parse_like_the_control_endpoint() {
    assert_eq!("500".parse(), Ok(Fault::Status500));
    assert_eq!("drop".parse(), Ok(Fault::DropConnection));
    assert_eq!(
        "slow_ms:1500".parse(),
        Ok(Fault::Slow(Duration::from_millis(1500)))
    );
    assert!("slow_ms:x".parse::<Fault>().is_err());
    assert_eq!(
        Fault::Slow(Duration::from_millis(7)).to_string(),
        "slow_ms:7"
    );
    assert_eq!("ttl_seconds".parse(), Ok(ExpiryEncoding::TtlSeconds));
    assert!("seconds".parse::<ExpiryEncoding>().is_err());
    assert_eq!(http::mask("mm-at-abcdefghijklmnopqrstuvwxyz"), "mm-…wxyz");
    assert_eq!(http::mask("short"), "…");
}

#[test]
fn the_handle_is_shareable_and_usable_from_async_code() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Emulator>();

    // End-to-end tests often live inside a tokio runtime; starting and dropping the emulator
    // there must neither panic nor deadlock.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let emu = emulator();
        let addr = emu.addr();
        let status = tokio::task::spawn_blocking(move || {
            send_raw(addr, "GET", "/healthz", &[], b"")
                .ok()
                .and_then(|raw| parse_response(&raw).ok())
                .map(|r| r.status)
        })
        .await
        .ok()
        .flatten();
        assert_eq!(status, Some(200));
        drop(emu);
    });
}
