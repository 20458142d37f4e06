//! `hermes serve` driven by the official Anthropic and OpenAI Python SDKs (real clients nobody
//! here wrote) against the emulator.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The SDK versions the tests were written against, pinned so a new release cannot change a
/// result (`.ci/run` installs the same file).
fn requirements() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/serve/requirements.txt")
}

/// A Python with both SDKs: `HERMES_TEST_PYTHON`, else a virtualenv made once under the target
/// directory (pip reaches the package registry; nothing else leaves the machine).
fn sdk_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("HERMES_TEST_PYTHON") {
            return PathBuf::from(p);
        }
        let venv = bin_dir().join("sdk-venv");
        let py = venv.join("bin/python");
        let ready = venv.join(".ready");
        if !ready.is_file() {
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", "--disable-pip-version-check", "-r"])
                    .arg(requirements())
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(
                ok,
                "could not make a virtualenv with the SDKs of {} in {}",
                requirements().display(),
                venv.display()
            );
            std::fs::write(&ready, "").unwrap();
        }
        py
    })
    .clone()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/serve/sdk_client.py")
}

/// One `sdk_client.py serve` for the whole run: importing both SDKs costs seconds of CPU, so
/// they are imported once, and each test's request runs on its own thread there.
struct SdkClient {
    stdin: Mutex<std::process::ChildStdin>,
    waiting: Arc<Mutex<HashMap<u64, mpsc::Sender<Value>>>>,
    next: AtomicU64,
}

impl SdkClient {
    fn get() -> &'static SdkClient {
        static CLIENT: OnceLock<SdkClient> = OnceLock::new();
        CLIENT.get_or_init(|| {
            let mut child = Command::new(sdk_python())
                .arg(script())
                .arg("serve")
                .env_remove("ANTHROPIC_API_KEY")
                .env_remove("OPENAI_API_KEY")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("run the SDK client");
            let waiting: Arc<Mutex<HashMap<u64, mpsc::Sender<Value>>>> = Arc::default();
            let stdin = child.stdin.take().unwrap();
            let stdout = child.stdout.take().unwrap();
            let routes = Arc::clone(&waiting);
            // The process lives as long as the test binary; each answer goes to its caller.
            std::thread::spawn(move || {
                let _child = child;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("SDK client said {line:?}: {e}"));
                    let id = v["id"].as_u64().unwrap();
                    if let Some(tx) = routes.lock().unwrap().remove(&id) {
                        let _ = tx.send(v);
                    }
                }
                // Gone: every caller still waiting learns it from its closed channel.
                routes.lock().unwrap().clear();
            });
            SdkClient {
                stdin: Mutex::new(stdin),
                waiting,
                next: AtomicU64::new(0),
            }
        })
    }

    /// Run `action` with `args`; its JSON answer.
    fn call(&self, action: &str, args: &[&str]) -> Value {
        let id = self.next.fetch_add(1, AtomicOrdering::SeqCst);
        let (tx, rx) = mpsc::channel();
        self.waiting.lock().unwrap().insert(id, tx);
        let line = serde_json::json!({"id": id, "action": action, "args": args}).to_string();
        {
            let mut stdin = self.stdin.lock().unwrap();
            writeln!(stdin, "{line}")
                .and_then(|()| stdin.flush())
                .expect("the SDK client is gone");
        }
        let v = rx.recv().expect("the SDK client ended without answering");
        assert!(
            v.get("crash").is_none(),
            "SDK client failed:\n{}",
            v["crash"]
        );
        v["result"].clone()
    }
}

/// A running `hermes serve --port 0`; stopped on drop. Its stderr is collected.
struct Gateway {
    child: Child,
    url: String,
    key: String,
    stderr: Arc<Mutex<String>>,
    /// Says when the gateway's stderr reached its end.
    stderr_ended: std::sync::mpsc::Receiver<()>,
}

impl Gateway {
    fn start(home: &Home, extra: &[&str]) -> Gateway {
        let mut args = vec!["serve", "--port", "0"];
        args.extend_from_slice(extra);
        Gateway::start_from(home, home.command(&args))
    }

    /// Start `hermes serve` as `command` runs it.
    fn start_from(home: &Home, mut command: Command) -> Gateway {
        let mut child =
            spawn_written_program(command.stdout(Stdio::piped()).stderr(Stdio::piped()));
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        let (ended, stderr_ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let _ = ended.send(());
        });
        let url = first.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "first line: {first:?}"
        );
        let key = home.read("serve.key").trim().to_string();
        Gateway {
            child,
            url,
            key,
            stderr,
            stderr_ended,
        }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Run the SDK client; its JSON answer.
    fn sdk(&self, action: &str, args: &[&str]) -> Value {
        self.sdk_with_key(action, &self.key, args)
    }

    fn sdk_with_key(&self, action: &str, key: &str, args: &[&str]) -> Value {
        let mut all = vec![self.url.as_str(), key];
        all.extend_from_slice(args);
        SdkClient::get().call(action, &all)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What the gateway wrote to stderr, once it holds `needle` (or after `within`): a line
    /// written before the answer was sent may still be in the pipe when the answer arrives.
    fn stderr_with(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.stderr();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the gateway wrote to stderr, once it has exited: the reader may still be
    /// reading the last lines when `wait` returns.
    fn stderr_at_exit(&self) -> String {
        let _ = self.stderr_ended.recv_timeout(Duration::from_secs(10));
        self.stderr()
    }

    /// A raw HTTP/1.1 request; the status and body.
    fn raw(&self, request: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port())).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ANSWER: &str = "Hello from the MiniMax emulator. You said: hello gateway";

fn signed_in() -> (Emulator, Home) {
    let (emu, home) = minimax(approving());
    login(&home);
    (emu, home)
}

#[test]
fn the_anthropic_sdk_gets_whole_and_streamed_answers_and_the_model_list() {
    let (emu, home) = signed_in();
    let gw = Gateway::start(&home, &["-v"]);
    let whole = gw.sdk("messages", &["minimax-oauth/MiniMax-M2.7"]);
    assert_eq!(whole["text"], ANSWER, "{whole}");
    assert_eq!(whole["stop"], "end_turn");
    let streamed = gw.sdk("messages", &["MiniMax-M2.7", "stream"]);
    assert_eq!(streamed["text"], ANSWER, "{streamed}");
    assert_eq!(streamed["stop"], "end_turn");
    // The provider saw its own model name and its own token, not the gateway key.
    let c = emu.counters();
    let last = c.last_messages_request.clone().unwrap();
    assert_eq!(last.model.as_deref(), Some("MiniMax-M2.7"));
    assert_eq!(format!("{:?}", last.auth), "Bearer");
    assert_eq!(c.messages_ok, 2);

    let models = gw.sdk("models", &[]);
    for shape in ["anthropic", "openai"] {
        let ids: Vec<&str> = models[shape]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(ids.contains(&"minimax-oauth/MiniMax-M2.7"), "{models}");
        assert!(ids.contains(&"MiniMax-M2.7"), "{models}");
    }
    // -v logs one line per request, without any secret.
    let line = "serve: POST /v1/messages model=MiniMax-M2.7 provider=minimax-oauth -> 200";
    let log = gw.stderr_with(line, Duration::from_secs(10));
    assert!(log.contains(line), "{log}");
    let stored = stored(&home);
    assert_no_secret(
        &log,
        &[
            stored["access_token"].as_str().unwrap().to_string(),
            stored["refresh_token"].as_str().unwrap().to_string(),
            gw.key.clone(),
        ],
    );
}

#[test]
fn a_401_upstream_is_answered_by_one_refresh_and_a_retry() {
    let (emu, home) = signed_in();
    let gw = Gateway::start(&home, &[]);
    emu.expire_all_access_tokens();
    let r = gw.sdk("messages", &["MiniMax-M2.7"]);
    assert_eq!(r["text"], ANSWER, "{r}");
    let c = emu.counters();
    assert_eq!(
        (c.messages_unauthorized, c.refresh_success, c.messages_ok),
        (1, 1, 1)
    );
}

#[test]
fn a_quarantined_login_is_a_401_that_says_how_to_sign_in() {
    let (emu, home) = signed_in();
    emu.expire_all_access_tokens();
    revoke_refresh_token(&home);
    let gw = Gateway::start(&home, &[]);
    let r = gw.sdk("messages", &["MiniMax-M2.7"]);
    assert_eq!(r["error"], "AuthenticationError", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("hermes auth add minimax-oauth"),
        "{r}"
    );
    assert_eq!(stored(&home)["last_auth_error"]["relogin_required"], true);
}

#[test]
fn a_missing_or_wrong_key_is_a_401_in_each_dialect_and_reaches_no_provider() {
    let (emu, home) = signed_in();
    let gw = Gateway::start(&home, &[]);
    let a = gw.sdk_with_key("messages", "hermes-gw-wrong", &["MiniMax-M2.7"]);
    assert_eq!(
        (a["error"].as_str(), a["status"].as_u64()),
        (Some("AuthenticationError"), Some(401)),
        "{a}"
    );
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("'type': 'authentication_error'"),
        "{a}"
    );
    let o = gw.sdk_with_key("chat", "hermes-gw-wrong", &["MiniMax-M2.7"]);
    assert_eq!(
        (o["error"].as_str(), o["status"].as_u64()),
        (Some("AuthenticationError"), Some(401)),
        "{o}"
    );
    let (status, body) = gw.raw(&format!(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{{}}",
        gw.port()
    ));
    assert_eq!(status, 401, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(emu.counters().messages_requests, 0);
}

#[test]
fn a_foreign_host_or_origin_is_refused() {
    let (emu, home) = signed_in();
    let gw = Gateway::start(&home, &[]);
    let body =
        r#"{"model":"MiniMax-M2.7","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = |host: &str, extra: &str| {
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nx-api-key: {}\r\ncontent-type: application/json\r\n{extra}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            gw.key,
            body.len()
        )
    };
    let (status, text) = gw.raw(&request(&format!("evil.example:{}", gw.port()), ""));
    assert_eq!(status, 403, "{text}");
    let (status, text) = gw.raw(&request(
        &format!("127.0.0.1:{}", gw.port()),
        "origin: https://evil.example\r\n",
    ));
    assert_eq!(status, 403, "{text}");
    assert_eq!(emu.counters().messages_requests, 0);
    // The same request with the right Host and no Origin goes through.
    let (status, text) = gw.raw(&request(&format!("localhost:{}", gw.port()), ""));
    assert_eq!(status, 200, "{text}");
}

#[test]
fn an_unknown_model_is_a_404_that_lists_the_available_ones() {
    let (emu, home) = signed_in();
    let gw = Gateway::start(&home, &[]);
    let r = gw.sdk("messages", &["gpt-9"]);
    assert_eq!(
        (r["error"].as_str(), r["status"].as_u64()),
        (Some("NotFoundError"), Some(404)),
        "{r}"
    );
    let m = r["message"].as_str().unwrap();
    assert!(
        m.contains("gpt-9") && m.contains("minimax-oauth/MiniMax-M2.7"),
        "{m}"
    );
    assert_eq!(emu.counters().messages_requests, 0);
}

#[test]
fn twenty_concurrent_streams_while_the_token_is_due_make_one_refresh() {
    let (emu, home) = signed_in();
    // Make the stored token due (10 s of life left; refresh happens within 60 s of expiry).
    let path = home.path().join("auth.json");
    let mut auth: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let soon = now_ms() + 10_000;
    let p = &mut auth["providers"]["minimax-oauth"];
    p["expires_at"] = Value::String(hermes::timefmt::iso_from_ms(soon).unwrap());
    if p.get("expires_at_ms").is_some() {
        p["expires_at_ms"] = Value::from(soon);
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&auth).unwrap()).unwrap();
    let gw = Gateway::start(&home, &[]);
    let before = emu.counters();
    let r = gw.sdk("concurrent-streams", &["MiniMax-M2.7", "20"]);
    let texts = r["texts"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(texts.len(), 20);
    assert!(texts.iter().all(|t| t == ANSWER), "{r}");
    let after = emu.counters();
    assert_eq!(after.refresh_requests - before.refresh_requests, 1);
    assert_eq!(after.messages_streamed - before.messages_streamed, 20);
    assert_eq!(after.messages_unauthorized, 0);
}

#[test]
fn a_client_that_disconnects_mid_stream_ends_the_upstream_request() {
    // Each event takes 30 s: the whole answer would take minutes.
    let (_emu, home) = minimax(EmulatorConfig {
        stream_event_delay_ms: 30_000,
        ..approving()
    });
    login(&home);
    let gw = Gateway::start(&home, &["-v"]);
    let r = gw.sdk("disconnect", &["MiniMax-M2.7"]);
    assert_eq!(r["first"], "message_start", "{r}");
    // The access line is written when the relay drops the provider's answer: long before the
    // stream could have finished, if the disconnect reached upstream.
    let line = "serve: POST /v1/messages model=MiniMax-M2.7 provider=minimax-oauth -> 200";
    let log = gw.stderr_with(line, Duration::from_secs(25));
    assert!(log.contains(line), "{log}");
}

#[test]
fn the_key_is_made_once_private_and_stable_and_rotates_on_request() {
    let (_emu, home) = signed_in();
    let env1 = home.run(&["serve", "--print-env"]).ok().stdout;
    let key = home.read("serve.key").trim().to_string();
    assert!(
        env1.contains(&format!("export ANTHROPIC_API_KEY={key}")),
        "{env1}"
    );
    assert!(
        env1.contains("export OPENAI_BASE_URL=http://127.0.0.1:8642/v1"),
        "{env1}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.path().join("serve.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let env2 = home.run(&["serve", "--print-env"]).ok().stdout;
    assert_eq!(env1, env2, "the key changed between runs");
    home.run(&["serve", "--print-env", "--rotate-key"]).ok();
    assert_ne!(home.read("serve.key").trim(), key);
    // A key file others can read is refused, not used.
    std::fs::set_permissions(
        home.path().join("serve.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let r = home.run(&["serve", "--print-env"]).code(1);
    assert!(
        r.stderr.contains("can be read by other users"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn the_openai_sdk_reaches_a_messages_provider_through_translation() {
    let (emu, home) = signed_in();
    let gw = Gateway::start(&home, &[]);
    let whole = gw.sdk("chat", &["MiniMax-M2.7", "no", "be brief"]);
    assert_eq!(whole["text"], ANSWER, "{whole}");
    assert_eq!(whole["stop"], "stop");
    assert!(whole["usage"][1].as_u64().unwrap() > 0, "{whole}");
    let streamed = gw.sdk("chat", &["minimax-oauth/MiniMax-M2.7", "stream"]);
    assert_eq!(streamed["text"], ANSWER, "{streamed}");
    assert_eq!(streamed["stop"], "stop");
    assert!(streamed["usage"][1].as_u64().unwrap() > 0, "{streamed}");
    // The provider was asked in its own dialect, at its own path.
    let c = emu.counters();
    let last = c.last_messages_request.clone().unwrap();
    assert_eq!(last.path, "/anthropic/v1/messages");
    assert_eq!(last.model.as_deref(), Some("MiniMax-M2.7"));
    assert!(last.stream);
    assert_eq!(c.messages_ok, 2);
}

#[test]
fn both_sdks_reach_a_chat_completions_provider_as_is_and_through_translation() {
    const KEY: &str = "sk-emulator-0123456789abcdef";
    let emu = Emulator::start(EmulatorConfig::default());
    emu.add_api_key(KEY);
    let mut home = Home::new();
    home.set_env("OPENAI_BASE_URL", &emu.openai_url());
    home.run(&["plugins", "install", "openai-compatible"]).ok();
    home.run_stdin(
        &["auth", "add", "openai-compatible", "--api-key-stdin"],
        &format!("{KEY}\n"),
    )
    .ok();
    let gw = Gateway::start(&home, &["-v"]);
    let model = "openai-compatible/any-model";
    for (action, stream) in [
        ("chat", "no"),
        ("chat", "stream"),
        ("messages", "no"),
        ("messages", "stream"),
    ] {
        let r = gw.sdk(action, &[model, stream]);
        assert_eq!(r["text"], ANSWER, "{action} {stream}: {r}");
        let stop = if action == "chat" { "stop" } else { "end_turn" };
        assert_eq!(r["stop"], stop, "{action} {stream}: {r}");
    }
    let line = "serve: POST /v1/messages model=openai-compatible/any-model provider=openai-compatible -> 200";
    let log = gw.stderr_with(line, Duration::from_secs(10));
    assert!(log.contains(line), "{log}");
    assert_no_secret(&log, &[KEY.to_string(), gw.key.clone()]);
}

#[test]
fn a_feature_that_cannot_cross_dialects_is_a_400_naming_it() {
    let (emu, home) = signed_in();
    let gw = Gateway::start(&home, &[]);
    let r = gw.sdk("chat-tools", &["MiniMax-M2.7"]);
    assert_eq!(
        (r["error"].as_str(), r["status"].as_u64()),
        (Some("BadRequestError"), Some(400)),
        "{r}"
    );
    assert!(r["message"].as_str().unwrap().contains("tool calls"), "{r}");
    assert_eq!(emu.counters().messages_requests, 0);
}

#[test]
fn a_provider_that_echoes_its_token_never_shows_it_to_the_client() {
    let (emu, home) = signed_in();
    let token = stored(&home)["access_token"].as_str().unwrap().to_string();
    emu.set_config(|c| {
        c.echo_token_in_errors = true;
        c.inference_error_status = Some(400);
    });
    let gw = Gateway::start(&home, &[]);
    // Relayed as is (Anthropic to Anthropic) and translated (OpenAI to Anthropic).
    for action in ["messages", "chat"] {
        let r = gw.sdk(action, &["MiniMax-M2.7"]);
        assert_eq!(r["status"], 400, "{action}: {r}");
        let m = r["message"].as_str().unwrap();
        assert!(m.contains("request refused for token mm-"), "{action}: {m}");
        assert_no_secret(m, std::slice::from_ref(&token));
    }
    // An error event inside a stream that is relayed byte for byte.
    emu.set_config(|c| {
        c.inference_error_status = None;
        c.stream_error_after_chunks = Some(1);
    });
    for (action, stream) in [("messages", "stream"), ("chat", "stream")] {
        let r = gw.sdk(action, &["MiniMax-M2.7", stream]);
        let text = r.to_string();
        assert!(r["error"].is_string(), "{action}: {r}");
        assert!(text.contains("Overloaded"), "{action}: {text}");
        assert_no_secret(&text, std::slice::from_ref(&token));
    }
}

#[test]
fn sigterm_lets_a_stream_in_flight_finish_then_exits_0() {
    // About 10 events 200 ms apart: the answer needs ~2 s, within the 5 s drain.
    let (_emu, home) = minimax(EmulatorConfig {
        stream_event_delay_ms: 200,
        ..approving()
    });
    login(&home);
    let mut gw = Gateway::start(&home, &[]);
    let body = r#"{"model":"MiniMax-M2.7","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-api-key: {}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        gw.port(),
        gw.key,
        body.len()
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port())).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    // Wait for the first event, then stop the gateway.
    let mut first = [0u8; 256];
    let n = s.read(&mut first).unwrap();
    assert!(n > 0);
    let pid = gw.child.id() as i32;
    // SAFETY: sends a signal to the child this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(
        rest.contains("message_stop"),
        "the stream was cut short:\n{rest}"
    );
    let status = gw.child.wait().unwrap();
    let log = gw.stderr_at_exit();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("gateway stopped"), "{log}");
}

/// A gateway whose binary is replaced on disk while it runs (an upgrade) still refreshes: its
/// refresh worker is the very binary that runs, not whatever the path holds now.
#[test]
fn a_refresh_after_the_binary_was_replaced_on_disk_runs_the_running_binary() {
    use std::os::unix::fs::PermissionsExt;
    let (emu, home) = signed_in();
    let dir = home.scratch().join("installed");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("hermes");
    std::fs::copy(bin_dir().join("hermes"), &exe).unwrap();
    let template = home.command(&["serve", "--port", "0"]);
    let mut command = Command::new(&exe);
    command.args(template.get_args()).env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            command.env(k, v);
        }
    }
    let gw = Gateway::start_from(&home, command);
    // The upgrade: another program is renamed over the path.
    let next = dir.join("hermes.new");
    std::fs::write(&next, "#!/bin/sh\nexit 97\n").unwrap();
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&next, &exe).unwrap();
    emu.expire_all_access_tokens();
    let body = r#"{"model":"MiniMax-M2.7","max_tokens":64,"messages":[{"role":"user","content":"hello gateway"}]}"#;
    let (status, answer) = gw.raw(&format!(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-api-key: {}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        gw.port(),
        gw.key,
        body.len()
    ));
    assert_eq!(status, 200, "{answer}\n{}", gw.stderr());
    assert!(answer.contains(ANSWER), "{answer}");
    assert_eq!(emu.counters().refresh_success, 1);
}
