//! The second real plugin, minimax-apikey, written only against the SDK: it passes the checks,
//! lives beside minimax-oauth with unambiguous aliases, signs in with a key from stdin or its
//! declared variable, and chats through the host's client.

use crate::support::{lib, Emulator, EmulatorConfig, Home};

#[test]
fn check_passes_on_minimax_apikey() {
    let home = Home::new();
    let r = home
        .run(&["plugins", "check", lib("minimax_apikey").to_str().unwrap()])
        .ok();
    assert!(
        r.stdout
            .contains("plugin minimax-apikey 0.1.0: all 10 checks passed"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains('✗'), "{}", r.stdout);
}

#[test]
fn minimax_api_key_and_minimax_oauth_live_side_by_side() {
    let home = Home::new();
    home.install_minimax();
    let r = home.run(&["plugins", "install", "minimax-apikey"]).ok();
    assert_eq!(
        r.stdout.trim(),
        "installed minimax-apikey 0.1.0 (providers: minimax, minimax-cn)"
    );
    assert!(
        !r.stderr.contains("refused"),
        "no alias clashes: {}",
        r.stderr
    );

    let d = home.run(&["doctor"]).code(1);
    for line in [
        "✓ plugin minimax-oauth 0.1.0 loaded (plugin-api 1.0.0)",
        "✓ plugin minimax-apikey 0.1.0 loaded (plugin-api 1.0.0)",
        "MiniMax (OAuth)  not logged in",
        "MiniMax  not logged in",
        "MiniMax (China)  not logged in",
    ] {
        assert!(d.stdout.contains(line), "missing {line:?} in\n{}", d.stdout);
    }

    // Aliases stay unambiguous across the two plugins.
    for (name, plugin) in [
        ("minimax-china", "minimax-apikey"),
        ("MINIMAX_CN", "minimax-apikey"),
        ("minimax", "minimax-apikey"),
        ("minimax-portal", "minimax-oauth"),
    ] {
        let j = home.run(&["plugins", "info", name, "--json"]).ok().json();
        assert_eq!(j["id"], plugin, "{name}");
        assert!(j["conflicts"].as_array().unwrap().is_empty(), "{j:#}");
    }
    let s = home
        .run(&["auth", "status", "minimax-china", "--json"])
        .code(1)
        .json();
    assert_eq!(s["providers"][0]["provider"], "minimax-cn");

    let key = "sk-cp-e2e-0123456789abcdef";
    let r = home
        .run_stdin(
            &["auth", "add", "minimax", "--api-key-stdin"],
            &format!("{key}\n"),
        )
        .ok();
    assert!(
        r.stdout.contains("Signed in to MiniMax (region global)"),
        "{}",
        r.stdout
    );
    let st = home.run(&["auth", "status", "minimax"]).ok();
    assert!(
        st.stdout
            .contains("logged in with API key sk-…cdef, region global"),
        "{}",
        st.stdout
    );
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout
            .contains("MiniMax  logged in with API key sk-…cdef"),
        "{}",
        d.stdout
    );
    for run in [&r, &st, &d] {
        assert!(
            !run.all().contains(key),
            "the key was printed unmasked:\n{}",
            run.all()
        );
    }
    let stored = &home.auth_json()["providers"]["minimax"];
    assert_eq!(stored["access_token"], key, "{stored:#}");
    // The one command that prints it: for scripts.
    assert_eq!(
        home.run(&["auth", "token", "minimax"]).ok().stdout.trim(),
        key
    );
    // The OAuth provider is untouched.
    home.run(&["auth", "status", "minimax-oauth"]).code(1);
}

#[test]
fn the_declared_key_variable_signs_in_without_stdin() {
    let mut home = Home::new();
    home.run(&["plugins", "install", "minimax-apikey"]).ok();
    let r = home.run(&["auth", "add", "minimax-cn"]).code(2);
    assert!(
        r.stderr
            .contains("--api-key-stdin < key.txt`, or set MINIMAX_CN_API_KEY"),
        "{}",
        r.stderr
    );
    let key = "sk-cn-env-0123456789abcdef";
    home.set_env("MINIMAX_CN_API_KEY", key);
    let r = home.run(&["auth", "add", "minimax-china"]).ok();
    assert!(
        r.stderr.contains("using the API key in MINIMAX_CN_API_KEY"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("Signed in to MiniMax (China) (region cn (China))"),
        "{}",
        r.stdout
    );
    assert!(!r.all().contains(key));
    assert_eq!(
        home.auth_json()["providers"]["minimax-cn"]["access_token"],
        key
    );
}

/// The API-key provider, written only against the SDK, chats through the same host client:
/// the key goes out as `x-api-key` (never as a bearer), to `/anthropic/v1/messages`.
#[test]
fn chat_with_the_minimax_api_key_provider() {
    let emu = Emulator::start(EmulatorConfig::default());
    let key = "sk-cp-chat-0123456789abcdef";
    emu.add_api_key(key);
    let mut home = Home::new();
    home.set_env("MINIMAX_BASE_URL", &emu.inference_url());
    home.run(&["plugins", "install", "minimax-apikey"]).ok();
    home.run_stdin(
        &["auth", "add", "minimax", "--api-key-stdin"],
        &format!("{key}\n"),
    )
    .ok();
    let r = home
        .run(&["chat", "-q", "hello by key", "--provider", "minimax"])
        .ok();
    assert_eq!(
        r.stdout,
        "Hello from the MiniMax emulator. You said: hello by key\n"
    );
    let last = emu.counters().last_messages_request.unwrap();
    assert_eq!(last.path, "/anthropic/v1/messages");
    assert_eq!(format!("{:?}", last.auth), "ApiKey");
    // A wrong key is one clear line and does not wipe the stored key.
    let mut other = Home::new();
    other.set_env("MINIMAX_BASE_URL", &emu.inference_url());
    other.run(&["plugins", "install", "minimax-apikey"]).ok();
    other
        .run_stdin(
            &["auth", "add", "minimax", "--api-key-stdin"],
            "sk-cp-wrong-000000000000\n",
        )
        .ok();
    let r = other
        .run(&["chat", "-q", "hi", "--provider", "minimax"])
        .code(1);
    assert!(r.stderr.contains("error:"), "{}", r.stderr);
    other.run(&["auth", "status", "minimax"]).ok();
}
