//! The first minutes: an installed layout (`scripts/install`) finds its bundled plugins, and
//! the plugin index never offers the project's test fixtures.

use std::process::Command;

use crate::support::{hermes_bin, lib, Home, Run};

/// `hermes` with `home`'s environment, run from another binary path.
fn run_as(bin: &std::path::Path, home: &Home, args: &[&str]) -> Run {
    let c = home.command(args);
    let mut other = Command::new(bin);
    other.args(args).env_clear();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            other.env(k, v);
        }
    }
    Run::from_output(other.output().expect("run installed hermes"))
}

#[test]
fn an_installed_hermes_finds_its_bundled_plugins_under_lib_hermes_plugins() {
    // The layout scripts/install makes: PREFIX/bin/hermes, PREFIX/lib/hermes/plugins/*.so,
    // with nothing beside the binary.
    let home = Home::new();
    let prefix = home.scratch().join("prefix");
    let plugins = prefix.join("lib/hermes/plugins");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = prefix.join("bin/hermes");
    std::fs::copy(hermes_bin(), &bin).unwrap();
    std::fs::copy(lib("minimax_oauth"), plugins.join("libminimax_oauth.so")).unwrap();

    let r = run_as(&bin, &home, &["plugins", "install", "minimax-oauth"]).ok();
    assert_eq!(
        r.stdout.trim(),
        "installed minimax-oauth 0.1.0 (providers: minimax-oauth)"
    );
    let miss = run_as(&bin, &home, &["plugins", "install", "nope"]);
    assert_ne!(miss.code, 0);
    assert!(
        miss.stderr.contains("it has minimax-oauth"),
        "{}",
        miss.stderr
    );
}

#[test]
fn the_plugin_index_never_offers_test_fixtures() {
    let home = Home::new();
    // The fixtures are built beside the development binary, as the real plugins are.
    assert!(lib("fixture_test_provider").is_file());
    let r = home.run(&["plugins", "install", "nope"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("minimax-oauth"), "{}", r.stderr);
    assert!(!r.stderr.contains("fixture"), "{}", r.stderr);
    let r = home.run(&["plugins", "install", "fixture-test-provider"]);
    assert_ne!(
        r.code, 0,
        "a fixture was installable by name:\n{}",
        r.stdout
    );
    assert!(r.stderr.contains("no plugin called"), "{}", r.stderr);
}

#[test]
fn an_empty_home_says_what_is_missing_and_the_next_command() {
    let home = Home::new();
    let r = home.run(&["auth", "status"]).code(1);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("no provider is installed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hermes plugins install"), "{}", r.stderr);
    assert!(r.stderr.contains("minimax-oauth"), "{}", r.stderr);
    let r = home.run(&["auth", "list"]).ok();
    assert!(
        r.stderr.contains("no provider is installed"),
        "{}",
        r.stderr
    );
    // Installed but not signed in: the fix is said once, not twice.
    home.run(&["plugins", "install", "minimax-oauth"]).ok();
    let r = home.run(&["auth", "status"]).code(1);
    assert_eq!(
        r.stdout.matches("hermes auth add minimax-oauth").count(),
        1,
        "{}",
        r.stdout
    );
}

#[test]
fn model_refuses_a_prefix_that_names_no_provider() {
    let (_emu, home) = crate::support::minimax(crate::support::approving());
    crate::support::login(&home);
    home.run(&["model", "minimax-oauth/MiniMax-M2.7"]).ok();
    let r = home.run(&["model", "openai/gpt-4"]).code(2);
    assert!(
        r.stderr
            .contains("no installed provider is called \"openai\" (installed: minimax-oauth)"),
        "{}",
        r.stderr
    );
    // Nothing was saved.
    let r = home.run(&["config", "get", "model.default"]).ok();
    assert_eq!(r.stdout.trim(), "MiniMax-M2.7");
}

#[test]
fn the_model_picker_asks_again_after_a_number_it_did_not_list() {
    use std::io::Write;
    let (_emu, home) = crate::support::minimax(crate::support::approving());
    crate::support::login(&home);
    // A real terminal: `script` runs hermes on a pseudo-terminal fed from this pipe.
    let mut c = Command::new("script");
    c.args([
        "-qefc",
        &format!("{} model", hermes_bin().display()),
        "/dev/null",
    ])
    .env_clear()
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    for (k, v) in home.command(&[]).get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let mut child = c
        .spawn()
        .expect("script (util-linux) runs hermes on a pseudo-terminal");
    child.stdin.take().unwrap().write_all(b"9\n2\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"9\" is not one of the numbers above"),
        "{text}"
    );
    assert_eq!(text.matches("choose a model [1-2]").count(), 2, "{text}");
    let r = home.run(&["config", "get", "model.default"]).ok();
    assert_eq!(r.stdout.trim(), "MiniMax-M2.7-highspeed", "{text}");
}
