//! Refresh under hostile and unlucky servers: answers that do not say the refresh token is
//! dead never wipe it, a late answer is waited for, racing processes wait for the one
//! refresh in flight, and one provider's slow refresh does not hold up another provider.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Tell the emulator, through its control API, to answer the next refresh with `fault`.
fn inject_over_http(emu: &Emulator, fault: &str) {
    let (status, body) = post_form(
        &format!("{}/_emulator/fault", emu.url()),
        &[("path", "/oauth2/token"), ("fault", fault), ("count", "1")],
    );
    assert_eq!(status, 200, "{body}");
}

/// Rate limits and "system busy" sent as 200, `{}`, a 502 relaying someone's `invalid_grant`
/// and a 503 HTML page mentioning it: none is the server saying the refresh token is dead,
/// so each keeps the login (the Python original and earlier versions wiped it).
#[test]
fn answers_that_do_not_name_a_dead_token_keep_the_login() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    for canned in Canned::ALL {
        login(&home);
        let before = stored(&home);
        inject_over_http(&emu, &format!("answer:{}", canned.name()));
        let faults = emu.counters().faults_injected;
        let r = home.run(&["auth", "token", "minimax-oauth"]);
        assert_eq!(
            emu.counters().faults_injected,
            faults + 1,
            "{}: the answer was not served",
            canned.name()
        );
        assert_eq!(r.code, 0, "{}: {}", canned.name(), r.stderr);
        assert_eq!(
            r.stdout.trim(),
            before["access_token"].as_str().unwrap(),
            "{}: the current token is used while it lasts",
            canned.name()
        );
        assert!(
            r.stderr
                .contains("could not refresh the minimax-oauth token"),
            "{}: {}",
            canned.name(),
            r.stderr
        );
        // The server's words, never its raw JSON body.
        assert!(!r.stderr.contains("{\""), "{}: {}", canned.name(), r.stderr);
        if canned == Canned::Upstream502 {
            assert!(
                r.stderr
                    .contains("(HTTP 502): upstream returned invalid_grant"),
                "{}",
                r.stderr
            );
        }
        let after = stored(&home);
        assert_eq!(
            after["refresh_token"],
            before["refresh_token"],
            "{}: login kept",
            canned.name()
        );
        assert_eq!(after["access_token"], before["access_token"]);
        assert!(
            after.get("last_auth_error").is_none(),
            "{}: quarantined: {after}",
            canned.name()
        );
        // And the kept refresh token still works.
        let r = home.run(&["auth", "token", "minimax-oauth"]).ok();
        assert_ne!(r.stdout.trim(), before["access_token"].as_str().unwrap());
        assert_ne!(stored(&home)["refresh_token"], before["refresh_token"]);
    }
    assert_eq!(emu.counters().refresh_reused, 0);
    assert_eq!(emu.counters().refresh_success, Canned::ALL.len() as u64);
}

/// The server takes longer to answer a refresh than the interactive timeout (made 1 s here
/// with `HERMES_HTTP_TIMEOUT_MS`; 15 s by default): the refresh is not abandoned, the
/// rotated pair is saved, and the login keeps working.
#[test]
fn a_refresh_answered_late_is_waited_for_and_saved() {
    let (emu, mut home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    let before = stored(&home);
    home.set_env("HERMES_HTTP_TIMEOUT_MS", "1000");
    emu.set_config(|c| c.refresh_delay_ms = 1_600);
    let r = home.run(&["auth", "token", "minimax-oauth"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A client that gave up early leaves the server answering a request nobody reads.
    assert!(emu.wait_idle(Duration::from_secs(30)));
    let c = emu.counters();
    assert_eq!(c.refresh_success, 1, "{c:?}");
    let after = stored(&home);
    assert_eq!(r.stdout.trim(), after["access_token"].as_str().unwrap());
    assert_ne!(
        after["refresh_token"], before["refresh_token"],
        "the rotated refresh token was saved"
    );
    // The saved pair is the live one: it refreshes again without a reuse error.
    emu.set_config(|c| c.refresh_delay_ms = 0);
    home.run(&["auth", "token", "minimax-oauth"]).ok();
    emu.expire_all_access_tokens();
    let chat = home.run(&["chat", "-q", "hi", "--provider", "minimax-oauth"]);
    assert_eq!(chat.code, 0, "{}", chat.stderr);
    let c = emu.counters();
    assert_eq!(c.refresh_reused, 0, "{c:?}");
    assert_eq!(c.refresh_invalid_grant, 0, "{c:?}");
}

/// 20 processes need the same due token while the server takes longer than both the
/// interactive timeout and the store lock's timeout (both made short here) to answer: one
/// refresh reaches the server, the others wait for it (and say what they wait for), and all
/// get the new token.
#[test]
fn racing_processes_wait_for_a_slow_refresh_instead_of_failing() {
    let (emu, mut home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    let old = stored(&home)["access_token"].as_str().unwrap().to_string();
    home.set_env("HERMES_HTTP_TIMEOUT_MS", "1000");
    home.set_env("HERMES_LOCK_TIMEOUT_MS", "500");
    emu.set_config(|c| {
        c.refresh_delay_ms = 1_600;
        c.access_ttl_ms = 900_000;
    });
    let children: Vec<_> = (0..20)
        .map(|_| {
            home.command(&["auth", "token", "minimax-oauth"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hermes")
        })
        .collect();
    let mut tokens = BTreeSet::new();
    let mut waited = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        if stderr.contains("waiting for process") && stderr.contains("to finish refreshing") {
            waited += 1;
        }
        tokens.insert(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let c = emu.counters();
    assert_eq!(c.refresh_requests, 1, "{c:?}");
    assert_eq!(c.refresh_reused, 0, "{c:?}");
    assert_eq!(tokens.len(), 1, "callers got different tokens: {tokens:?}");
    assert!(!tokens.contains(&old));
    assert_eq!(
        stored(&home)["access_token"].as_str().unwrap(),
        tokens.iter().next().unwrap()
    );
    assert!(
        waited >= 1,
        "no waiting process said what it was waiting for"
    );
}

/// A slow MiniMax refresh is in flight (its request is at the server) while another provider's
/// login is saved and its token read: the second provider is not held up by the first one's
/// refresh (before, the store's lock was held across the network call and the second
/// provider's commands failed on the lock's timeout).
#[test]
fn a_slow_refresh_of_one_provider_does_not_block_another_provider() {
    let (emu, mut home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    home.run(&["plugins", "install", "minimax-apikey"]).ok();
    login(&home);
    home.set_env("HERMES_LOCK_TIMEOUT_MS", "500");
    emu.set_config(|c| c.refresh_delay_ms = 4_000);
    let slow = home
        .command(&["auth", "token", "minimax-oauth"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the refresh request is at the server (being held there).
    while emu.counters().in_flight == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let key = "sk-cp-e2e-0123456789abcdef";
    let r = home.run_stdin(
        &["auth", "add", "minimax", "--api-key-stdin"],
        &format!("{key}\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let t = home.run(&["auth", "token", "minimax"]).ok();
    assert_eq!(t.stdout.trim(), key);
    let c = emu.counters();
    assert_eq!(
        (c.refresh_success, c.in_flight),
        (0, 1),
        "the other provider finished while the slow refresh was still in flight"
    );
    let out = slow.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(emu.counters().refresh_success, 1);
    assert_eq!(
        home.auth_json()["providers"]["minimax-oauth"]["access_token"]
            .as_str()
            .unwrap(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

/// Ctrl-C (SIGINT to the foreground process group), a closed terminal (SIGHUP) or a stop of
/// every process (SIGTERM to the command and to its worker, as a service manager or container
/// runtime sends before its SIGKILL) while a refresh is at the server: the command stops, but
/// the refresh runs in a worker outside its process group that ignores those signals, so the
/// rotated pair is still saved and the login keeps working with no second rotation and no
/// reuse.
#[test]
fn ctrl_c_or_a_closed_terminal_during_a_refresh_keeps_the_login() {
    use std::os::unix::process::CommandExt;
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGTERM] {
        emu.set_config(|c| c.access_ttl_ms = 30_000);
        login(&home);
        let before = emu.counters();
        // The next pair lives long, so the command after the signal has no reason to refresh.
        emu.set_config(|c| {
            c.refresh_delay_ms = 800;
            c.access_ttl_ms = 900_000;
        });
        let mut child = home.command(&["auth", "token", "minimax-oauth"]);
        child
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // As a shell runs a foreground job: a process group of its own, and the signals'
            // default actions (this test's own process may have been started ignoring them).
            .process_group(0);
        // SAFETY: `signal` is async-signal-safe; it runs in the child between fork and exec.
        unsafe {
            child.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = child.spawn().unwrap();
        let sent = std::time::Instant::now();
        while emu.counters().refresh_requests == before.refresh_requests {
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "the refresh never reached the server"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let worker = worker_of(child.id()).expect("the refresh runs in a worker");
        // SAFETY: signalling the process group of a child this test started.
        assert_eq!(unsafe { libc::kill(-(child.id() as i32), signal) }, 0);
        if signal == libc::SIGTERM {
            // SAFETY: as above, the worker of that child.
            assert_eq!(unsafe { libc::kill(worker as i32, signal) }, 0);
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "signal {signal}: {status:?}");
        assert!(emu.wait_idle(Duration::from_secs(30)));
        emu.set_config(|c| c.refresh_delay_ms = 0);
        let r = home.run(&["auth", "token", "minimax-oauth"]);
        assert_eq!(
            r.code, 0,
            "signal {signal}: the login was lost: {}",
            r.stderr
        );
        let c = emu.counters();
        assert_eq!(
            c.refresh_success,
            before.refresh_success + 1,
            "signal {signal}: {c:?}"
        );
        assert_eq!(c.refresh_reused, before.refresh_reused, "signal {signal}");
        assert_eq!(
            r.stdout.trim(),
            stored(&home)["access_token"].as_str().unwrap()
        );
    }
}
