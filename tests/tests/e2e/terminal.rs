//! What a person sees in a terminal: colour decided per stream, `NO_COLOR` as no-color.org
//! defines it, and a waiting line when there is no terminal to animate. Terminal cases run
//! hermes on a real pseudo-terminal through `script` (util-linux).

use std::process::{Command, Stdio};

use crate::support::*;

/// Run `shell` (a command line that may redirect) on a pseudo-terminal with `home`'s
/// environment changed by `env` (`None` removes a variable); what the terminal showed.
fn on_a_terminal(home: &Home, shell: &str, env: &[(&str, Option<&str>)]) -> String {
    let mut c = Command::new("script");
    c.args(["-qefc", shell, "/dev/null"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in home.command(&[]).get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c
        .output()
        .expect("script (util-linux) runs hermes on a pseudo-terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const GREEN_TICK: &str = "\x1b[32m✓";

#[test]
fn colour_is_decided_per_stream_and_only_a_non_empty_no_color_removes_it() {
    let home = Home::new();
    home.install_minimax();
    let hermes = hermes_bin().display().to_string();
    // At a terminal, with NO_COLOR unset and with NO_COLOR empty (which does not count).
    for env in [[("NO_COLOR", None)], [("NO_COLOR", Some(""))]] {
        let shown = on_a_terminal(&home, &format!("{hermes} doctor"), &env);
        assert!(shown.contains(GREEN_TICK), "{env:?}: {shown:?}");
    }
    let shown = on_a_terminal(
        &home,
        &format!("{hermes} doctor"),
        &[("NO_COLOR", Some("1"))],
    );
    assert!(shown.contains('✓') && !shown.contains('\x1b'), "{shown:?}");
    // stdout redirected to a file while stderr is still the terminal: no codes in the file.
    let file = home.scratch().join("doctor.txt");
    on_a_terminal(
        &home,
        &format!("{hermes} doctor > {}", file.display()),
        &[("NO_COLOR", None)],
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains('✓'), "{written:?}");
    assert!(
        !written.contains('\x1b'),
        "escape codes in a redirected stdout: {written:?}"
    );
}

#[test]
fn without_a_terminal_sign_in_says_once_what_it_waits_for() {
    let (_emu, home) = minimax(approving());
    let r = login(&home);
    assert_eq!(
        r.stderr
            .matches("waiting for approval; the code expires in")
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Ctrl-C to cancel"), "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
}

#[test]
fn opening_the_browser_is_announced() {
    use std::os::unix::fs::PermissionsExt;
    let (_emu, mut home) = minimax(approving());
    // A stand-in browser that records the URL it was given.
    let opened = home.scratch().join("opened");
    let opener = home.scratch().join("opener.sh");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    home.set_env("HERMES_BROWSER", opener.to_str().unwrap());
    let r = home.run(&["auth", "add", "minimax-oauth"]).ok();
    assert!(
        r.stderr.contains("Opening the link in your browser…"),
        "{}",
        r.stderr
    );
    // With --no-browser nothing is opened and nothing is said about it.
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .ok();
    assert!(!r.stderr.contains("Opening the link"), "{}", r.stderr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !opened.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = std::fs::read_to_string(&opened).unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
}

#[test]
fn a_sign_in_whose_polls_all_fail_says_the_server_failed_not_just_timed_out() {
    // 20 s of polls every 2 s, on the test clock.
    let (emu, home, _clock) = minimax_on_test_clock(approving());
    emu.inject("/oauth2/token", Fault::Status500, 1000);
    let r = home
        .run(&[
            "auth",
            "add",
            "minimax-oauth",
            "--no-browser",
            "--timeout",
            "20",
        ])
        .code(1);
    assert!(
        r.stderr.contains("gave up waiting for approval"),
        "{}",
        r.stderr
    );
    // Every poll failed, and each was counted.
    let counted: Vec<u32> = r
        .stderr
        .split("the server failed ")
        .nth(1)
        .unwrap_or_else(|| panic!("{}", r.stderr))
        .split_whitespace()
        .take(3)
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        counted.len() == 2 && counted[0] == counted[1] && counted[0] >= 8,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("500"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was saved"), "{}", r.stderr);
}
