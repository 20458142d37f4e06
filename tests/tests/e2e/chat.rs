//! `hermes chat`, `hermes model` and config.yaml, against the emulator.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::support::*;

fn chatting() -> (Emulator, Home) {
    let (emu, home) = minimax(approving());
    login(&home);
    (emu, home)
}

#[test]
fn a_streamed_chat_prints_the_answer_as_it_arrives() {
    let (emu, home) = minimax(EmulatorConfig {
        stream_event_delay_ms: 5,
        ..approving()
    });
    login(&home);
    let r = home
        .run(&["chat", "-q", "Hello there", "--provider", "minimax-portal"])
        .ok();
    assert_eq!(
        r.stdout,
        "Hello from the MiniMax emulator. You said: Hello there\n"
    );
    let c = emu.counters();
    let last = c.last_messages_request.clone().expect("a messages request");
    assert_eq!(last.path, "/anthropic/v1/messages");
    assert_eq!(format!("{:?}", last.auth), "Bearer");
    assert!(last.stream);
    assert_eq!(last.anthropic_version.as_deref(), Some("2023-06-01"));
    assert_eq!(
        last.anthropic_beta.as_deref(),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(c.messages_streamed, 1);
}

#[test]
fn usage_and_the_login_used_are_shown_with_v() {
    let (_emu, home) = chatting();
    let r = home
        .run(&["-v", "chat", "-q", "hi", "--provider", "minimax-oauth"])
        .ok();
    assert!(r.stderr.contains("usage: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("login: oauth (the only login)"),
        "{}",
        r.stderr
    );
}

#[test]
fn json_prompt_from_stdin_and_system_prompt() {
    let (_emu, home) = chatting();
    let r = home
        .run_stdin(
            &[
                "chat",
                "-q",
                "-",
                "--provider",
                "minimax-oauth",
                "--json",
                "--system",
                "be brief",
            ],
            "from stdin\n",
        )
        .ok();
    let j = r.json();
    assert_eq!(
        j["text"],
        "Hello from the MiniMax emulator. You said: from stdin"
    );
    assert_eq!(j["provider"], "minimax-oauth");
    assert_eq!(j["stop_reason"], "end_turn");
    assert!(j["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn regress_session_bearer_refreshed_after_server_side_expiry() {
    // Every access token dies server-side: one 401, one refresh, one retry, success.
    let (emu, home) = chatting();
    emu.expire_all_access_tokens();
    let r = home
        .run(&[
            "-v",
            "chat",
            "-q",
            "still there?",
            "--provider",
            "minimax-oauth",
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
        (c.messages_unauthorized, c.refresh_success, c.messages_ok),
        (1, 1, 1)
    );
}

#[test]
fn a_chat_whose_refresh_fails_terminally_quarantines_and_says_how_to_sign_in() {
    let (emu, home) = chatting();
    emu.expire_all_access_tokens();
    revoke_refresh_token(&home);
    let r = home
        .run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
        .code(1);
    assert!(
        r.stderr.contains("refresh token is invalid or revoked"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hermes auth add minimax-oauth"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    assert_eq!(stored(&home)["last_auth_error"]["relogin_required"], true);
    let before = emu.counters();
    home.run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
        .code(1);
    let after = emu.counters();
    assert_eq!(
        (after.refresh_requests, after.messages_requests),
        (before.refresh_requests, before.messages_requests),
        "fails fast"
    );
}

#[test]
fn regress_stale_api_mode_in_config_changes_nothing() {
    let (emu, home) = chatting();
    std::fs::write(
        home.path().join("config.yaml"),
        "model:\n  provider: minimax-portal\n  default: minimax-oauth/MiniMax-M2.7\n  api_mode: chat_completions\nproviders:\n  minimax-oauth:\n    api_mode: chat_completions\n",
    )
    .unwrap();
    home.run(&["chat", "-q", "hi"]).ok();
    let last = emu.counters().last_messages_request.unwrap();
    assert_eq!(last.path, "/anthropic/v1/messages");
    assert_eq!(last.model.as_deref(), Some("MiniMax-M2.7"));
}

#[test]
fn regress_pooled_credentials_use_anthropic_messages() {
    let (emu, home) = chatting();
    home.run(&[
        "auth",
        "add",
        "minimax-oauth",
        "--no-browser",
        "--label",
        "work",
    ])
    .ok();
    std::fs::write(
        home.path().join("config.yaml"),
        "model:\n  api_mode: chat_completions\n",
    )
    .unwrap();
    let r = home
        .run(&[
            "-v",
            "chat",
            "-q",
            "hi",
            "--provider",
            "minimax-oauth",
            "--account",
            "work",
        ])
        .ok();
    assert!(
        r.stderr.contains("login: work (chosen with --account)"),
        "{}",
        r.stderr
    );
    let last = emu.counters().last_messages_request.unwrap();
    assert_eq!(last.path, "/anthropic/v1/messages");
    assert_eq!(format!("{:?}", last.auth), "Bearer");
    // The configured default account is used and named as the reason.
    home.run(&["config", "set", "providers.minimax-oauth.account", "work"])
        .ok();
    let r = home
        .run(&["-v", "chat", "-q", "hi", "--provider", "minimax-oauth"])
        .ok();
    assert!(
        r.stderr
            .contains("login: work (the default account in config.yaml)"),
        "{}",
        r.stderr
    );
}

#[test]
fn api_errors_are_one_clear_line() {
    let (emu, home) = chatting();
    emu.set_config(|c| c.stream_error_after_chunks = Some(1));
    let r = home
        .run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
        .code(1);
    assert!(
        r.stderr
            .contains("error: MiniMax (OAuth) API error: overloaded_error: Overloaded"),
        "{}",
        r.stderr
    );
    emu.set_config(|c| c.stream_error_after_chunks = None);
    let r = home
        .run(&[
            "chat",
            "-q",
            "hi",
            "--provider",
            "minimax-oauth",
            "--model",
            "MiniMax-M9",
        ])
        .code(1);
    assert!(
        r.stderr
            .contains("warning: MiniMax-M9 is not in MiniMax (OAuth)'s model list"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("API error 400: invalid_request_error:"),
        "{}",
        r.stderr
    );
    emu.inject("/v1/messages", Fault::Status500, 1);
    let r = home
        .run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
        .code(1);
    assert!(r.stderr.contains("API error 500"), "{}", r.stderr);
    assert!(r.stderr.lines().count() <= 2, "{}", r.stderr);
    emu.inject("/v1/messages", Fault::DropConnection, 1);
    let r = home
        .run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
        .code(1);
    assert!(r.stderr.contains("failed before an answer"), "{}", r.stderr);
}

#[test]
fn model_names_are_normalised_through_aliases() {
    let (_emu, home) = chatting();
    for (args, provider, model) in [
        (
            vec!["model", "minimax-oauth/MiniMax-M2.7"],
            "minimax-oauth",
            "MiniMax-M2.7",
        ),
        (
            vec!["model", "minimax-portal/MiniMax-M2.7-highspeed"],
            "minimax-oauth",
            "MiniMax-M2.7-highspeed",
        ),
        (
            vec!["model", "minimax-oauth:minimax-m2.7"],
            "minimax-oauth",
            "MiniMax-M2.7",
        ),
        (
            vec!["model", "--provider", "minimax_oauth", "MiniMax-M2.7"],
            "minimax-oauth",
            "MiniMax-M2.7",
        ),
    ] {
        home.run(&args).ok();
        assert_eq!(
            home.run(&["config", "get", "model.provider"])
                .ok()
                .stdout
                .trim(),
            provider,
            "{args:?}"
        );
        assert_eq!(
            home.run(&["config", "get", "model.default"])
                .ok()
                .stdout
                .trim(),
            model,
            "{args:?}"
        );
    }
    // A prefix that is not this provider stays; an unknown model warns but is saved.
    let r = home
        .run(&["model", "--provider", "minimax-oauth", "other/MiniMax-M2.7"])
        .ok();
    assert!(
        r.stderr
            .contains("warning: other/MiniMax-M2.7 is not among"),
        "{}",
        r.stderr
    );
    assert_eq!(
        home.run(&["config", "get", "model.default"])
            .ok()
            .stdout
            .trim(),
        "other/MiniMax-M2.7"
    );
    let r = home.run(&["model", "minimax-oauth/MiniMax-M9"]).ok();
    assert!(
        r.stderr
            .contains("warning: MiniMax-M9 is not among MiniMax (OAuth)'s known models"),
        "{}",
        r.stderr
    );
    // Not on a terminal, `hermes model` shows the choice; --aux shows the aux model.
    assert_eq!(
        home.run(&["model"]).ok().stdout.trim(),
        "minimax-oauth/MiniMax-M9"
    );
    assert_eq!(
        home.run(&["model", "--aux", "--provider", "minimax-portal"])
            .ok()
            .stdout
            .trim(),
        "MiniMax-M2.7-highspeed"
    );
}

#[test]
fn a_malformed_config_yaml_names_line_and_column_and_is_kept() {
    let (_emu, home) = chatting();
    let bad = "model:\n  provider: [minimax-oauth\n  default: x\n";
    std::fs::write(home.path().join("config.yaml"), bad).unwrap();
    let r = home
        .run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
        .code(1);
    assert!(
        r.stderr.contains("config.yaml is not valid YAML at line"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("column"), "{}", r.stderr);
    home.run(&["model", "minimax-oauth/MiniMax-M2.7"]).code(1);
    assert_eq!(home.read("config.yaml"), bad);
}

#[test]
fn config_get_set_path_keep_unknown_keys() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::write(home.path().join("config.yaml"), "ui:\n  theme: dark\n").unwrap();
    home.run(&["config", "set", "model.default", "MiniMax-M2.7"])
        .ok();
    assert_eq!(
        home.run(&["config", "get", "model.default"]).ok().stdout,
        "MiniMax-M2.7\n"
    );
    assert!(home.read("config.yaml").contains("theme: dark"));
    home.run(&["config", "get", "model.nothing"]).code(1);
    assert_eq!(
        home.run(&["config", "path"]).ok().stdout.trim(),
        home.path().join("config.yaml").display().to_string()
    );
}

/// A long session with an injected clock: 50 requests spanning 5 token lifetimes (15 min
/// each; the clock moves 90 s per request) all succeed with exactly 5 refreshes and no 401 —
/// the host takes the token per request. (The Python original froze one bearer per session.)
#[test]
fn regress_long_session_refreshes_per_request() {
    use hermes::auth::{Store, TokenSource};
    use hermes::chat::{ChatClient, ChatRequest, Message};
    use hermes::plugins::runtime::{PluginSet, Scope};

    let (emu, home) = chatting();
    let offset = Arc::new(AtomicI64::new(0));
    let clock: hermes::timefmt::Clock = {
        let offset = Arc::clone(&offset);
        Arc::new(move || hermes::timefmt::now_ms() + offset.load(Ordering::SeqCst))
    };
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("HERMES_HOME".to_string(), home.path().display().to_string());
    vars.insert("MINIMAX_PORTAL_BASE_URL".to_string(), emu.url());
    vars.insert(
        "MINIMAX_INFERENCE_BASE_URL".to_string(),
        emu.inference_url(),
    );
    let env = hermes::config::Env::from_vars(vars).unwrap();
    let out = hermes::output::Output::plain(0);
    let set = PluginSet::load(&env.paths(), Scope::All).unwrap();
    let entry = set.resolve("minimax-oauth").unwrap().clone();
    let settings = hermes::config::Settings::load(&env.paths()).unwrap();
    let provider = set
        .open(
            &entry,
            &env,
            &settings,
            &out,
            hermes::timefmt::Time::with_clock(clock.clone()),
        )
        .unwrap();
    let source =
        TokenSource::new(Store::new(&env.paths()), provider, None, "", out).with_clock(clock);
    let client = ChatClient::new(Arc::new(source)).unwrap();
    let before = emu.counters();
    for i in 1..=50 {
        offset.fetch_add(90_000, Ordering::SeqCst);
        let now = offset.load(Ordering::SeqCst);
        emu.set_config(|c| c.clock_offset_ms = now);
        let req = ChatRequest {
            model: "MiniMax-M2.7".into(),
            max_tokens: 64,
            system: None,
            messages: vec![Message {
                role: "user".into(),
                content: format!("request {i}"),
            }],
            temperature: None,
            stop: Vec::new(),
            stream: i % 2 == 0,
        };
        let reply = client
            .send(&req, &mut |_| {})
            .unwrap_or_else(|e| panic!("request {i}: {}", e.message()));
        assert_eq!(
            reply.text,
            format!("Hello from the MiniMax emulator. You said: request {i}")
        );
        assert!(!reply.retried_after_401, "request {i} met a 401");
    }
    let c = emu.counters();
    assert_eq!(c.refresh_success - before.refresh_success, 5);
    assert_eq!(c.messages_unauthorized - before.messages_unauthorized, 0);
    assert_eq!(c.messages_ok - before.messages_ok, 50);
}

#[test]
fn status_says_which_login_is_used_and_why() {
    let (_emu, mut home) = chatting();
    home.run(&[
        "auth",
        "add",
        "minimax-oauth",
        "--no-browser",
        "--label",
        "work",
    ])
    .ok();
    let r = home.run(&["status"]).ok();
    assert!(r.stdout.contains("[login oauth ("), "{}", r.stdout);
    assert!(
        r.stdout.contains("the first of 2 logins that works]"),
        "{}",
        r.stdout
    );
    home.run(&["config", "set", "providers.minimax-oauth.account", "work"])
        .ok();
    home.run(&["model", "minimax-oauth/MiniMax-M2.7"]).ok();
    let r = home.run(&["status"]).ok();
    assert!(
        r.stdout.contains("MiniMax (OAuth) (default)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("[login work ("), "{}", r.stdout);
    assert!(
        r.stdout.contains("the default account in config.yaml]"),
        "{}",
        r.stdout
    );
    home.set_env("HERMES_ACCOUNT", "1");
    let r = home.run(&["status"]).ok();
    assert!(
        r.stdout.contains("chosen with HERMES_ACCOUNT]"),
        "{}",
        r.stdout
    );
}

#[test]
fn ctrl_c_stops_a_stream_cleanly() {
    use std::io::Read;
    let (emu, home) = minimax(EmulatorConfig {
        stream_event_delay_ms: 400,
        ..approving()
    });
    login(&home);
    let mut child = home
        .command(&[
            "chat",
            "-q",
            "a long answer please",
            "--provider",
            "minimax-oauth",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first streamed text to reach our side of the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 5];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"Hello");
    // SAFETY: plain FFI call on the pid of our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("stopped with Ctrl-C"), "{err}");
    assert!(
        rest.ends_with('\n'),
        "the partial answer ends its line: {rest:?}"
    );
    let printed = format!("Hello{rest}");
    assert!(
        !printed.contains("You said: a long answer please"),
        "the stream was not stopped: {printed:?}"
    );
    assert!(emu.counters().messages_streamed >= 1);
}
