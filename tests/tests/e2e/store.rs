//! The credential store against odd files and hostile neighbours: planted temp files and
//! symlinks, a symlinked `auth.json`, FIFOs and devices, a read-only home, and a file as the
//! Python hermes leaves it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Sign in with a token that is due, so the next `auth token` refreshes and writes the store.
fn due_login() -> (Emulator, Home) {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    (emu, home)
}

/// Run with a deadline, so that a hang fails the test instead of stalling the suite (this is
/// a liveness guard, not a speed check: the command normally ends in milliseconds).
fn run_or_hang(home: &Home, args: &[&str]) -> Run {
    let mut child = home
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            return Run {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            };
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("hermes {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Temp files left under `dir` by the store.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(".auth.json."))
        .collect()
}

/// Symlinks planted at every name the earlier predictable temp file (`.auth.json.tmp.<pid>`)
/// could take for the next few hundred processes, pointing at a victim file: the store writes
/// only to fresh random names created with `O_EXCL|O_NOFOLLOW`, so the victim is never
/// written or chmod-ed, and the planted links (leftovers by their name) are removed.
#[test]
fn planted_temp_file_symlinks_are_never_followed() {
    let (_emu, home) = due_login();
    let victim = home.scratch().join("victim.txt");
    std::fs::write(&victim, "not yours\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let next_pid = Command::new("true").spawn().unwrap().id();
    for pid in next_pid..next_pid + 400 {
        std::os::unix::fs::symlink(&victim, home.path().join(format!(".auth.json.tmp.{pid}")))
            .unwrap();
    }
    let before = stored(&home)["refresh_token"].clone();
    home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_ne!(
        stored(&home)["refresh_token"],
        before,
        "the refresh was saved"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours\n");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert!(
        temp_files(&home.path()).is_empty(),
        "{:?}",
        temp_files(&home.path())
    );
    assert!(!std::fs::symlink_metadata(home.path().join("auth.json"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Leftovers of interrupted writes: a complete temp file *older* than auth.json and an
/// incomplete one are removed without being used; auth.json stays as it is.
#[test]
fn stale_and_incomplete_leftovers_are_removed_not_used() {
    let (_emu, home) = due_login();
    let auth = home.path().join("auth.json");
    let current = std::fs::read_to_string(&auth).unwrap();
    let older = home.path().join(".auth.json.AAAAAAAAAAAA.tmp");
    std::fs::write(&older, current.replace("minimax-oauth", "old-provider")).unwrap();
    let old_time = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&older)
        .unwrap()
        .set_modified(old_time)
        .unwrap();
    std::fs::write(
        home.path().join(".auth.json.BBBBBBBBBBBB.tmp"),
        &current[..current.len() / 2],
    )
    .unwrap();
    std::fs::write(home.path().join(".auth.json.tmp.12345"), "{\"version\":1").unwrap();
    home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert!(
        temp_files(&home.path()).is_empty(),
        "{:?}",
        temp_files(&home.path())
    );
    let j = home.auth_json();
    assert!(j["providers"].get("old-provider").is_none(), "{j}");
    assert!(j["providers"]["minimax-oauth"]["refresh_token"].is_string());
}

/// A symlinked auth.json (say, shared with another HERMES_HOME) is written through: the
/// target is replaced atomically in its own folder, under a lock beside it, and the link
/// stays a link, so the other side sees the rotated refresh token instead of a spent one.
#[test]
fn a_symlinked_auth_json_is_written_through_to_its_target() {
    let (emu, home) = due_login();
    let shared = home.scratch().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let target = shared.join("auth.json");
    std::fs::rename(home.path().join("auth.json"), &target).unwrap();
    std::os::unix::fs::symlink(&target, home.path().join("auth.json")).unwrap();
    let before =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&target).unwrap())
            .unwrap()["providers"]["minimax-oauth"]["refresh_token"]
            .clone();
    let r = home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(emu.counters().refresh_success, 1);
    let link = home.path().join("auth.json");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    let s = &t["providers"]["minimax-oauth"];
    assert_ne!(
        s["refresh_token"], before,
        "the target holds the rotated pair"
    );
    assert_eq!(s["access_token"].as_str().unwrap(), r.stdout.trim());
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        shared.join("auth.lock").exists(),
        "the lock lives beside the target"
    );
    assert!(temp_files(&shared).is_empty() && temp_files(&home.path()).is_empty());

    // A link to nothing is a clear error, and nothing is created in its place.
    std::fs::remove_file(&target).unwrap();
    let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
    assert!(
        r.stderr.contains("not signed in") || r.stderr.contains("symbolic link"),
        "{}",
        r.stderr
    );
    let r = home.run(&["auth", "logout", "minimax-oauth"]).code(1);
    assert!(r.stderr.contains("is a symbolic link to"), "{}", r.stderr);
    assert!(!target.exists());
}

/// auth.json as a FIFO (every command used to hang on it), a symlink to /dev/zero (read
/// until the OOM killer) or a huge file: refused at once with a clear message.
#[test]
fn auth_json_that_is_not_a_small_regular_file_is_refused() {
    let (_emu, home) = due_login();
    let auth = home.path().join("auth.json");
    std::fs::remove_file(&auth).unwrap();
    let ok = Command::new("mkfifo").arg(&auth).status().unwrap();
    assert!(ok.success());
    for args in [
        &["auth", "token", "minimax-oauth"][..],
        &["auth", "status"],
        &["doctor"],
    ] {
        let r = run_or_hang(&home, args);
        assert_ne!(r.code, 0, "{args:?}");
        assert!(
            r.all().contains("a FIFO (named pipe), not a regular file"),
            "{args:?}: {}",
            r.all()
        );
    }
    std::fs::remove_file(&auth).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &auth).unwrap();
    let r = run_or_hang(&home, &["auth", "token", "minimax-oauth"]).code(1);
    assert!(
        r.stderr.contains("a character device, not a regular file"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(&auth).unwrap();
    let f = std::fs::File::create(&auth).unwrap();
    f.set_len(64 * 1024 * 1024).unwrap();
    let r = run_or_hang(&home, &["auth", "token", "minimax-oauth"]).code(1);
    assert!(r.stderr.contains("larger than"), "{}", r.stderr);
}

/// `auth add` on a store it could not save to stops before asking the server for a code:
/// a corrupt auth.json, and a read-only home.
#[test]
fn auth_add_checks_the_store_before_asking_for_a_code() {
    let (emu, home) = minimax(approving());
    std::fs::write(
        home.path().join("auth.json"),
        "{\"version\":1,\"providers\":{",
    )
    .unwrap();
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    assert_eq!(emu.counters().code_requests, 0);

    std::fs::remove_file(home.path().join("auth.json")).unwrap();
    let r = run_read_only(&home, &["auth", "add", "minimax-oauth", "--no-browser"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(emu.counters().code_requests, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("stuck process"), "{}", r.stderr);
    assert!(
        r.stderr.contains("read-only") || r.stderr.contains("not writable"),
        "{}",
        r.stderr
    );
}

/// Lock errors on a read-only home say what is wrong, not "a stuck process".
#[test]
fn lock_errors_on_a_read_only_home_say_what_is_wrong() {
    let (_emu, home) = due_login();
    let before = home.read("auth.json");
    let r = run_read_only(&home, &["auth", "token", "minimax-oauth"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot lock the credential store"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("read-only") || r.stderr.contains("not writable"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("stuck process"), "{}", r.stderr);
    assert!(
        r.stderr.contains("help: hermes needs to write in"),
        "{}",
        r.stderr
    );
    assert_eq!(home.read("auth.json"), before);
}

/// Run with `HERMES_HOME` read-only: as root (who ignores permission bits) in a private mount
/// namespace with the home bind-mounted read-only; otherwise with the home made 0500.
fn run_read_only(home: &Home, args: &[&str]) -> Run {
    let h = home.path();
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root {
        std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o500)).unwrap();
        let r = home.run(args);
        std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o700)).unwrap();
        return r;
    }
    let inner = home.command(args);
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c"])
        .arg("mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && shift 0 && exec \"$@\"")
        .arg(&h)
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let o = c.stdin(Stdio::null()).output().expect("run unshare");
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("mount:") && !r.stderr.contains("unshare:"),
        "cannot make a read-only home here: {}",
        r.stderr
    );
    r
}

/// doctor reports a malformed or unreadable config.yaml (it used to say "no problems").
#[test]
fn doctor_reports_a_malformed_config_yaml() {
    let home = Home::new();
    home.install_minimax();
    std::fs::write(home.path().join("config.yaml"), "model: [unclosed\n").unwrap();
    let r = home.run(&["doctor"]).code(1);
    assert!(r.stdout.contains("is not valid YAML"), "{}", r.all());
    std::fs::remove_file(home.path().join("config.yaml")).unwrap();
    std::fs::create_dir(home.path().join("config.yaml")).unwrap();
    let r = home.run(&["doctor"]).code(1);
    assert!(r.stdout.contains("config.yaml"), "{}", r.all());
}

/// `config set` refuses a key deeper than any hermes reads (a 130-level key used to make
/// every later command fail with "recursion limit exceeded").
#[test]
fn config_set_refuses_absurdly_deep_keys() {
    let home = Home::new();
    home.install_minimax();
    let deep = vec!["a"; 130].join(".");
    let r = home.run(&["config", "set", &deep, "1"]).code(2);
    assert!(r.stderr.contains("levels"), "{}", r.stderr);
    assert!(!home.path().join("config.yaml").exists());
    home.run(&["config", "set", "providers.minimax-oauth.region", "cn"])
        .ok();
    home.run(&["status"]).ok();
}

/// `--timeout` at or above 2^63 seconds neither wraps to "already expired" nor panics (the
/// approval comes on the third poll, after the deadline has been checked).
#[test]
fn huge_timeouts_do_not_wrap() {
    // Two pending polls per sign-in, each followed by the poll interval on the test clock.
    let (emu, home, _clock) = minimax_on_test_clock(EmulatorConfig {
        approve_after_polls: 2,
        ..approving()
    });
    for t in ["9223372036854775808", "18446744073709551615"] {
        let r = home
            .run(&[
                "auth",
                "add",
                "minimax-oauth",
                "--no-browser",
                "--timeout",
                t,
            ])
            .ok();
        assert!(r.stdout.contains("Signed in"), "{}", r.all());
    }
    assert_eq!(emu.counters().logins_completed, 2);
}

/// `auth token > /dev/full`: the token could not be written, so the command fails.
#[test]
fn auth_token_to_a_full_device_fails() {
    let (_emu, home) = minimax(approving());
    login(&home);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = home
        .command(&["auth", "token", "minimax-oauth"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot write to stdout"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A file as the Python hermes leaves it after its own refresh: the provider block has a fresh
/// `expires_at` (merged in) and the stale `expires_at_ms` of the previous token. `expires_at`
/// is authoritative there, so hermes neither reports the token as nearly expired nor spends
/// the refresh token on a needless rotation; and it never writes `expires_at_ms` into the
/// provider block itself (pool entries keep theirs).
#[test]
fn a_file_left_by_the_python_hermes_after_its_refresh_is_read_right() {
    let (emu, home) = minimax(approving());
    let (at, rt) = emu.issue_tokens("global", 900_000);
    let fresh = now_ms() + 900_000;
    let stale = now_ms() - 600_000;
    let iso = |ms: i64| hermes::timefmt::iso_from_ms(ms).unwrap();
    let file = serde_json::json!({
        "version": 1,
        "active_provider": "minimax-oauth",
        "providers": {"minimax-oauth": {
            "provider": "minimax-oauth", "region": "global",
            "portal_base_url": emu.url(), "inference_base_url": emu.inference_url(),
            "client_id": "78257093-7e40-4613-99e0-527b14b39113",
            "scope": "group_id profile model.completion", "token_type": "Bearer",
            "access_token": at, "refresh_token": rt,
            "obtained_at": iso(now_ms()), "expires_at": iso(fresh), "expires_in": 900,
            "expires_at_ms": stale,
        }},
        "credential_pool": {"minimax-oauth": [
            {"id": "a1b2c3", "label": "", "auth_type": "oauth", "priority": 0, "source": "oauth"}
        ]},
    });
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::write(
        home.path().join("auth.json"),
        serde_json::to_string_pretty(&file).unwrap(),
    )
    .unwrap();
    let st = home.run(&["auth", "status", "minimax-oauth"]).ok();
    assert!(
        st.stdout.contains("valid 15 min") || st.stdout.contains("valid 14 min"),
        "{}",
        st.stdout
    );
    let t = home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(t.stdout.trim(), at);
    assert_eq!(emu.counters().refresh_requests, 0, "a needless refresh");

    // After hermes's own refresh, the provider block carries `expires_at` only.
    emu.set_config(|c| c.access_ttl_ms = 30_000);
    let acc = home.auth_json();
    let mut f = acc.clone();
    f["providers"]["minimax-oauth"]["expires_at"] =
        serde_json::Value::String(iso(now_ms() + 30_000));
    std::fs::write(
        home.path().join("auth.json"),
        serde_json::to_string_pretty(&f).unwrap(),
    )
    .unwrap();
    home.run(&["auth", "token", "minimax-oauth"]).ok();
    assert_eq!(emu.counters().refresh_success, 1);
    let s = stored(&home);
    assert!(s.get("expires_at_ms").is_none(), "{s}");
    assert!(s["expires_at"].is_string());
}
