//! `hermes chat` in both wire dialects: the `openai-compatible` plugin against a tiny
//! OpenAI-compatible server written here (not the emulator) and against the emulator, error
//! bodies that echo the token, an OAuth provider on `chat_completions` (401 → refresh →
//! retry), a stream that stalls, and an endless stream that must not be kept in memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::support::*;

const KEY: &str = "sk-test-oai-0123456789abcdefXYZ";

/// What the tiny server does with a chat request.
#[derive(Clone)]
enum Mode {
    /// Answer normally (streamed when asked).
    Answer,
    /// 401 with a body that echoes the key, as some servers do.
    Reject,
    /// Send the headers and one chunk, then nothing until the test ends.
    Stall,
    /// Stream this many deltas of 64 KiB, then finish.
    Flood(usize),
}

/// A minimal OpenAI-compatible server on 127.0.0.1, std only, one request per connection.
struct TinyServer {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    /// Bodies of the chat requests received.
    bodies: Arc<Mutex<Vec<Value>>>,
    /// Authorization headers received.
    auths: Arc<Mutex<Vec<String>>>,
    /// Dropped when the test ends: releases stalled connections.
    _hold: mpsc::Sender<()>,
}

/// Method, path, headers (lower-case names) and body.
type Request = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, headers, body))
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

fn chunk(v: &Value) -> String {
    format!("data: {v}\n\n")
}

impl TinyServer {
    fn start(mode: Mode) -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let auths = Arc::new(Mutex::new(Vec::new()));
        let (hold, held) = mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let (m, b, a) = (mode.clone(), bodies.clone(), auths.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (m, b, a, held) = (m.clone(), b.clone(), a.clone(), held.clone());
                std::thread::spawn(move || {
                    let Some((method, path, headers, body)) = read_request(&mut stream) else {
                        return;
                    };
                    let auth = headers
                        .iter()
                        .find(|(k, _)| k == "authorization")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    a.lock().unwrap().push(auth.clone());
                    let mode = m.lock().unwrap().clone();
                    let key_ok = auth == format!("Bearer {KEY}") && !matches!(mode, Mode::Reject);
                    if !key_ok {
                        let body = json!({"error": {"message": format!("Incorrect API key provided: {}", auth.trim_start_matches("Bearer ")), "type": "invalid_request_error", "code": "invalid_api_key"}});
                        respond(
                            &mut stream,
                            "401 Unauthorized",
                            "application/json",
                            body.to_string().as_bytes(),
                        );
                        return;
                    }
                    match (method.as_str(), path.as_str()) {
                        ("GET", "/v1/models") => respond(
                            &mut stream,
                            "200 OK",
                            "application/json",
                            br#"{"object":"list","data":[{"id":"tiny-1","object":"model"}]}"#,
                        ),
                        ("POST", "/v1/chat/completions") => {
                            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            b.lock().unwrap().push(req.clone());
                            let last = req["messages"]
                                .as_array()
                                .and_then(|m| m.last())
                                .and_then(|m| m["content"].as_str())
                                .unwrap_or("")
                                .to_string();
                            let text = format!("tiny says: {last}");
                            let usage = json!({"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16});
                            if req["stream"] != true {
                                let body = json!({"id": "c1", "object": "chat.completion", "model": "tiny-1",
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                                    "usage": usage});
                                respond(
                                    &mut stream,
                                    "200 OK",
                                    "application/json",
                                    body.to_string().as_bytes(),
                                );
                                return;
                            }
                            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
                            let delta = |t: &str| {
                                chunk(
                                    &json!({"model": "tiny-1", "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]}),
                                )
                            };
                            match mode {
                                Mode::Stall => {
                                    let _ = stream.write_all(delta("partial").as_bytes());
                                    let _ = stream.flush();
                                    // Nothing more until the test ends.
                                    let _ = held.lock().unwrap().recv();
                                    return;
                                }
                                Mode::Flood(n) => {
                                    let piece = "y".repeat(64 * 1024);
                                    let one = delta(&piece);
                                    for _ in 0..n {
                                        if stream.write_all(one.as_bytes()).is_err() {
                                            return;
                                        }
                                    }
                                }
                                _ => {
                                    let (a, b2) = text.split_at(text.len() / 2);
                                    let _ = stream.write_all(delta(a).as_bytes());
                                    let _ = stream.write_all(b": keep-alive\n\n");
                                    let _ = stream.write_all(delta(b2).as_bytes());
                                }
                            }
                            let end = chunk(
                                &json!({"model": "tiny-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                            );
                            let _ = stream.write_all(end.as_bytes());
                            if req["stream_options"]["include_usage"] == true {
                                let u = chunk(
                                    &json!({"model": "tiny-1", "choices": [], "usage": usage}),
                                );
                                let _ = stream.write_all(u.as_bytes());
                            }
                            let _ = stream.write_all(b"data: [DONE]\n\n");
                        }
                        _ => respond(&mut stream, "404 Not Found", "application/json", b"{}"),
                    }
                });
            }
        });
        TinyServer {
            port,
            mode,
            bodies,
            auths,
            _hold: hold,
        }
    }
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A home with `openai-compatible` installed by name, its base URL set in config.yaml and the
/// key stored through `--api-key-stdin`.
fn signed_in(base: &str) -> Home {
    let home = Home::new();
    let r = home.run(&["plugins", "install", "openai-compatible"]).ok();
    assert!(
        r.stdout.contains("installed openai-compatible"),
        "{}",
        r.stdout
    );
    home.run(&[
        "config",
        "set",
        "providers.openai-compatible.base_url",
        base,
    ])
    .ok();
    let r = home
        .run_stdin(
            &["auth", "add", "openai-compatible", "--api-key-stdin"],
            &format!("{KEY}\n"),
        )
        .ok();
    assert!(!r.all().contains(KEY), "{}", r.all());
    home
}

#[test]
fn openai_compatible_streams_from_a_server_the_tests_did_not_write() {
    let server = TinyServer::start(Mode::Answer);
    let home = signed_in(&server.base());
    let r = home
        .run(&[
            "chat",
            "--provider",
            "openai-compatible",
            "--model",
            "openai-compatible/tiny-1",
            "--system",
            "S",
            "-q",
            "hi",
        ])
        .ok();
    assert_eq!(r.stdout, "tiny says: hi\n");
    assert_no_secret(&r.all(), &[KEY.to_string()]);
    let bodies = server.bodies();
    let body = bodies.last().unwrap();
    assert_eq!(body["model"], "tiny-1");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "S"})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    let auths = server.auths.lock().unwrap().clone();
    assert!(
        auths.iter().all(|a| a == &format!("Bearer {KEY}")),
        "{auths:?}"
    );

    // Streamed text echoing escape sequences reaches the terminal without them.
    let r = home
        .run(&[
            "chat",
            "--provider",
            "openai-compatible",
            "--model",
            "tiny-1",
            "-q",
            "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}end\nline two",
        ])
        .ok();
    assert_eq!(r.stdout, "tiny says: evil]0;pwned[2Jend\nline two\n");

    // The login is an API key, and is called so.
    let l = home.run(&["auth", "list", "openai-compatible"]).ok();
    assert!(l.stdout.contains("api-key"), "{}", l.stdout);
    assert!(!l.stdout.contains("oauth"), "{}", l.stdout);
    let s = home.run(&["auth", "status", "openai-compatible"]).ok();
    assert!(s.stdout.contains("- login: api-key"), "{}", s.stdout);

    // --json: one whole answer with its usage.
    let j = home
        .run(&[
            "chat",
            "--provider",
            "openai-compat",
            "--model",
            "tiny-1",
            "-q",
            "again",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(j["text"], "tiny says: again");
    assert_eq!(j["usage"]["input_tokens"], 11);
    assert_eq!(j["usage"]["output_tokens"], 5);
    assert_eq!(j["stop_reason"], "end_turn");
    assert_eq!(server.bodies().last().unwrap().get("stream"), None);

    // A 401 whose body echoes the key: one clean line, no key.
    server.set(Mode::Reject);
    let r = home
        .run(&[
            "chat",
            "--provider",
            "openai-compatible",
            "--model",
            "tiny-1",
            "-q",
            "hi",
        ])
        .code(1);
    assert_no_secret(&r.all(), &[KEY.to_string()]);
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains("rejected the API key"), "{}", r.stderr);
    assert!(
        r.stderr.lines().all(|l| l.starts_with("error: ")
            || l.starts_with("help: ")
            || l.starts_with("warning: ")),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn sign_in_with_a_key_the_server_rejects_saves_nothing() {
    let server = TinyServer::start(Mode::Answer);
    let home = Home::new();
    home.run(&["plugins", "install", "openai-compatible"]).ok();
    let mut home = home;
    home.set_env("OPENAI_BASE_URL", &server.base());
    let bad = "sk-wrong-0123456789abcdef";
    let r = home
        .run_stdin(
            &["auth", "add", "openai-compatible", "--api-key-stdin"],
            &format!("{bad}\n"),
        )
        .code(1);
    assert!(r.stderr.contains("rejected the API key"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was saved"), "{}", r.stderr);
    assert_no_secret(&r.all(), &[bad.to_string()]);
    let auth = std::fs::read_to_string(home.path().join("auth.json")).unwrap_or_default();
    assert!(!auth.contains(bad), "{auth}");
    let s = home.run(&["auth", "status", "openai-compatible"]).code(1);
    assert!(s.stdout.contains("not logged in"), "{}", s.stdout);
    // The fix comes from the provider's flow: a key on stdin, not a device-code command.
    assert!(
        s.all()
            .contains("hermes auth add openai-compatible --api-key-stdin < key.txt"),
        "{}",
        s.all()
    );
}

#[test]
fn chat_completions_against_the_emulator_streamed_and_not() {
    let emu = Emulator::start(EmulatorConfig::default());
    emu.add_api_key(KEY);
    let mut home = Home::new();
    home.set_env("OPENAI_BASE_URL", &emu.openai_url());
    home.run(&["plugins", "install", "openai-compatible"]).ok();
    // A key the emulator does not know: its /v1/models answers 401 and nothing is saved.
    let r = home
        .run_stdin(
            &["auth", "add", "openai-compatible", "--api-key-stdin"],
            "sk-unknown-0123456789abcdef\n",
        )
        .code(1);
    assert!(
        r.stderr.contains("rejected the API key (401)"),
        "{}",
        r.stderr
    );
    home.run_stdin(
        &["auth", "add", "openai-compatible", "--api-key-stdin"],
        &format!("{KEY}\n"),
    )
    .ok();
    let r = home
        .run(&[
            "chat",
            "--provider",
            "openai-compatible",
            "--model",
            "any-model",
            "-q",
            "Hello there",
        ])
        .ok();
    assert_eq!(
        r.stdout,
        "Hello from the MiniMax emulator. You said: Hello there\n"
    );
    let j = home
        .run(&[
            "chat",
            "--provider",
            "openai-compatible",
            "--model",
            "any-model",
            "-q",
            "whole",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        j["text"],
        "Hello from the MiniMax emulator. You said: whole"
    );
    assert!(j["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let c = emu.counters();
    assert_eq!(
        (c.models_requests, c.completions_ok, c.completions_streamed),
        (2, 2, 1)
    );
    assert_eq!(c.messages_requests, 0, "nothing went to the Messages API");
}

/// `--provider P` chat that fails; returns stderr.
fn failing_chat(home: &Home, provider: &str, json: bool) -> Run {
    let mut args = vec!["chat", "--provider", provider, "-q", "hi"];
    if json {
        args.push("--json");
    }
    home.run(&args).code(1)
}

#[test]
fn error_bodies_and_stream_errors_never_print_the_token_in_either_dialect() {
    // Anthropic Messages: the MiniMax OAuth login.
    let (emu, home) = minimax(approving());
    login(&home);
    let token = stored(&home)["access_token"].as_str().unwrap().to_string();
    emu.set_config(|c| {
        c.echo_token_in_errors = true;
        c.inference_error_status = Some(400);
    });
    for json in [false, true] {
        let r = failing_chat(&home, "minimax-oauth", json);
        assert!(
            r.stderr
                .contains("API error 400: api_error: request refused for token mm-"),
            "{}",
            r.stderr
        );
        assert_no_secret(&r.all(), std::slice::from_ref(&token));
    }
    emu.set_config(|c| {
        c.inference_error_status = None;
        c.stream_error_after_chunks = Some(1);
    });
    let r = failing_chat(&home, "minimax-oauth", false);
    assert!(
        r.stderr
            .contains("API error: overloaded_error: Overloaded (token mm-"),
        "{}",
        r.stderr
    );
    assert_no_secret(&r.all(), std::slice::from_ref(&token));

    // Chat completions: the openai-compatible key against the same emulator.
    let mut home = Home::new();
    home.set_env("OPENAI_BASE_URL", &emu.openai_url());
    emu.add_api_key(KEY);
    emu.set_config(|c| c.stream_error_after_chunks = None);
    home.run(&["plugins", "install", "openai-compatible"]).ok();
    home.run_stdin(
        &["auth", "add", "openai-compatible", "--api-key-stdin"],
        &format!("{KEY}\n"),
    )
    .ok();
    emu.set_config(|c| c.inference_error_status = Some(429));
    for json in [false, true] {
        let r = failing_chat(&home, "openai-compatible", json);
        assert!(
            r.stderr
                .contains("API error 429: server_error: request refused for key sk-"),
            "{}",
            r.stderr
        );
        assert_no_secret(&r.all(), &[KEY.to_string()]);
    }
    emu.set_config(|c| {
        c.inference_error_status = None;
        c.stream_error_after_chunks = Some(2);
    });
    let r = failing_chat(&home, "openai-compatible", false);
    assert!(
        r.stderr
            .contains("API error: server_error: The server is overloaded (key sk-"),
        "{}",
        r.stderr
    );
    assert_no_secret(&r.all(), &[KEY.to_string()]);
    assert!(
        r.stdout.starts_with("Hello from"),
        "the text before the error was shown: {}",
        r.stdout
    );
}

#[test]
fn an_oauth_provider_on_chat_completions_refreshes_once_on_a_401_and_retries() {
    let emu = Emulator::start(EmulatorConfig::default());
    let mut home = Home::new();
    home.set_env("OAUTH_CHAT_PORTAL_URL", &emu.url());
    home.set_env("OAUTH_CHAT_BASE_URL", &emu.openai_url());
    home.run(&[
        "plugins",
        "install",
        lib("fixture_oauth_chat").to_str().unwrap(),
    ])
    .ok();
    home.run(&["auth", "add", "oauth-chat", "--no-browser"])
        .ok();
    let r = home
        .run(&["chat", "--provider", "oauth-chat", "-q", "first"])
        .ok();
    assert_eq!(
        r.stdout,
        "Hello from the MiniMax emulator. You said: first\n"
    );
    emu.expire_all_access_tokens();
    let r = home
        .run(&[
            "-v",
            "chat",
            "--provider",
            "oauth-chat",
            "-q",
            "still there?",
        ])
        .ok();
    assert_eq!(
        r.stdout,
        "Hello from the MiniMax emulator. You said: still there?\n"
    );
    assert!(
        r.stderr.contains("got 401; the token was refreshed"),
        "{}",
        r.stderr
    );
    let c = emu.counters();
    assert_eq!(
        (
            c.completions_unauthorized,
            c.refresh_success,
            c.completions_ok
        ),
        (1, 1, 2)
    );
}

#[test]
fn a_stream_that_stalls_ends_with_an_error_after_the_idle_timeout() {
    let server = TinyServer::start(Mode::Answer);
    let mut home = signed_in(&server.base());
    server.set(Mode::Stall);
    home.set_env("HERMES_CHAT_IDLE_TIMEOUT_MS", "300");
    let r = home
        .run(&[
            "chat",
            "--provider",
            "openai-compatible",
            "--model",
            "tiny-1",
            "-q",
            "hi",
        ])
        .code(1);
    assert_eq!(
        r.stdout, "partial\n",
        "what came is shown, and its line ended"
    );
    assert!(
        r.stderr
            .contains("stalled: nothing for 0.3 s after 7 characters"),
        "{}",
        r.stderr
    );
}

/// Run `cmd` to its end, reading its stdout; its exit code, the peak resident memory of the
/// program it runs (KiB) and the bytes it printed.
///
/// The peak is the kernel's high-water mark of the process's own memory after `exec`
/// (`VmHWM` in `/proc/<pid>/status`), sampled until the process ends: it only grows, so the
/// last sample is the peak up to a few ms before the end. (`ru_maxrss` from `wait4` would also
/// count the test process's own pages that a forked child holds before it execs.)
fn run_measuring_peak_rss(mut cmd: std::process::Command) -> (i32, u64, u64) {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        peak_kib = peak_kib.max(hwm);
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let printed = reader.join().unwrap();
    (status.code().unwrap_or(-1), peak_kib, printed)
}

#[test]
fn regress_an_endless_stream_is_printed_not_kept() {
    // 96 MiB of text: kept in memory, it would push the process far past the limit below.
    let server = TinyServer::start(Mode::Answer);
    let home = signed_in(&server.base());
    server.set(Mode::Flood(1536));
    let cmd = home.command(&[
        "chat",
        "--provider",
        "openai-compatible",
        "--model",
        "tiny-1",
        "-q",
        "hi",
    ]);
    let (code, peak_kib, printed) = run_measuring_peak_rss(cmd);
    eprintln!("peak RSS of hermes printing 96 MiB: {} KiB", peak_kib);
    assert_eq!(code, 0);
    assert_eq!(printed, 1536 * 64 * 1024 + 1);
    assert!(
        peak_kib < 64 * 1024,
        "hermes peaked at {} MiB while printing a 96 MiB answer",
        peak_kib / 1024
    );
}
