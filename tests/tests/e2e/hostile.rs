//! A plugin that misbehaves at run time (`tests/fixtures/hostile`, its behaviour chosen by
//! `HERMES_HOSTILE`) installed beside minimax-oauth: hermes keeps working for minimax-oauth,
//! names the bad plugin and its call, and keeps stdout and auth.json its own.

use crate::support::*;

/// What the fixture writes to stdout when told to.
const GARBAGE: &str = "HOSTILE PLUGIN WROTE THIS TO STDOUT";

/// A home with the hostile plugin installed *before* minimax-oauth (so a worker that dies in
/// it must be replaced for minimax-oauth to be reported), signed in to minimax-oauth through
/// the emulator.
fn setup() -> (Emulator, Home) {
    let emu = Emulator::start(EmulatorConfig {
        log_requests: false,
        ..approving()
    });
    let mut home = Home::new();
    home.set_env("MINIMAX_PORTAL_BASE_URL", &emu.url());
    home.set_env("MINIMAX_INFERENCE_BASE_URL", &emu.inference_url());
    home.run(&[
        "plugins",
        "install",
        lib("fixture_hostile").to_str().unwrap(),
    ])
    .ok();
    home.install_minimax();
    login(&home);
    // Healthy calls answer in microseconds; a hang is given up on after this.
    home.set_env("HERMES_PLUGIN_TIMEOUT_MS", "2000");
    (emu, home)
}

fn with(home: &Home, hostile: &str, args: &[&str]) -> Run {
    let mut c = home.command(args);
    c.env("HERMES_HOSTILE", hostile);
    c.env("HERMES_HOSTILE_MB", "8");
    let o = c.output().expect("run hermes");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn findings_about<'a>(doc: &'a serde_json::Value, subject: &str) -> Vec<&'a serde_json::Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["subject"] == subject)
        .collect()
}

#[track_caller]
fn assert_minimax_reported_valid(doc: &serde_json::Value) {
    let mm = findings_about(doc, "minimax-oauth");
    assert!(
        mm.iter().any(|f| f["status"]["state"] == "valid"),
        "minimax-oauth is not reported as signed in: {doc:#}"
    );
}

#[test]
fn doctor_names_the_plugin_and_call_that_crashed_hung_or_panicked_and_still_reports_minimax() {
    let (_emu, home) = setup();
    let cases = [
        ("segv:status", "crashed with signal 11 in Status::status"),
        ("abort:status", "crashed with signal 6 in Status::status"),
        ("hang:status", "did not answer within 2 s in Status::status"),
        ("segv:describe", "crashed with signal 11 in describe()"),
        ("hang:describe", "did not answer within 2 s in describe()"),
        ("hang:provider", "did not answer within 2 s in provider()"),
        ("panic:status", "plugin panicked in Status::status"),
    ];
    for (hostile, expected) in cases {
        let run = with(&home, hostile, &["doctor", "--json"]).code(1);
        let doc = run.json();
        let bad = findings_about(&doc, "hostile");
        let named = bad.iter().find(|f| {
            f["severity"] == "error"
                && f["message"].as_str().unwrap_or("").contains(expected)
                && f["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("hostile 0.1.0")
        });
        let named =
            named.unwrap_or_else(|| panic!("{hostile}: no finding says {expected:?}: {doc:#}"));
        assert_eq!(named["fix"], "hermes plugins disable hostile", "{hostile}");
        assert_minimax_reported_valid(&doc);

        // The text form says the same, with the fix.
        let text = with(&home, hostile, &["doctor"]).code(1);
        assert!(
            text.stdout.contains(expected)
                && text.stdout.contains("hermes plugins disable hostile"),
            "{hostile}: {}",
            text.stdout
        );
    }
}

#[test]
fn doctor_json_stays_valid_whatever_a_plugin_writes_or_closes() {
    let (_emu, home) = setup();
    for hostile in [
        "stdout:describe,stdout:provider,stdout:status",
        "close-stdout:describe",
        "close-stdout:status",
    ] {
        let run = with(&home, hostile, &["doctor", "--json"]);
        assert!(!run.stdout.contains(GARBAGE), "{hostile}: {}", run.stdout);
        let doc = run.json();
        assert_minimax_reported_valid(&doc);
        assert!(
            findings_about(&doc, "hostile")
                .iter()
                .any(|f| f["status"]["state"] == "not_logged_in"),
            "{hostile}: the hostile provider itself is still reported: {doc:#}"
        );
    }
}

#[test]
fn auth_token_prints_exactly_the_token_when_the_plugin_writes_to_or_closes_stdout() {
    let (_emu, home) = setup();
    home.run(&["auth", "add", "hostile", "--no-browser"]).ok();
    for hostile in [
        "stdout:describe,stdout:provider,stdout:needs-refresh,stdout:runtime",
        "close-stdout:provider",
        "close-stdout:runtime",
    ] {
        let run = with(&home, hostile, &["auth", "token", "hostile"]).ok();
        assert_eq!(run.stdout, "hostile-access-token\n", "{hostile}");
    }
    // minimax-oauth by id, and by an alias (which loads every plugin), print only its token.
    let token = stored(&home)["access_token"].as_str().unwrap().to_string();
    for name in ["minimax-oauth", "minimax-portal"] {
        let run = with(
            &home,
            "stdout:describe,close-stdout:describe",
            &["auth", "token", name],
        )
        .ok();
        assert_eq!(run.stdout, format!("{token}\n"), "{name}");
    }
}

#[test]
fn status_auth_status_and_auth_list_report_a_broken_plugin_as_one_row() {
    let (_emu, home) = setup();
    for (hostile, expected) in [
        (
            "segv:status",
            "hostile 0.1.0 crashed with signal 11 in Status::status",
        ),
        ("panic:status", "plugin panicked in Status::status"),
        (
            "panic:provider",
            "plugin hostile could not open provider hostile",
        ),
        (
            "hang:describe",
            "hostile 0.1.0 did not answer within 2 s in describe()",
        ),
    ] {
        let status = with(&home, hostile, &["status"]).ok();
        assert!(
            status.stdout.contains(expected),
            "{hostile}: {}",
            status.all()
        );
        assert!(
            status.stdout.contains("✓ MiniMax (OAuth)"),
            "{hostile}: {}",
            status.stdout
        );

        let auth = with(&home, hostile, &["auth", "status", "--json"]).ok();
        let doc = auth.json();
        let providers = doc["providers"].as_array().unwrap();
        let mm = providers
            .iter()
            .find(|p| p["provider"] == "minimax-oauth")
            .expect("minimax-oauth row");
        assert_eq!(mm["logged_in"], true, "{hostile}: {doc:#}");
        if hostile != "hang:describe" {
            let bad = providers
                .iter()
                .find(|p| p["provider"] == "hostile")
                .expect("hostile row");
            assert!(
                bad["error"].as_str().unwrap_or("").contains(expected),
                "{hostile}: {doc:#}"
            );
        } else {
            assert!(auth.stderr.contains(expected), "{hostile}: {}", auth.stderr);
        }

        let list = with(&home, hostile, &["auth", "list", "--json"]).ok();
        let doc = list.json();
        let mm = doc["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == "minimax-oauth")
            .expect("minimax-oauth in the list");
        assert_eq!(mm["logins"].as_array().unwrap().len(), 1, "{doc:#}");
    }
}

#[test]
fn a_huge_refresh_error_does_not_grow_auth_json() {
    let (_emu, home) = setup();
    home.run(&["auth", "add", "hostile", "--no-browser"]).ok();
    // Make the hostile login due for a refresh.
    let path = home.path().join("auth.json");
    let mut doc = home.auth_json();
    doc["providers"]["hostile"]["expires_at_ms"] = serde_json::json!(now_ms() - 1_000);
    doc["providers"]["hostile"]["expires_at"] = serde_json::json!("2020-01-01T00:00:00+00:00");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();

    let mut c = home.command(&["auth", "token", "hostile"]);
    c.env("HERMES_HOSTILE", "huge:refresh"); // 100 MiB code and message
                                             // Making 200 MiB takes a while in a debug build; this is not about deadlines.
    c.env("HERMES_PLUGIN_TIMEOUT_MS", "600000");
    let o = c.output().expect("run hermes");
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    assert!(o.stderr.len() < 4096, "stderr is {} bytes", o.stderr.len());
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 16 * 1024, "auth.json grew to {size} bytes");
    let failure = &home.auth_json()["providers"]["hostile"]["last_refresh_failure"];
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("xxx"), "{stderr}");
    assert!(
        failure["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("xxx")),
        "the failure is still recorded, clipped: {failure}"
    );

    // A huge status summary is clipped in doctor's report too.
    let run = with(&home, "huge:status", &["doctor", "--json"]);
    assert!(
        run.stdout.len() < 64 * 1024,
        "doctor printed {} bytes",
        run.stdout.len()
    );
    let doc = run.json();
    assert_minimax_reported_valid(&doc);
    let hostile = findings_about(&doc, "hostile");
    let report = hostile
        .iter()
        .find(|f| f["status"]["state"] == "valid")
        .unwrap_or_else(|| panic!("the huge report is not shown, clipped: {doc:#}"));
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("xxx") && message.len() < 8 * 1024,
        "{message}"
    );
}

#[test]
fn a_plugin_that_changes_directory_cannot_move_a_relative_hermes_home() {
    let (_emu, mut home) = setup();
    home.run(&["auth", "add", "hostile", "--no-browser"]).ok();
    // The same home, named relative to the directory hermes starts in.
    home.set_env("HERMES_HOME", "home");
    let mut c = home.command(&["auth", "token", "hostile"]);
    c.current_dir(home.scratch())
        .env("HERMES_HOSTILE", "chdir:provider");
    let o = c.output().expect("run hermes");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hostile-access-token\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_plugin_that_closes_stdout_cannot_make_hermes_files_take_its_number() {
    let (_emu, home) = setup();
    home.run(&["auth", "add", "hostile", "--no-browser"]).ok();
    let path = home.path().join("auth.json");
    let mut doc = home.auth_json();
    doc["providers"]["hostile"]["expires_at_ms"] = serde_json::json!(now_ms() - 1_000);
    doc["providers"]["hostile"]["expires_at"] = serde_json::json!("2020-01-01T00:00:00+00:00");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    // fd 1 closed when the provider opens; the lock file and the new auth.json are opened
    // next, and the refresh then writes to "stdout".
    let run = with(
        &home,
        "close-stdout:provider,stdout:refresh",
        &["auth", "token", "hostile"],
    )
    .ok();
    assert_eq!(run.stdout, "hostile-access-token-2\n");
    for f in ["auth.lock", "auth.json"] {
        let bytes = std::fs::read(home.path().join(f)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(GARBAGE),
            "the plugin's output landed in {f}"
        );
    }
    home.auth_json();
}

#[test]
fn a_hanging_in_process_call_names_the_plugin_and_the_call() {
    let (_emu, home) = setup();
    home.run(&["auth", "add", "hostile", "--no-browser"]).ok();
    for (hostile, call) in [
        ("hang:provider", "provider()"),
        ("hang:needs-refresh", "RuntimeCredential::needs_refresh"),
        ("hang:runtime", "RuntimeCredential::runtime"),
    ] {
        let run = with(&home, hostile, &["auth", "token", "hostile"]);
        assert_ne!(run.code, 0, "{hostile}");
        assert!(
            run.stderr.contains(&format!(
                "plugin hostile did not answer within 2 s in {call}"
            )),
            "{hostile}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    // A due refresh that hangs: named, and the store lock is given back (the next command
    // that needs it does not wait for a lock).
    let path = home.path().join("auth.json");
    let mut doc = home.auth_json();
    doc["providers"]["hostile"]["expires_at_ms"] = serde_json::json!(now_ms() - 1_000);
    doc["providers"]["hostile"]["expires_at"] = serde_json::json!("2020-01-01T00:00:00+00:00");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let run = with(&home, "hang:refresh", &["auth", "token", "hostile"]);
    assert!(
        run.stderr
            .contains("plugin hostile did not answer within 2 s in RuntimeCredential::refresh"),
        "{}",
        run.stderr
    );
    let mut c = home.command(&["auth", "token", "hostile"]);
    c.env("HERMES_LOCK_TIMEOUT_MS", "1");
    let o = c.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hostile-access-token-2\n"
    );

    // describe() hanging while loading for a command: the provider is named as unavailable.
    let run = with(&home, "hang:describe", &["auth", "token", "hostile"]);
    assert!(
        run.stderr.contains("plugin hostile 0.1.0 failed to load")
            && run.stderr.contains("did not answer within 2 s"),
        "{}",
        run.stderr
    );
}

#[test]
fn auth_add_timeout_bounds_a_hanging_poll() {
    let (_emu, mut home) = setup();
    // Only --timeout bounds it here, not the call deadline.
    home.set_env("HERMES_PLUGIN_TIMEOUT_MS", "600000");
    let run = with(
        &home,
        "hang:poll",
        &["auth", "add", "hostile", "--no-browser", "--timeout", "1"],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("gave up waiting for approval"),
        "{}",
        run.stderr
    );
    assert!(home.auth_json()["providers"].get("hostile").is_none());
}

#[test]
fn ctrl_c_ends_a_hanging_poll() {
    use std::io::Read;
    let (_emu, home) = setup();
    let mut c = home.command(&["auth", "add", "hostile", "--no-browser"]);
    c.env("HERMES_HOSTILE", "hang:poll")
        .env("HERMES_PLUGIN_TIMEOUT_MS", "600000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let pid = child.id();
    // Wait for the code to be shown (the poll starts next) and for hermes's SIGINT handler.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("code: HOSTILE") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let catches_sigint = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("SigCgt:"))?.to_string();
                u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
    };
    while !catches_sigint() {
        std::thread::yield_now();
    }
    // SAFETY: plain FFI call on the pid of our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("sign-in cancelled; nothing was saved"),
        "{rest}"
    );
}

/// Commands about minimax-oauth — by id, by alias, chat — and listings read the descriptors
/// recorded at install and load only the plugin they call: whatever the hostile plugin does
/// when it is loaded or opened, they never run its code.
#[test]
fn commands_load_only_the_plugin_they_call() {
    let (_emu, home) = setup();
    let token = stored(&home)["access_token"].as_str().unwrap().to_string();
    for hostile in [
        "segv:describe",
        "hang:describe",
        "abort:describe",
        "hang:provider",
        "segv:provider",
    ] {
        let run = with(&home, hostile, &["auth", "token", "minimax-portal"]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (0, format!("{token}\n").as_str()),
            "{hostile}: {}",
            run.stderr
        );
        let run = with(
            &home,
            hostile,
            &["auth", "status", "minimax-portal", "--json"],
        );
        assert_eq!(run.code, 0, "{hostile}: {}", run.all());
        let doc = run.json();
        assert_eq!(doc["providers"][0]["provider"], "minimax-oauth", "{doc:#}");
        assert_eq!(doc["providers"][0]["logged_in"], true, "{hostile}: {doc:#}");

        let run = with(
            &home,
            hostile,
            &["chat", "-q", "hi", "--provider", "minimax-oauth", "--json"],
        );
        assert_eq!(run.code, 0, "{hostile}: {}", run.all());
        assert!(run.json()["text"].is_string(), "{hostile}: {}", run.stdout);
        let run = with(
            &home,
            hostile,
            &["chat", "-q", "hi", "--provider", "minimax-portal"],
        );
        assert_eq!(run.code, 0, "{hostile}: {}", run.all());

        let run = with(&home, hostile, &["plugins", "list"]);
        assert_eq!(run.code, 0, "{hostile}: {}", run.all());
        assert!(
            run.stdout.contains("minimax-oauth (minimax-portal")
                && run
                    .stdout
                    .lines()
                    .any(|l| l.starts_with("hostile ") && l.contains(" ok ")),
            "{hostile}: {}",
            run.stdout
        );
        let run = with(&home, hostile, &["plugins", "list", "--json"]);
        assert_eq!(run.code, 0, "{hostile}: {}", run.all());
        let doc = run.json();
        assert_eq!(doc["plugins"].as_array().unwrap().len(), 2, "{doc:#}");
        for p in doc["plugins"].as_array().unwrap() {
            assert_eq!(p["loaded"], false, "listing loads nothing: {doc:#}");
        }
        for name in ["minimax-oauth", "minimax-portal", "hostile"] {
            let run = with(&home, hostile, &["plugins", "info", name]);
            assert_eq!(run.code, 0, "{hostile} {name}: {}", run.all());
            assert!(run.stdout.contains("  provider "), "{name}: {}", run.stdout);
        }
        let run = with(
            &home,
            hostile,
            &["model", "--provider", "minimax-portal", "--aux"],
        );
        assert_eq!(run.code, 0, "{hostile}: {}", run.all());
    }
}

/// Records written before descriptors were recorded keep working (the plugins are loaded,
/// as before) and get their descriptor recorded; a library that is no longer the file its
/// descriptor was read from is not described by it.
#[test]
fn records_without_a_descriptor_or_with_a_changed_library_fall_back_to_loading() {
    let (_emu, home) = setup();
    let path = home.path().join("plugins.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for p in doc["plugins"].as_array_mut().unwrap() {
        assert!(
            p["desc"]["providers"].is_array(),
            "install records it: {p:#}"
        );
        p.as_object_mut().unwrap().remove("desc");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();

    let token = stored(&home)["access_token"].as_str().unwrap().to_string();
    let run = with(&home, "", &["auth", "token", "minimax-portal"]).ok();
    assert_eq!(run.stdout, format!("{token}\n"));
    // Loaded once without a descriptor, recorded since.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for p in doc["plugins"].as_array().unwrap() {
        assert!(p["desc"]["providers"].is_array(), "filled in: {p:#}");
    }
    let run = with(&home, "segv:describe", &["plugins", "list"]).ok();
    assert!(run.stdout.contains("hostile "), "{}", run.stdout);

    // Another library in the hostile plugin's place: its recorded descriptor no longer
    // describes it; listing re-hashes it and says it changed.
    let rel = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "hostile")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let lib_path = home.path().join(rel);
    std::fs::remove_file(&lib_path).unwrap();
    std::fs::copy(lib("fixture_test_provider"), &lib_path).unwrap();
    let run = with(&home, "", &["plugins", "list", "--json"]).ok();
    let doc = run.json();
    let hostile = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "hostile")
        .unwrap()
        .clone();
    assert_eq!(hostile["status"], "changed", "{doc:#}");
    let run = with(&home, "", &["auth", "token", "minimax-portal"]).ok();
    assert_eq!(run.stdout, format!("{token}\n"));
}

/// `plugins check` on the hostile library with `hostile` set: the JSON document (always
/// printed) and the findings of its failed checks, one string.
fn probe(home: &Home, hostile: &str, env: &[(&str, &str)]) -> (serde_json::Value, String) {
    let mut c = home.command(&[
        "plugins",
        "check",
        lib("fixture_hostile").to_str().unwrap(),
        "--json",
    ]);
    c.env("HERMES_HOSTILE", hostile)
        .env("HERMES_HOSTILE_MB", "8");
    c.envs(env.iter().copied());
    let run = Run::from_output(c.output().expect("run hermes"));
    assert_eq!(run.code, 1, "{hostile}: {}", run.all());
    let doc = run.json();
    assert_eq!(doc["ok"], false, "{hostile}: {doc:#}");
    let findings = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .flat_map(|c| c["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| f.as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n");
    (doc, findings)
}

/// The install probe names the call a library hung or crashed in, prints JSON whatever
/// happened, and reports writes to stdout and a closed stdout as findings naming the call.
#[test]
fn the_install_probe_names_the_call_and_always_reports() {
    let (_emu, home) = setup();
    for (hostile, expected) in [
        ("hang:status", "did not answer within 2 s in Status::status"),
        ("hang:describe", "did not answer within 2 s in describe()"),
        (
            "hang:refresh",
            "did not answer within 2 s in RuntimeCredential::refresh",
        ),
        (
            "segv:status",
            "crashed with signal 11 during Status::status",
        ),
        ("abort:poll", "crashed with signal 6 during AuthFlow::poll"),
        ("stdout:describe", "wrote to stdout during describe()"),
        ("stdout:status", "wrote to stdout during Status::status"),
        (
            "close-stdout:status",
            "closed or replaced stdout (fd 1) during Status::status",
        ),
    ] {
        let (doc, findings) = probe(&home, hostile, &[]);
        assert!(
            findings.contains(expected),
            "{hostile}: no finding says {expected:?}: {doc:#}"
        );
        assert!(
            !findings.contains("exited with status 0"),
            "{hostile}: {doc:#}"
        );
    }
    // Install refuses it with the same line.
    let mut c = home.command(&[
        "plugins",
        "install",
        lib("fixture_hostile").to_str().unwrap(),
        "--force",
    ]);
    c.env("HERMES_HOSTILE", "hang:status");
    let run = Run::from_output(c.output().expect("run hermes")).code(1);
    assert!(
        run.stderr
            .contains("did not answer within 2 s in Status::status"),
        "{}",
        run.stderr
    );
}

/// The probe child runs under an address-space limit: a library that allocates without
/// bound fails there (and is reported) instead of taking the machine's memory.
#[test]
fn the_install_probe_limits_the_memory_of_the_library() {
    let (_emu, home) = setup();
    let (doc, findings) = probe(
        &home,
        "huge:describe",
        &[
            ("HERMES_HOSTILE_MB", "768"),
            ("HERMES_PROBE_MEMORY_MB", "512"),
        ],
    );
    assert!(
        findings.contains("crashed with signal 6 while loading"),
        "{doc:#}"
    );
}
