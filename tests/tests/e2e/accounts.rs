//! Which login a command uses, and how logins are named: one choice for every command,
//! no silent fallback from a signed-out main login, unique labels that cannot be mistaken for
//! positions, ids or the main login.

use serde_json::Value;

use crate::dashboard::Dash;
use crate::support::*;

fn pool(home: &Home) -> Vec<Value> {
    home.auth_json()["credential_pool"]["minimax-oauth"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn labelled(home: &Home, label: &str) -> Value {
    pool(home)
        .into_iter()
        .find(|e| e["label"] == label)
        .unwrap_or_else(|| panic!("no pool entry {label:?}"))
}

fn add(home: &Home, label: &str) -> Run {
    home.run(&[
        "auth",
        "add",
        "minimax-oauth",
        "--no-browser",
        "--label",
        label,
    ])
}

/// A main login signed out by a dead refresh token, and a healthy extra account "spare".
fn main_quarantined_spare_healthy() -> (Emulator, Home, String) {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 0,
        ..approving()
    });
    login(&home);
    emu.set_config(|c| c.access_ttl_ms = 900_000);
    add(&home, "spare").ok();
    let spare_token = labelled(&home, "spare")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The main login's token is due; the server says its refresh token is dead.
    emu.set_config(|c| c.refresh_echo_status = Some(400));
    let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
    assert!(r.stderr.contains("error:"), "{}", r.stderr);
    emu.set_config(|c| c.refresh_echo_status = None);
    assert!(stored(&home)["last_auth_error"].is_object());
    assert_eq!(stored(&home)["access_token"], Value::Null);
    (emu, home, spare_token)
}

#[test]
fn regress_quarantined_main_login_silently_yields_another_token() {
    let (_emu, home, spare_token) = main_quarantined_spare_healthy();

    // Falling back to the other account is said on stderr, with which and why.
    let r = home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(r.stdout.trim(), spare_token);
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("using login spare"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("needs a new sign-in"), "{}", r.stderr);
    for args in [&["auth", "status", "minimax-oauth"][..], &["status"]] {
        let r = home.run(args);
        assert!(
            r.stderr.contains("using login spare"),
            "{args:?}: {}",
            r.all()
        );
        assert!(r.stdout.contains("spare"), "{args:?}: {}", r.stdout);
    }

    // Asking for the main login by name gets it, quarantined: an error, never another token.
    let r = home
        .run(&["auth", "token", "minimax-oauth", "--account", "oauth"])
        .code(1);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("sign-in required"), "{}", r.stderr);
}

#[test]
fn every_command_honours_the_configured_account() {
    let (emu, home) = minimax(approving());
    login(&home);
    add(&home, "work").ok();
    let main_token = stored(&home)["access_token"].as_str().unwrap().to_string();
    let work_token = labelled(&home, "work")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(main_token, work_token);
    let r = home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(r.stdout.trim(), main_token);

    home.run(&["config", "set", "providers.minimax-oauth.account", "work"])
        .ok();
    let r = home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(r.stdout.trim(), work_token);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let st = home
        .run(&["auth", "status", "minimax-oauth", "--json"])
        .ok()
        .json();
    assert_eq!(st["providers"][0]["account"]["label"], "work", "{st}");
    let s = home.run(&["status"]).ok();
    assert!(
        s.stdout.contains("[login work") && s.stdout.contains("config.yaml"),
        "{}",
        s.stdout
    );
    let d = Dash::start(&home, &[]);
    let list = d.json("GET", "/api/providers/oauth", None, 200);
    assert_eq!(list["providers"][0]["status"]["source_label"], "work");
    drop(d);
    let chat = home
        .run(&["chat", "-q", "hi", "--provider", "minimax-oauth", "-v"])
        .ok();
    assert!(chat.stderr.contains("login: work"), "{}", chat.stderr);
    // The flag still wins over the configuration, and `oauth` names the main login.
    let r = home
        .run(&["auth", "token", "minimax-oauth", "--account", "oauth"])
        .ok();
    assert_eq!(r.stdout.trim(), main_token);
    // A configured account that does not exist is an error, not a silent pick.
    home.run(&["config", "set", "providers.minimax-oauth.account", "gone"])
        .ok();
    let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
    assert!(
        r.stderr
            .contains("no login of MiniMax (OAuth) is called \"gone\""),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // The overview still shows every provider, this one with the problem.
    let s = home.run(&["status"]).ok();
    assert!(
        s.stdout
            .contains("MiniMax (OAuth)  no login of MiniMax (OAuth) is called \"gone\""),
        "{}",
        s.stdout
    );
    let a = home.run(&["auth", "status"]).code(1);
    assert!(a.stderr.contains("is called \"gone\""), "{}", a.stderr);
    assert!(emu.counters().total.messages_ok >= 1);
}

#[test]
fn regress_labels_shadowed_by_positions_and_ids() {
    let (emu, home) = minimax(approving());
    login(&home);
    for bad in ["1", "42", "oauth", "OAuth", "abc123", "", "a\x1b[2Jb"] {
        let r = add(&home, bad).code(2);
        assert!(
            r.stderr.contains("cannot use the label"),
            "{bad:?}: {}",
            r.stderr
        );
    }
    // Refused before any request to the server.
    assert_eq!(emu.counters().total.code_requests, 1);
    // `auth remove p 1` is position 1, the main login, with no label in the way.
    add(&home, "work").ok();
    let r = home.run(&["auth", "remove", "minimax-oauth", "2"]).ok();
    assert!(r.stdout.contains("removed login work"), "{}", r.stdout);
    assert!(stored(&home)["access_token"].is_string());
}

#[test]
fn regress_same_label_twice_makes_two_logins() {
    let (_emu, home) = minimax(approving());
    login(&home);
    add(&home, "work").ok();
    let first = labelled(&home, "work");
    let r = add(&home, "work").ok();
    assert!(
        r.stderr.contains("already called \"work\"") && r.stderr.contains("replaces it"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("replacing the login \"work\""),
        "{}",
        r.stdout
    );
    let entries = pool(&home);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let second = labelled(&home, "work");
    assert_eq!(second["id"], first["id"], "the login keeps its id");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert!(!home
        .read("auth.json")
        .contains(first["refresh_token"].as_str().unwrap()));
    let r = home
        .run(&["auth", "token", "minimax-oauth", "--account", "work"])
        .ok();
    assert_eq!(r.stdout.trim(), second["access_token"].as_str().unwrap());

    // A file written by an older version with one label twice: named, it is an error.
    let mut j = home.auth_json();
    let mut dup = second.clone();
    dup["id"] = "fedcba".into();
    j["credential_pool"]["minimax-oauth"]
        .as_array_mut()
        .unwrap()
        .push(dup);
    std::fs::write(
        home.path().join("auth.json"),
        serde_json::to_string(&j).unwrap(),
    )
    .unwrap();
    let r = home
        .run(&["auth", "token", "minimax-oauth", "--account", "work"])
        .code(1);
    assert!(r.stderr.contains("2 logins"), "{}", r.stderr);
    // Signing in with that label again leaves one "work".
    add(&home, "work").ok();
    let works = pool(&home)
        .into_iter()
        .filter(|e| e["label"] == "work")
        .count();
    assert_eq!(works, 1);
}
