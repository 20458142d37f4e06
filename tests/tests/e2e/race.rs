//! Racing refreshes and crashes mid-refresh: the login survives both.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

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

/// Temp files of the store's writes left in `HERMES_HOME`.
fn leftovers(home: &Home) -> Vec<String> {
    std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(".auth.json"))
        .collect()
}

/// What one kill cost.
#[derive(Debug, PartialEq)]
enum Aftermath {
    /// The next command got a token: the login survived.
    Kept,
    /// The login was lost, and the server had rotated the pair before the kill: the kill
    /// landed between the rotation and the answer reaching the journal, this long after the
    /// rotation.
    LostAfterRotation(Duration),
    /// The login was lost, and the server rotated the pair after the kill: it finished a
    /// request whose client was already dead. No client can save that answer.
    LostToADeadClient,
}

/// After a kill at `killed_at`: the file parses and holds a complete pair; the next command
/// either works or (only when the server rotated) fails because the answer was lost; after
/// it no temp file is left. A lost login is signed in again so the run can go on.
fn after_kill(
    emu: &Emulator,
    home: &Home,
    i: usize,
    rotations_before: u64,
    killed_at: Instant,
) -> Aftermath {
    // The server may still be answering a client that is gone; let it finish so the
    // counters below tell whether the token rotated.
    assert!(
        emu.wait_idle(Duration::from_secs(30)),
        "the emulator never went idle"
    );
    let text = std::fs::read_to_string(home.path().join("auth.json")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("kill {i}: auth.json corrupt: {e}\n{text}"));
    let s = &j["providers"]["minimax-oauth"];
    assert!(
        !s["access_token"].as_str().unwrap_or("").is_empty()
            && !s["refresh_token"].as_str().unwrap_or("").is_empty(),
        "kill {i}: the login was wiped: {s}"
    );
    let rotated = emu.counters().refresh_success > rotations_before;
    let rotated_before_kill = emu
        .last_rotation()
        .filter(|t| rotated && *t < killed_at)
        .map(|t| killed_at - t);
    let reused = emu.counters().refresh_reused;
    let r = home.run(&["auth", "token", "minimax-oauth"]);
    let left = leftovers(home);
    assert!(
        left.is_empty(),
        "kill {i}: temp files left after the next command: {left:?}"
    );
    if r.code == 0 {
        assert_eq!(
            emu.counters().refresh_reused,
            reused,
            "kill {i}: a spent refresh token was presented"
        );
        return Aftermath::Kept;
    }
    assert!(
        rotated,
        "kill {i}: login unusable although the server never rotated it: {}",
        r.stderr
    );
    login(home);
    match rotated_before_kill {
        Some(gap) => Aftermath::LostAfterRotation(gap),
        None => Aftermath::LostToADeadClient,
    }
}

/// Whether process `pid` is running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Wait until no process started for `home` runs any more (found by its `HERMES_HOME`): the
/// refresh worker of a killed command finishes on its own, and may still be starting when
/// the command dies.
fn wait_for_processes_of(home: &Home) {
    let needle = format!("HERMES_HOME={}", home.path().display());
    let started = Instant::now();
    // One scan of /proc per process found (reading every process's environment is not
    // cheap); the process itself is then watched through its `stat`.
    while let Some(pid) = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
        let env = std::fs::read(e.path().join("environ")).ok()?;
        env.split(|b| *b == 0)
            .any(|kv| kv == needle.as_bytes())
            .then_some(pid)
    }) {
        while alive(pid) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "process {pid} of the home never ended"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

/// Start a refreshing `hermes auth token`, the server answering its refresh after 0–15 ms.
fn start_refreshing(
    emu: &Emulator,
    home: &Home,
) -> (std::process::Child, hermes_tests::emulator::Counters) {
    let slow = rand_u64() % 16;
    emu.inject("/oauth2/token", Fault::Slow(Duration::from_millis(slow)), 1);
    let before = emu.counters();
    (auth_token(home), before)
}

fn sigkill(pid: u32) {
    // SAFETY: sending a signal to a process this test started (or its worker).
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// A signed-in home whose token is always due: every `auth token` refreshes.
fn always_refreshing() -> (Emulator, Home) {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    (emu, home)
}

/// How long a whole refreshing `auth token` takes here, and how long its worker lives, so
/// that kill points cover all of both (the longest of two runs, plus 15 ms). Measured again
/// every 25 kills: the tests running beside this one change both several times over.
fn refresh_timings(home: &Home) -> (Duration, Duration) {
    let (mut span, mut worker_span) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..2 {
        let t = Instant::now();
        let mut child = auth_token(home);
        let worker = worker_of(child.id()).expect("the refresh ran in a worker");
        let w = Instant::now();
        while alive(worker) {
            std::thread::sleep(Duration::from_micros(200));
        }
        worker_span = worker_span.max(w.elapsed());
        assert!(child.wait().unwrap().success());
        span = span.max(t.elapsed());
    }
    let margin = Duration::from_millis(15);
    (span + margin, worker_span + margin)
}

/// A random point in `0..=within`, to the microsecond.
fn random_point(within: Duration) -> Duration {
    Duration::from_micros(rand_u64() % (within.as_micros() as u64 + 1))
}

/// `hermes auth token minimax-oauth`, started, its output dropped.
fn auth_token(home: &Home) -> std::process::Child {
    home.command(&["auth", "token", "minimax-oauth"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL of `hermes auth token` at 200 random points of a refreshing run. The refresh runs
/// in a worker process the kill does not reach, so no login may be lost, whatever the
/// timing: the worker finishes the refresh and saves the answer. After every kill
/// `auth.json` parses and holds a complete pair, and no file holding tokens is left after
/// the next command.
#[test]
fn sigkill_of_the_command_mid_refresh_never_loses_the_login() {
    let (emu, home) = always_refreshing();
    let (mut killed, mut completed, mut after_request) = (0, 0, 0);
    let mut span = Duration::ZERO;
    for i in 0..200 {
        if i % 25 == 0 {
            span = refresh_timings(&home).0;
        }
        // The kill lands anywhere in the whole run.
        let kill_after = random_point(span);
        let (mut child, before) = start_refreshing(&emu, &home);
        std::thread::sleep(kill_after);
        let killed_at = Instant::now();
        match child.try_wait().unwrap() {
            Some(_) => completed += 1,
            None => {
                child.kill().unwrap();
                killed += 1;
            }
        }
        child.wait().unwrap();
        if emu.counters().refresh_requests > before.refresh_requests {
            after_request += 1;
        }
        // Its worker goes on by design; the check starts once it has ended.
        wait_for_processes_of(&home);
        assert_eq!(
            after_kill(&emu, &home, i, before.refresh_success, killed_at),
            Aftermath::Kept,
            "kill {i} of the command (after {kill_after:?}): the login was lost"
        );
    }
    eprintln!(
        "sigkill of the command: {killed} killed mid-run ({after_request} after the request \
         reached the server), {completed} finished first, no login lost."
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

/// SIGKILL of the refresh worker itself at 200 random points of its life. The logins lost
/// are those killed between the server's rotation and the answer reaching the journal; they
/// are counted and printed, not bounded (a bound would be a timing assertion). After every
/// kill `auth.json` parses and holds a complete pair, and no file holding tokens is left
/// after the next command.
#[test]
fn sigkill_of_the_refresh_worker_never_corrupts_the_store() {
    let (emu, home) = always_refreshing();
    let (mut workers_killed, mut workers_done) = (0, 0);
    let (mut lost_after_rotation, mut lost_to_dead_client) = (0, 0);
    let mut gaps = Vec::new();
    let mut worker_span = Duration::ZERO;
    for i in 0..200 {
        if i % 25 == 0 {
            worker_span = refresh_timings(&home).1;
        }
        let kill_after = random_point(worker_span);
        let (mut child, before) = start_refreshing(&emu, &home);
        let worker = worker_of(child.id());
        std::thread::sleep(kill_after);
        let killed_at = Instant::now();
        match worker {
            Some(w) if alive(w) => {
                sigkill(w);
                workers_killed += 1;
            }
            _ => workers_done += 1,
        }
        child.wait().unwrap();
        match after_kill(&emu, &home, i, before.refresh_success, killed_at) {
            Aftermath::Kept => {}
            Aftermath::LostAfterRotation(gap) => {
                lost_after_rotation += 1;
                gaps.push(gap.as_micros());
            }
            Aftermath::LostToADeadClient => lost_to_dead_client += 1,
        }
    }
    eprintln!(
        "sigkill of the worker: {workers_killed} killed mid-run ({workers_done} finished \
         first); logins lost: {lost_after_rotation} killed between rotation and save, \
         {lost_to_dead_client} rotated by the server after its client died; kill after \
         rotation, of the logins lost between the two (µs): {gaps:?}."
    );
    assert!(
        workers_killed >= 50,
        "too few workers were killed mid-run ({workers_killed})"
    );
}

/// SIGKILL of the worker 40 times inside the pause point the store offers between writing
/// its temp file and renaming it over `auth.json` (`HERMES_TEST_PAUSE_BEFORE_RENAME_MS`):
/// the temp file holds the rotated pair and the rename has not run. The next command rolls
/// the complete temp file forward, so none may be lost.
#[test]
fn sigkill_inside_the_pause_before_the_rename_loses_nothing() {
    let (emu, mut home) = always_refreshing();
    for i in 0..40 {
        let before = emu.counters();
        let rt_before = stored(&home)["refresh_token"].as_str().unwrap().to_string();
        home.set_env("HERMES_TEST_PAUSE_BEFORE_RENAME_MS", "60000");
        let mut child = home
            .command(&["auth", "token", "minimax-oauth"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        home.set_env("HERMES_TEST_PAUSE_BEFORE_RENAME_MS", "0");
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let paused = loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
            assert!(
                n > 0,
                "kill {i}: hermes ended without reaching the pause point"
            );
            if line.contains("test pause:") {
                break line
                    .rsplit_once("(process ")
                    .and_then(|(_, p)| p.trim_end().trim_end_matches(')').parse::<u32>().ok())
                    .unwrap_or_else(|| panic!("kill {i}: no process in {line:?}"));
            }
        };
        assert_ne!(paused, child.id(), "kill {i}: the command itself refreshed");
        let killed_at = Instant::now();
        sigkill(paused);
        let status = child.wait().unwrap();
        // The command says that its refresh ended without an answer.
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        assert!(
            !status.success() && rest.contains("crashed with signal 9"),
            "kill {i}: {status:?} {rest}"
        );
        // The rename never ran: auth.json still holds the spent pair, the temp file the
        // rotated one.
        assert_eq!(
            stored(&home)["refresh_token"].as_str().unwrap(),
            rt_before,
            "kill {i}: the pause point is not before the rename"
        );
        assert!(!leftovers(&home).is_empty(), "kill {i}: no temp file");
        assert_eq!(
            after_kill(&emu, &home, i, before.refresh_success, killed_at),
            Aftermath::Kept,
            "kill {i}: a complete temp file was not rolled forward"
        );
    }
}
