//! The first minutes: an installed layout (`scripts/install`) finds its bundled plugins, and
//! the plugin index never offers the project's test fixtures.

use std::process::{Command, Stdio};

use crate::support::{hermes_bin, lib, spawn_written_program, Home, Run};

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
    let child = spawn_written_program(
        other
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    Run::from_output(child.wait_with_output().expect("run installed hermes"))
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

#[test]
fn logins_are_listed_in_the_users_words_numbered_alike_everywhere() {
    let (_emu, home) = crate::support::minimax(crate::support::approving());
    crate::support::login(&home);
    home.run(&[
        "auth",
        "add",
        "minimax-oauth",
        "--no-browser",
        "--label",
        "work",
    ])
    .ok();
    let r = home.run(&["auth", "list"]).ok();
    assert!(!r.stdout.contains("manual:"), "{}", r.stdout);
    assert!(r.stdout.contains("extra account"), "{}", r.stdout);
    // The source fits its column: the masked tokens line up.
    let at: Vec<usize> = r
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .map(|l| l.find("mm-").expect("a masked token"))
        .collect();
    assert_eq!(at.len(), 2, "{}", r.stdout);
    assert_eq!(at[0], at[1], "{}", r.stdout);
    let r = home.run(&["auth", "status"]).ok();
    assert!(!r.stdout.contains("priority"), "{}", r.stdout);
    assert!(
        r.stdout.contains("the first of 2 logins that works"),
        "{}",
        r.stdout
    );
    // `auth status --json` numbers the login as `auth list --json` does (from 1).
    let status = home.run(&["auth", "status", "--json"]).ok().json();
    let list = home.run(&["auth", "list", "--json"]).ok().json();
    let account = &status["providers"][0]["account"];
    let same = list["providers"][0]["logins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == account["id"])
        .unwrap()
        .clone();
    assert_eq!(account["number"], same["number"]);
    assert_eq!(account["number"], 1);
    let r = home.run(&["auth", "remove", "minimax-oauth", "work"]).ok();
    assert!(!r.all().contains("pool entry"), "{}", r.all());
}

#[test]
fn a_region_the_provider_does_not_have_is_refused_and_reported() {
    let (_emu, home) = crate::support::minimax(crate::support::approving());
    crate::support::login(&home);
    let r = home
        .run(&["config", "set", "providers.minimax-oauth.region", "mars"])
        .code(2);
    assert!(
        r.stderr.contains("MiniMax (OAuth) has no region \"mars\""),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("choose one of: global, cn (China)"),
        "{}",
        r.stderr
    );
    assert!(
        home.run(&["config", "get", "providers.minimax-oauth.region"])
            .code
            == 1
    );
    home.run(&["config", "set", "providers.minimax-oauth.region", "cn"])
        .ok();
    // A key hermes does not read is kept, with a word.
    let r = home
        .run(&["config", "set", "providers.minimax-oauth.colour", "blue"])
        .ok();
    assert!(
        r.stderr.contains("not a setting hermes reads"),
        "{}",
        r.stderr
    );
    let r = home.run(&["doctor"]).ok();
    assert!(
        r.stdout
            .contains("providers.minimax-oauth.colour is not a setting hermes reads"),
        "{}",
        r.stdout
    );
    // A file written by hand: doctor reports the bad value, and counts findings properly.
    std::fs::write(
        home.path().join("config.yaml"),
        "providers:\n  minimax-oauth:\n    region: mars\n",
    )
    .unwrap();
    let r = home.run(&["doctor"]).code(1);
    assert!(
        r.stdout
            .contains("providers.minimax-oauth.region: MiniMax (OAuth) has no region \"mars\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("(fix: hermes config set providers.minimax-oauth.region global)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("1 finding needs action"), "{}", r.stderr);
    // An unknown provider and an unknown region are both usage errors.
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--region", "mars"])
        .code(2);
    assert!(r.stderr.contains("no region"), "{}", r.stderr);
    let r = home.run(&["auth", "add", "nope"]).code(2);
    assert!(r.stderr.contains("unknown provider"), "{}", r.stderr);
}

#[test]
fn very_verbose_logs_each_request_line_without_secrets() {
    let (_emu, home) = crate::support::minimax(crate::support::approving());
    let r = home
        .run(&["-vv", "auth", "add", "minimax-oauth", "--no-browser"])
        .ok();
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("http ")).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("http POST http://127.0.0.1:")
                && l.contains("/oauth2/device/code -> 200 (")
                && l.ends_with(" ms)")),
        "{}",
        r.stderr
    );
    assert!(
        lines.iter().any(|l| l.contains("/oauth2/token -> 200")),
        "{}",
        r.stderr
    );
    // Chat's request too.
    let r = home.run(&["-vv", "chat", "-q", "hello"]).ok();
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("http POST http://127.0.0.1:")
                && l.contains("/anthropic/v1/messages -> 200 (")),
        "{}",
        r.stderr
    );
    let secrets = vec![crate::support::stored(&home)["access_token"]
        .as_str()
        .unwrap()
        .to_string()];
    crate::support::assert_no_secret(&r.stderr, &secrets);
    // Without -vv, no request lines.
    let r = home.run(&["-v", "chat", "-q", "hello"]).ok();
    assert!(!r.stderr.contains("http POST"), "{}", r.stderr);
}

#[test]
fn help_and_version_reach_stdout() {
    let home = Home::new();
    let r = home.run(&["--help"]).ok();
    assert!(r.stdout.contains("Usage: hermes"), "{r:?}");
    let r = home.run(&["plugins", "new", "--help"]).ok();
    assert!(r.stdout.contains("--sdk-path"), "{r:?}");
    let r = home.run(&["--version"]).ok();
    assert!(r.stdout.starts_with("hermes "), "{r:?}");
    let r = home.run(&["auth", "nope"]).code(2);
    assert!(r.stderr.contains("unrecognized subcommand"), "{r:?}");
}

#[test]
fn a_default_model_no_provider_declares_is_refused_and_reported() {
    let (_emu, home) = crate::support::minimax(crate::support::approving());
    crate::support::login(&home);
    // No provider chosen: checked against every installed provider's models.
    let r = home
        .run(&["config", "set", "model.default", "gpt-4"])
        .code(2);
    assert!(
        r.stderr
            .contains("no installed provider declares the model gpt-4 (known models: minimax-oauth/MiniMax-M2.7"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hermes model"), "{}", r.stderr);
    assert_eq!(home.run(&["config", "get", "model.default"]).code, 1);
    // A model the chosen provider declares is saved in any case.
    home.run(&["config", "set", "model.provider", "minimax-oauth"])
        .ok();
    home.run(&["config", "set", "model.default", "minimax-m2.7"])
        .ok();
    let r = home
        .run(&["config", "set", "model.default", "MiniMax-M9"])
        .code(2);
    assert!(
        r.stderr
            .contains("MiniMax-M9 is not among MiniMax (OAuth)'s known models (MiniMax-M2.7"),
        "{}",
        r.stderr
    );
    assert_eq!(
        home.run(&["config", "get", "model.default"])
            .ok()
            .stdout
            .trim(),
        "minimax-m2.7"
    );
    let r = home.run(&["doctor"]);
    assert!(!r.stdout.contains("model.default"), "{}", r.stdout);
    // Written by hand: doctor warns, with the fix.
    std::fs::write(
        home.path().join("config.yaml"),
        "model:\n  provider: minimax-oauth\n  default: MiniMax-M9\n",
    )
    .unwrap();
    let r = home.run(&["doctor"]).code(1);
    assert!(
        r.stdout
            .contains("model.default: MiniMax-M9 is not among MiniMax (OAuth)'s known models"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(fix: hermes model)"), "{}", r.stdout);
}
