//! Racing refreshes and crashes mid-refresh: the login survives both.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// 8 processes × 4 threads resolve one token 30 s from expiry at the same moment, 20 times:
/// every run makes exactly one refresh request, no reuse error, and every caller gets the
/// same new token. (The Python original lost the login in 8–10 of 10 runs with 4 processes.)
#[test]
fn regress_racing_refreshes_make_exactly_one_request() {
    let (emu, home) = minimax(approving());
    for round in 0..20 {
        emu.set_config(|c| c.access_ttl_ms = 30_000);
        login(&home);
        let old = stored(&home)["access_token"].as_str().unwrap().to_string();
        emu.set_config(|c| c.access_ttl_ms = 900_000);
        let before = emu.counters();
        let start_at = (now_ms() + 400).to_string();
        let children: Vec<_> = (0..8)
            .map(|_| {
                let mut c = home.command_of("token-race", &["4"]);
                c.env("RACE_START_AT_MS", &start_at)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                c.spawn().expect("spawn worker")
            })
            .collect();
        let mut tokens = BTreeSet::new();
        let mut lines = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                tokens.insert(l.to_string());
                lines += 1;
            }
        }
        let after = emu.counters();
        assert_eq!(lines, 32, "round {round}");
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: callers got different tokens"
        );
        assert!(
            !tokens.contains(&old),
            "round {round}: the token was not refreshed"
        );
        assert_eq!(
            after.refresh_requests - before.refresh_requests,
            1,
            "round {round}: refresh requests"
        );
        assert_eq!(
            after.refresh_reused - before.refresh_reused,
            0,
            "round {round}: reuse errors"
        );
        assert_eq!(
            stored(&home)["access_token"].as_str().unwrap(),
            tokens.iter().next().unwrap()
        );
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// `hermes auth token` killed with SIGKILL at random points while refreshing, 200 times:
/// `auth.json` always parses and holds a complete token pair. The one unavoidable loss with
/// rotating refresh tokens — the server rotated, the process died before saving the answer —
/// is detected and counted, never silent; every other kill leaves a usable login.
#[test]
fn sigkill_mid_refresh_never_corrupts_the_store() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    // Calibrate: how long a whole refreshing `auth token` takes here, so that kill points
    // cover start-up, the request in flight, the answer and the write.
    let mut span = Duration::ZERO;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        home.run(&["auth", "token", "minimax-oauth"]).ok();
        span = span.max(t.elapsed());
    }
    let span_ms = span.as_millis() as u64 + 15;
    let (mut killed, mut lost_responses, mut completed, mut after_request) = (0, 0, 0, 0);
    for i in 0..200 {
        // The server answers after 0–15 ms; the kill lands anywhere in the whole run.
        let slow = rand_u64() % 16;
        let kill_after = rand_u64() % (span_ms + 1);
        emu.inject("/oauth2/token", Fault::Slow(Duration::from_millis(slow)), 1);
        let before = emu.counters();
        let rt_before = stored(&home)["refresh_token"].as_str().unwrap().to_string();
        let mut child = home
            .command(&["auth", "token", "minimax-oauth"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(kill_after));
        match child.try_wait().unwrap() {
            Some(_) => completed += 1,
            None => {
                child.kill().unwrap();
                killed += 1;
            }
        }
        child.wait().unwrap();
        // The server may still be answering a client that is gone; let it finish so the
        // counters below tell whether the token rotated.
        assert!(
            emu.wait_idle(Duration::from_secs(10)),
            "the emulator never went idle"
        );
        // Whatever happened, the file parses and holds a complete pair.
        let text = std::fs::read_to_string(home.path().join("auth.json")).unwrap();
        let j: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("iteration {i}: auth.json corrupt: {e}\n{text}"));
        let s = &j["providers"]["minimax-oauth"];
        let (at, rt) = (
            s["access_token"].as_str().unwrap_or(""),
            s["refresh_token"].as_str().unwrap_or(""),
        );
        assert!(
            !at.is_empty() && !rt.is_empty(),
            "iteration {i}: the login was wiped: {s}"
        );
        let rotated = emu.counters().refresh_success > before.refresh_success;
        if emu.counters().refresh_requests > before.refresh_requests {
            after_request += 1;
        }
        if rotated && rt == rt_before {
            // The answer was lost with the process: the stored token is now spent.
            lost_responses += 1;
            emu.set_config(|c| c.access_ttl_ms = 30_000);
            login(&home);
            continue;
        }
        // Otherwise the login works (and is due again for the next round).
        emu.set_config(|c| c.access_ttl_ms = 30_000);
        let r = home.run(&["auth", "token", "minimax-oauth"]);
        assert_eq!(
            r.code, 0,
            "iteration {i}: login unusable after a kill: {}",
            r.stderr
        );
    }
    eprintln!(
        "sigkill: run takes ~{span_ms} ms; {killed} killed mid-run ({after_request} after the request reached the server), \
         {completed} finished first, {lost_responses} answers lost after the server rotated"
    );
    assert!(
        killed >= 50,
        "too few kills landed mid-run ({killed}) for the test to mean anything"
    );
    assert!(
        after_request >= 20,
        "too few kills landed after the request was sent ({after_request})"
    );
}
