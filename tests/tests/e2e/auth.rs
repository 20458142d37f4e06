//! Signing in, refreshing, quarantine and the credential store, against the emulator.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The expiry of the main login: `expires_at` (ISO-8601), the provider block's only expiry
/// field in the Python layout.
fn expires_at_ms(home: &Home) -> i64 {
    stored(home)["expires_at"]
        .as_str()
        .and_then(hermes::timefmt::ms_from_iso)
        .expect("expires_at")
}

#[test]
fn login_global_prints_url_and_code_and_stores_the_python_layout() {
    let (emu, home) = minimax(approving());
    let r = login(&home);
    assert!(
        r.stderr.contains("open this URL and enter the code"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("{}/verify?user_code=", emu.url())),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("  code: "), "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("✓ Signed in to MiniMax (OAuth) (region global); token valid 1"),
        "{}",
        r.stdout
    );
    let s = stored(&home);
    assert_eq!(s["provider"], "minimax-oauth");
    assert_eq!(s["region"], "global");
    assert_eq!(s["client_id"], "78257093-7e40-4613-99e0-527b14b39113");
    assert_eq!(s["portal_base_url"], emu.url());
    assert!(s["access_token"].as_str().unwrap().starts_with("mm-at-"));
    assert!(s["expires_at"].as_str().unwrap().ends_with("+00:00"));
    let j = home.auth_json();
    assert_eq!(j["version"], 1);
    assert_eq!(j["active_provider"], "minimax-oauth");
    assert_eq!(j["credential_pool"]["minimax-oauth"][0]["source"], "oauth");
    assert!(
        j["credential_pool"]["minimax-oauth"][0]
            .get("refresh_token")
            .is_none(),
        "one copy of each refresh token"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.path().join("auth.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // One code request, one approved poll; both reached /oauth2 through the 307.
    let c = emu.counters();
    assert_eq!((c.code_requests, c.logins_completed), (1, 1));
    assert!(c.legacy_redirects >= 2, "{c:?}");
    home.run(&["auth", "status", "minimax-oauth"]).ok();
    home.run(&["doctor"]).ok();
}

#[test]
fn login_cn_region() {
    let (emu, mut home) = minimax(approving());
    home.set_env("MINIMAX_PORTAL_BASE_URL", &emu.cn_url());
    home.set_env("MINIMAX_INFERENCE_BASE_URL", &emu.cn_inference_url());
    let r = home
        .run(&[
            "auth",
            "add",
            "minimax-oauth",
            "--no-browser",
            "--region",
            "cn",
        ])
        .ok();
    assert!(r.stdout.contains("(region cn (China))"), "{}", r.stdout);
    assert_eq!(stored(&home)["region"], "cn");
    let c = emu.counters();
    assert_eq!((c.cn.logins_completed, c.global.logins_completed), (1, 0));
    let st = home
        .run(&["auth", "status", "minimax-oauth", "--json"])
        .ok()
        .json();
    assert_eq!(st["providers"][0]["region"], "cn");
    // The status line names the region for people, beside its id.
    let r = home.run(&["auth", "status", "minimax-oauth"]).ok();
    assert!(
        r.stdout
            .contains("logged in, region cn (China), token valid"),
        "{}",
        r.stdout
    );
}

#[test]
fn unknown_region_is_a_usage_error() {
    let (_emu, home) = minimax(approving());
    let r = home
        .run(&[
            "auth",
            "add",
            "minimax-oauth",
            "--no-browser",
            "--region",
            "mars",
        ])
        .code(2);
    assert!(
        r.stderr.contains("choose one of: global, cn (China)"),
        "{}",
        r.stderr
    );
}

#[test]
fn regress_307_on_oauth_code_is_followed() {
    // Production answers /oauth/code with 307; not following it was "authorization failed:
    // Temporary Redirect".
    let (emu, home) = minimax(approving());
    login(&home);
    assert!(emu.counters().legacy_redirects >= 1);
    assert!(emu.config().redirect_legacy_paths);
}

#[test]
fn regress_auth_add_starts_a_login() {
    let (emu, home) = minimax(approving());
    login(&home);
    assert_eq!(emu.counters().code_requests, 1);
}

#[test]
fn denied_login_saves_nothing() {
    // Each wait between polls moves the test clock instead of passing in real time; the code
    // lives long enough on that clock for however many polls happen before the test acts.
    let (emu, home, _clock) = minimax_on_test_clock(EmulatorConfig {
        interval_ms: 0,
        code_ttl_ms: 30 * 24 * 3_600_000,
        ..EmulatorConfig::default()
    });
    let mut child = home
        .command(&["auth", "add", "minimax-oauth", "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_for_pending(&emu);
    assert!(emu.deny(&code));
    let out = child.wait().unwrap();
    assert_eq!(out.code(), Some(1));
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("sign-in was denied: user denied authorization"),
        "{err}"
    );
    assert!(!home.path().join("auth.json").exists() || stored(&home).is_null());
}

fn wait_for_pending(emu: &Emulator) -> String {
    for _ in 0..500 {
        if let Some(c) = emu.pending_user_codes().into_iter().next() {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no pending login appeared");
}

#[test]
fn approval_while_polling_signs_in() {
    // Each wait between polls moves the test clock instead of passing in real time; the code
    // lives long enough on that clock for however many polls happen before the test acts.
    let (emu, home, _clock) = minimax_on_test_clock(EmulatorConfig {
        interval_ms: 0,
        code_ttl_ms: 30 * 24 * 3_600_000,
        ..EmulatorConfig::default()
    });
    let child = home
        .command(&["auth", "add", "minimax-oauth", "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_for_pending(&emu);
    // Approve only once the client has been told "pending" at least once.
    for _ in 0..500 {
        if emu.counters().polls_pending >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(emu.counters().polls_pending >= 1, "the client never polled");
    assert!(emu.approve(&code));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(emu.counters().logins_completed, 1);
}

#[test]
fn expired_code_fails_clearly() {
    // Polled every 2 s like production, on the test clock: the code's 20 s pass with no real
    // waiting.
    let (emu, home, clock) = minimax_on_test_clock(EmulatorConfig {
        code_ttl_ms: 20_000,
        ..EmulatorConfig::default()
    });
    let real = std::time::Instant::now();
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(r.stderr.contains("MiniMax OAuth"), "{}", r.stderr);
    assert!(
        r.stderr.contains("expired") || r.stderr.contains("timed out"),
        "{}",
        r.stderr
    );
    assert!(!home.path().join("auth.json").exists());
    // The whole life of the code went by (on the clock, or in real time while polling), one
    // interval per poll.
    let passed = clock.offset_ms() + real.elapsed().as_millis() as i64;
    assert!(passed >= 20_000, "{passed}");
    let polls = emu.counters().token_polls;
    assert!((8..=12).contains(&polls), "{polls} polls in 20 s at 2 s");
}

#[test]
fn state_mismatch_is_refused() {
    let (emu, home) = minimax(EmulatorConfig {
        wrong_state: true,
        ..approving()
    });
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(
        r.stderr
            .contains("MiniMax OAuth state mismatch (possible CSRF)."),
        "{}",
        r.stderr
    );
    assert_eq!(
        emu.counters().token_polls,
        0,
        "no poll after a state mismatch"
    );
}

#[test]
fn timeout_flag_gives_up_and_saves_nothing() {
    let (emu, home, clock) = minimax_on_test_clock(EmulatorConfig::default());
    let real = std::time::Instant::now();
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
    // 20 s went by at one poll every 2 s; the code (10 minutes) was still alive.
    let passed = clock.offset_ms() + real.elapsed().as_millis() as i64;
    assert!(passed >= 20_000, "{passed}");
    assert!(clock.offset_ms() < 60_000, "{}", clock.offset_ms());
    let polls = emu.counters().token_polls;
    assert!((8..=11).contains(&polls), "{polls} polls in 20 s at 2 s");
    assert!(
        r.stderr.contains("gave up waiting for approval"),
        "{}",
        r.stderr
    );
    assert!(!home.path().join("auth.json").exists());
}

#[test]
fn each_expired_in_encoding_gives_the_right_expiry() {
    for enc in [
        ExpiryEncoding::UnixMs,
        ExpiryEncoding::UnixSeconds,
        ExpiryEncoding::TtlSeconds,
    ] {
        let (_emu, home) = minimax(EmulatorConfig {
            expiry_encoding: enc,
            access_ttl_ms: 900_000,
            ..approving()
        });
        let before = now_ms();
        login(&home);
        let exp = expires_at_ms(&home);
        let expected = before + 900_000;
        assert!(
            (exp - expected).abs() < 5_000,
            "{enc:?}: expiry {exp} vs {expected}"
        );
    }
}

#[test]
fn regress_year_583911_ms_expiry() {
    // A unix-ms deadline added to "now" as seconds gave year 583911; here it is a date 15
    // minutes away, and status and doctor print sane figures.
    let (_emu, home) = minimax(EmulatorConfig {
        expiry_encoding: ExpiryEncoding::UnixMs,
        ..approving()
    });
    login(&home);
    let iso = stored(&home)["expires_at"].as_str().unwrap().to_string();
    let year: i32 = iso[..4].parse().unwrap();
    assert!((2024..2100).contains(&year), "{iso}");
    let d = home.run(&["doctor"]).ok();
    assert!(
        d.stdout.contains("token valid 14 min") || d.stdout.contains("token valid 15 min"),
        "{}",
        d.stdout
    );
}

#[test]
fn auth_token_refreshes_a_due_token_once() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    let old = stored(&home)["access_token"].as_str().unwrap().to_string();
    let old_rt = stored(&home)["refresh_token"].as_str().unwrap().to_string();
    emu.set_config(|c| c.access_ttl_ms = 900_000);
    let t = home.run(&["auth", "token", "minimax-oauth"]).ok();
    let new = t.stdout.trim().to_string();
    assert_ne!(new, old);
    assert_eq!(new, stored(&home)["access_token"].as_str().unwrap());
    assert_ne!(
        stored(&home)["refresh_token"].as_str().unwrap(),
        old_rt,
        "rotated refresh token saved"
    );
    assert_eq!(emu.counters().refresh_success, 1);
    // Fresh now: no further refresh.
    let again = home.run(&["auth", "token", "minimax-portal"]).ok();
    assert_eq!(again.stdout.trim(), new);
    assert_eq!(emu.counters().refresh_requests, 1);
}

fn transient_refresh_keeps_the_login(fault: Fault) {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    let before = stored(&home);
    emu.inject("/oauth2/token", fault, 1);
    let r = home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(
        r.stdout.trim(),
        before["access_token"].as_str().unwrap(),
        "the current token is used while it lasts"
    );
    assert!(
        r.stderr
            .contains("could not refresh the minimax-oauth token"),
        "{}",
        r.stderr
    );
    let after = stored(&home);
    assert_eq!(
        after["refresh_token"], before["refresh_token"],
        "login kept"
    );
    assert!(
        after.get("last_auth_error").is_none(),
        "transient errors never quarantine"
    );
    assert_eq!(after["last_refresh_failure"]["transient"], true);
    let d = home.run(&["doctor"]).ok();
    assert!(
        d.stdout.contains("last refresh attempt failed"),
        "{}",
        d.stdout
    );
    // The next use refreshes normally and clears the note.
    home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(emu.counters().refresh_success, 1);
    assert!(stored(&home).get("last_refresh_failure").is_none());
}

#[test]
fn refresh_through_a_500_is_transient() {
    transient_refresh_keeps_the_login(Fault::Status500);
}

#[test]
fn refresh_through_a_dropped_connection_is_transient() {
    transient_refresh_keeps_the_login(Fault::DropConnection);
}

#[test]
fn refresh_through_malformed_json_is_transient() {
    transient_refresh_keeps_the_login(Fault::MalformedJson);
}

#[test]
fn expired_token_with_a_transient_failure_is_an_error_but_keeps_the_login() {
    let (emu, home, clock) = minimax_on_test_clock(approving());
    login(&home);
    // Past the token's 15 minutes.
    clock.advance(900_000 + 1_000);
    emu.inject("/oauth2/token", Fault::Status429, 1);
    let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
    assert!(r.stderr.contains("your login is kept"), "{}", r.stderr);
    assert!(stored(&home)["refresh_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    home.run(&["auth", "token", "minimax-oauth"]).ok();
}

fn assert_quarantined(emu: &Emulator, home: &Home, words_in_message: &str) {
    let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
    assert!(r.stderr.contains(words_in_message), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Run `hermes auth add minimax-oauth` to sign in again."),
        "{}",
        r.stderr
    );
    let s = stored(home);
    assert_eq!(s["access_token"], Value::Null);
    assert_eq!(s["refresh_token"], Value::Null);
    assert_eq!(s["region"], "global", "region and URLs are kept");
    assert_eq!(s["portal_base_url"], emu.url());
    assert_eq!(s["last_auth_error"]["reason"], "runtime_refresh_failure");
    assert_eq!(s["last_auth_error"]["relogin_required"], true);
    // The next use fails fast, with no network request.
    let before = emu.counters().refresh_requests;
    let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
    assert!(
        r.stderr.contains("sign-in required for MiniMax (OAuth)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hermes auth add minimax-oauth"),
        "{}",
        r.stderr
    );
    assert_eq!(
        emu.counters().refresh_requests,
        before,
        "a quarantined login makes no request"
    );
    let st = home
        .run(&["auth", "status", "minimax-oauth", "--json"])
        .code(1)
        .json();
    assert_eq!(st["providers"][0]["state"], "relogin_required");
    let d = home.run(&["doctor"]).code(1);
    assert!(d.stdout.contains("sign-in required"), "{}", d.stdout);
    // Signing in again restores it.
    emu.set_config(|c| c.access_ttl_ms = 900_000);
    login(home);
    home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert!(stored(home).get("last_auth_error").is_none());
}

#[test]
fn regress_dead_refresh_token_is_quarantined_invalid_grant() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    // A refresh token the server does not know: invalid_grant.
    let path = home.path().join("auth.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let rt = stored(&home)["refresh_token"].as_str().unwrap().to_string();
    std::fs::write(
        &path,
        text.replace(&rt, "mm-rt-unknown-to-the-server-000000000000"),
    )
    .unwrap();
    assert_quarantined(
        &emu,
        &home,
        "(HTTP 400): refresh token is invalid or revoked",
    );
}

#[test]
fn refresh_token_reused_is_quarantined() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    // Another client (say, a copy of this login elsewhere) rotates the token first.
    let rt = stored(&home)["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = post_form(
        &format!("{}/oauth2/token", emu.url()),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", hermes_tests::emulator::CLIENT_ID),
            ("refresh_token", &rt),
        ],
    );
    assert_eq!(status, 200);
    assert_quarantined(&emu, &home, "(HTTP 400): refresh token was already used");
    assert_eq!(emu.counters().refresh_reused, 1);
}

#[test]
fn remove_and_logout() {
    let (emu, home) = minimax(approving());
    login(&home);
    let list = home.run(&["auth", "list", "--json"]).ok().json();
    let logins = list["providers"][0]["logins"].as_array().unwrap().clone();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["source"], "oauth");
    assert!(logins[0]["token_preview"].as_str().unwrap().contains('…'));

    // A second account with its own tokens.
    let r = home
        .run(&[
            "auth",
            "add",
            "minimax-oauth",
            "--no-browser",
            "--label",
            "work",
        ])
        .ok();
    assert!(
        r.stdout.contains("as an extra account \"work\""),
        "{}",
        r.stdout
    );
    let j = home.auth_json();
    let pool = j["credential_pool"]["minimax-oauth"].as_array().unwrap();
    assert_eq!(pool.len(), 2);
    assert_ne!(pool[1]["refresh_token"], stored(&home)["refresh_token"]);
    assert_eq!(emu.counters().logins_completed, 2);

    let r = home.run(&["auth", "remove", "minimax-portal", "work"]).ok();
    assert!(r.stdout.contains("removed login work"), "{}", r.stdout);
    assert_eq!(
        home.auth_json()["credential_pool"]["minimax-oauth"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Removing the main login clears it and suppresses the source so it is not re-seeded.
    home.run(&["auth", "remove", "minimax-oauth", "1"]).ok();
    let j = home.auth_json();
    assert!(j["providers"].get("minimax-oauth").is_none());
    assert_eq!(
        j["suppressed_sources"]["minimax-oauth"],
        serde_json::json!(["oauth"])
    );
    home.run(&["auth", "status", "minimax-oauth"]).code(1);

    // Signing in again lifts the suppression; logout removes everything.
    login(&home);
    assert!(home.auth_json()["suppressed_sources"]
        .get("minimax-oauth")
        .is_none());
    let r = home.run(&["auth", "logout", "minimax-oauth"]).ok();
    assert!(
        r.stdout.contains("signed out of MiniMax (OAuth)"),
        "{}",
        r.stdout
    );
    let j = home.auth_json();
    assert!(j["providers"].get("minimax-oauth").is_none());
    assert!(j["credential_pool"].get("minimax-oauth").is_none());
    assert_eq!(j["active_provider"], Value::Null);
}

fn python_fixture(emu: &Emulator, home: &Home, access_ttl_ms: i64) -> (String, String) {
    let (at, rt) = emu.issue_tokens("global", access_ttl_ms);
    let exp = now_ms() + access_ttl_ms;
    let iso = {
        // Python writes "+00:00"; "Z" must be read too, and this fixture uses "Z".
        let secs = exp / 1000;
        let days = secs.div_euclid(86_400);
        let (y, m, d) = civil(days);
        let s = secs.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / 3600,
            (s % 3600) / 60,
            s % 60
        )
    };
    let text = include_str!("fixtures/python-auth.json")
        .replace("{{PORTAL}}", &emu.url())
        .replace("{{INFERENCE}}", &emu.inference_url())
        .replace("{{ACCESS}}", &at)
        .replace("{{REFRESH}}", &rt)
        .replace("{{EXPIRES_AT_MS}}", &exp.to_string())
        .replace("{{EXPIRES_AT}}", &iso);
    std::fs::write(home.path().join("auth.json"), text).unwrap();
    (at, rt)
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[test]
fn a_python_hermes_auth_json_is_read_and_refreshed() {
    let (emu, home) = minimax(approving());
    let (at, _rt) = python_fixture(&emu, &home, 30_000);
    let st = home
        .run(&["auth", "status", "minimax-oauth", "--json"])
        .ok()
        .json();
    assert_eq!(st["providers"][0]["state"], "valid");
    // The pool entry that copied the singleton's tokens is the same login, not a second one.
    let list = home
        .run(&["auth", "list", "minimax-oauth", "--json"])
        .ok()
        .json();
    assert_eq!(
        list["providers"][0]["logins"].as_array().unwrap().len(),
        1,
        "{list}"
    );
    // Due (30 s left): refreshed once, written back in the same layout.
    let t = home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_ne!(t.stdout.trim(), at);
    assert_eq!(emu.counters().refresh_success, 1);
    let j = home.auth_json();
    assert_eq!(
        j["providers"]["nous"]["access_token"],
        "nous-token-that-hermes-must-keep-untouched"
    );
    assert_eq!(
        j["providers"]["minimax-oauth"]["access_token"]
            .as_str()
            .unwrap(),
        t.stdout.trim()
    );
    assert_eq!(
        j["providers"]["minimax-oauth"]["scope"],
        "group_id profile model.completion"
    );
    let pool = j["credential_pool"]["minimax-oauth"].as_array().unwrap();
    assert_eq!(pool.len(), 1);
    assert!(
        pool[0].get("refresh_token").is_none(),
        "the copy was folded into a reference"
    );
}

#[test]
fn corrupt_auth_json_is_reported_and_kept() {
    let (_emu, home) = minimax(approving());
    std::fs::write(
        home.path().join("auth.json"),
        b"{\"version\": 1, \"providers\": {",
    )
    .unwrap();
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(
        r.stderr
            .contains("auth.json is corrupt (invalid JSON at line 1"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("help: repair the file, or move it away"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(home.path().join("auth.json")).unwrap(),
        b"{\"version\": 1, \"providers\": {"
    );
    assert!(home.path().join("auth.json.corrupt").exists());
    let d = home.run(&["doctor"]).code(1);
    assert!(d.stdout.contains("is corrupt"), "{}", d.stdout);
    home.run(&["plugins", "list"]).ok();
}

#[test]
fn no_token_is_printed_unmasked_except_by_auth_token() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    let mut outputs = vec![home
        .run(&["-vvv", "auth", "add", "minimax-oauth", "--no-browser"])
        .ok()
        .all()];
    let first = stored(&home);
    emu.set_config(|c| c.access_ttl_ms = 900_000);
    // A refresh at -vvv (its tokens must not be logged either).
    let token = home.run(&["-vvv", "auth", "token", "minimax-oauth"]).ok();
    outputs.push(token.stderr.clone());
    let second = stored(&home);
    for args in [
        vec!["-vvv", "auth", "status"],
        vec!["-vvv", "auth", "status", "--json"],
        vec!["-vvv", "auth", "list"],
        vec!["-vvv", "auth", "list", "--json"],
        vec!["-vvv", "doctor"],
        vec!["-vvv", "doctor", "--json"],
        vec!["-vvv", "status"],
        vec!["-vvv", "plugins", "list", "--json"],
        vec!["-vvv", "plugins", "info", "minimax-oauth"],
    ] {
        outputs.push(home.run(&args).all());
    }
    let secrets: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|s| {
            [
                s["access_token"].as_str().unwrap().to_string(),
                s["refresh_token"].as_str().unwrap().to_string(),
            ]
        })
        .collect();
    for o in &outputs {
        assert_no_secret(o, &secrets);
    }
    assert_eq!(
        token.stdout.trim(),
        second["access_token"].as_str().unwrap()
    );
}

#[test]
fn regress_auth_status_minimax_oauth_has_a_branch() {
    let (_emu, home) = minimax(approving());
    login(&home);
    for name in [
        "minimax-oauth",
        "minimax-portal",
        "MiniMax-Global",
        "minimax_oauth",
    ] {
        let r = home.run(&["auth", "status", name]).ok();
        assert!(
            r.stdout.contains("✓ logged in, region global, token valid"),
            "{name}: {}",
            r.stdout
        );
    }
}

#[test]
fn regress_unbounded_error_body_is_capped() {
    // A server that answers a refresh with a 2 MiB error body and keeps the connection open.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(2) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "x".repeat(2 * 1024 * 1024);
            let _ = write!(
                s,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            std::thread::sleep(Duration::from_secs(60));
        }
    });
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    let path = home.path().join("auth.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&emu.url(), &format!("http://{addr}"));
    std::fs::write(&path, text).unwrap();
    let started = std::time::Instant::now();
    let r = home.run(&["-v", "auth", "token", "minimax-oauth"]).ok();
    // The body is capped by the host's HTTP service, and the plugin's message made from it
    // is clipped to one line at the plugin boundary.
    assert!(r.stderr.contains("(HTTP 500): xxx"), "{}", r.stderr);
    assert!(r.stderr.contains("xxx…"), "{}", r.stderr);
    assert!(
        r.stderr.len() < 20 * 1024,
        "error output is {} bytes",
        r.stderr.len()
    );
    // The host's timeout is 15 s: finishing well before it means the cap ended the read.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the client waited for the server to close"
    );
}

#[test]
fn ctrl_c_cancels_a_sign_in_and_saves_nothing() {
    let (emu, home) = minimax(EmulatorConfig {
        interval_ms: 0,
        ..EmulatorConfig::default()
    });
    let child = home
        .command(&["auth", "add", "minimax-oauth", "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_pending(&emu);
    for _ in 0..500 {
        if emu.counters().polls_pending >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: plain FFI call on the pid of our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("sign-in cancelled; nothing was saved"));
    assert!(!home.path().join("auth.json").exists());
}
