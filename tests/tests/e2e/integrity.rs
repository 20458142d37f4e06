//! The plugin store under attack: records leading out of the plugins folder, symlinked
//! folders, a source swapped during install, a library replaced after install, links planted
//! at temp names, duplicate records, install racing remove, loose permissions. Each test
//! performs the attack with the real binary and shows the refusal, that nothing outside the
//! plugins folder changed, and that no foreign code ran.

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::{lib, sha256_hex, Home, Run};

/// Everything under `root` except the plugins folder and the plugin set's own files
/// (`plugins.json`, `plugins.lock`): path → what it is (file bytes' hash, link target, dir).
fn outside_plugins(root: &Path, home: &Path) -> BTreeMap<PathBuf, String> {
    let skip = [
        home.join("plugins"),
        home.join("plugins.json"),
        home.join("plugins.lock"),
    ];
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let p = e.path();
            if skip.contains(&p) {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else {
                format!("file {}", sha256_hex(&std::fs::read(&p).unwrap()))
            };
            out.insert(p, what);
        }
    }
    out
}

/// plugins.json, parsed.
fn manifest(home: &Home) -> serde_json::Value {
    serde_json::from_str(&home.read("plugins.json")).unwrap()
}

fn write_manifest(home: &Home, m: &serde_json::Value) {
    std::fs::write(
        home.path().join("plugins.json"),
        serde_json::to_string_pretty(m).unwrap(),
    )
    .unwrap();
}

/// The `fix` of the first doctor finding about `subject` whose message contains `needle`.
fn doctor_fix(home: &Home, subject: &str, needle: &str) -> String {
    let d = home.run(&["doctor", "--json"]).json();
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == subject && f["message"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no finding about {subject} with {needle:?}: {d:#}"))["fix"]
        .as_str()
        .expect("a fix")
        .to_string()
}

/// Run a `hermes …` fix line as a user would paste it (plain words only).
fn run_fix(home: &Home, fix: &str) -> crate::support::Run {
    let words: Vec<&str> = fix.split_whitespace().collect();
    assert_eq!(words[0], "hermes", "not a hermes command: {fix}");
    assert!(
        !fix.contains(['`', '$', ';', '|', '&', '\'']),
        "the fix must be a plain command: {fix}"
    );
    home.run(&words[1..])
}

/// A plugin status as `plugins list --json` reports it.
fn status_of(home: &Home, id: &str) -> (String, String) {
    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    let p = j["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {j:#}"))
        .clone();
    (
        p["status"].as_str().unwrap().to_string(),
        p["reason"].as_str().unwrap_or_default().to_string(),
    )
}

const MINIMAX_LIB: &str = "plugins/minimax-oauth/0.1.0/libminimax_oauth.so";

#[test]
fn regress_dotdot_record_remove_deletes_nothing_outside_the_plugins_folder() {
    let home = Home::new();
    home.install_minimax();
    // A folder of the user's beside HERMES_HOME, and the credential store inside it.
    let docs = home.scratch().join("Documents/x");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("thesis.txt"), b"years of work").unwrap();
    // Files that happen to carry the names the records give.
    std::fs::write(docs.join("libevil.so"), b"not a plugin").unwrap();
    std::fs::write(docs.join("libminimax_oauth.so"), b"not a plugin either").unwrap();
    std::fs::write(home.path().join("auth.json"), b"{\"version\":1}").unwrap();
    let mut m = manifest(&home);
    let mut evil = m["plugins"][0].clone();
    evil["id"] = "evil".into();
    evil["path"] = "plugins/../../Documents/x/libevil.so".into();
    m["plugins"].as_array_mut().unwrap().push(evil);
    // The same trick on a real plugin's record: its reinstall removes the "old" folder.
    m["plugins"][0]["path"] = "plugins/../../Documents/x/libminimax_oauth.so".into();
    write_manifest(&home, &m);
    let before = outside_plugins(&home.scratch(), &home.path());

    let (status, reason) = status_of(&home, "evil");
    assert_eq!(status, "refused");
    assert!(
        reason.contains("is not a plain path inside the plugins folder"),
        "{reason}"
    );
    let r = home.run(&["plugins", "remove", "evil"]).ok();
    assert!(
        r.stderr.contains("its files were left alone"),
        "{}",
        r.stderr
    );
    // Doctor's fix for the tampered record is a reinstall; running it is safe.
    let fix = doctor_fix(&home, "minimax-oauth", "not a plain path");
    assert!(
        fix.starts_with("hermes plugins remove minimax-oauth"),
        "{fix}"
    );
    for step in fix.split(", then ") {
        run_fix(&home, step).ok();
    }
    assert_eq!(
        outside_plugins(&home.scratch(), &home.path()),
        before,
        "something outside the plugins folder changed"
    );
    assert_eq!(status_of(&home, "minimax-oauth").0, "ok");
    assert!(!manifest(&home).to_string().contains(".."));
}

#[test]
fn a_symlinked_plugin_folder_is_not_loaded_and_remove_leaves_its_target() {
    let home = Home::new();
    home.install_minimax();
    let elsewhere = home.scratch().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(
        home.path().join("plugins/minimax-oauth"),
        elsewhere.join("minimax-oauth"),
    )
    .unwrap();
    std::fs::write(elsewhere.join("minimax-oauth/0.1.0/keep.txt"), b"mine").unwrap();
    symlink(
        elsewhere.join("minimax-oauth"),
        home.path().join("plugins/minimax-oauth"),
    )
    .unwrap();
    let before = outside_plugins(&home.scratch(), &home.path());

    let (status, reason) = status_of(&home, "minimax-oauth");
    assert_eq!(status, "refused", "{reason}");
    assert!(reason.contains("is a symbolic link"), "{reason}");
    let r = home.run(&["auth", "status", "minimax-oauth"]).code(1);
    assert!(
        r.stderr
            .contains("is unavailable: plugin minimax-oauth 0.1.0 refused")
            && r.stderr.contains("is a symbolic link"),
        "{}",
        r.stderr
    );
    let r = home.run(&["plugins", "remove", "minimax-oauth"]).ok();
    assert!(r.stderr.contains("is a symbolic link"), "{}", r.stderr);
    assert_eq!(
        outside_plugins(&home.scratch(), &home.path()),
        before,
        "remove reached through the link"
    );
    assert!(elsewhere
        .join("minimax-oauth/0.1.0/libminimax_oauth.so")
        .is_file());
    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    assert_eq!(j["plugins"].as_array().unwrap().len(), 0);
}

#[test]
fn a_source_swapped_during_install_never_installs_unverified_bytes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let home = Home::new();
    let dir = home.scratch().join("build");
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.so");
    let bad = dir.join("bad.so");
    std::fs::copy(lib("minimax_oauth"), &good).unwrap();
    // A library whose ABI layout does not match: run without the layout check, it crashes.
    std::fs::copy(lib("fixture_layout_mismatch"), &bad).unwrap();
    let src = dir.join("libminimax_oauth.so");
    std::fs::copy(&good, &src).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, dir, src) = (stop.clone(), dir.clone(), src.clone());
        let (good, bad) = (good.clone(), bad.clone());
        std::thread::spawn(move || {
            let tmp = dir.join("next.so");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let from = if n.is_multiple_of(2) { &bad } else { &good };
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(from, &tmp).unwrap();
                std::fs::rename(&tmp, &src).unwrap();
                n += 1;
            }
            n
        })
    };
    let good_sum = sha256_hex(&std::fs::read(&good).unwrap());
    let mut installed = 0;
    for _ in 0..24 {
        let r = home.run(&["plugins", "install", src.to_str().unwrap()]);
        if r.code != 0 {
            continue;
        }
        installed += 1;
        let rec = manifest(&home)["plugins"][0].clone();
        let bytes = std::fs::read(home.path().join(rec["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            rec["sha256"].as_str().unwrap(),
            "the installed library is not the one whose checksum was recorded"
        );
        assert_eq!(
            rec["sha256"].as_str().unwrap(),
            good_sum,
            "bytes that failed the trial load were installed"
        );
        let l = home.run(&["plugins", "list", "--json"]);
        assert_eq!(l.code, 0, "plugins list died: {}", l.stderr);
        assert_eq!(l.json()["plugins"][0]["status"], "ok");
        home.run(&["plugins", "remove", "minimax-oauth"]).ok();
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 24, "the source was not swapped during the installs");
    assert!(installed > 0, "no install succeeded in 24 tries");
}

#[test]
fn a_library_replaced_after_install_is_never_loaded() {
    let mut home = Home::new();
    home.install_minimax();
    let marker = home.scratch().join("foreign-code-ran");
    home.set_env("HERMES_TEST_MARKER", marker.to_str().unwrap());
    let foreign = lib("fixture_marker_on_load");
    // The fixture works: loading it anywhere runs its constructor (here in the trial load).
    home.run(&["plugins", "check", foreign.to_str().unwrap()]);
    assert!(
        marker.exists(),
        "the marker fixture's constructor did not run"
    );
    std::fs::remove_file(&marker).unwrap();

    let installed = home.path().join(MINIMAX_LIB);
    let original = std::fs::read(&installed).unwrap();
    // `cat other.so > installed`: same inode, new bytes.
    std::fs::write(&installed, std::fs::read(&foreign).unwrap()).unwrap();
    for args in [
        &["plugins", "list"][..],
        &["plugins", "info", "minimax-oauth"],
        &["auth", "status"],
        &["auth", "status", "minimax-oauth"],
        &["auth", "token", "minimax-oauth"],
        &["status"],
        &["doctor"],
        &["doctor", "--json"],
        &["doctor", "--deep"],
    ] {
        let r = home.run(args);
        assert!(
            !marker.exists(),
            "`hermes {}` ran the replaced library's code\n{}",
            args.join(" "),
            r.all()
        );
    }
    let (status, reason) = status_of(&home, "minimax-oauth");
    assert_eq!(status, "changed");
    assert!(
        reason.contains("minimax-oauth 0.1.0 changed since it was installed")
            && reason.contains("reinstall it with `hermes plugins install minimax-oauth`"),
        "{reason}"
    );
    // The reinstall doctor suggests restores the plugin; the foreign code never ran.
    let fix = doctor_fix(&home, "minimax-oauth", "changed since it was installed");
    run_fix(&home, &fix).ok();
    assert_eq!(status_of(&home, "minimax-oauth").0, "ok");
    assert_eq!(std::fs::read(&installed).unwrap(), original);

    // Same size and the modification time set back: only the change time tells.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&installed)
        .unwrap();
    let mtime = f.metadata().unwrap().modified().unwrap();
    let mut bytes = original.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    use std::io::{Seek, Write};
    (&f).seek(std::io::SeekFrom::Start(0)).unwrap();
    (&f).write_all(&bytes).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(status_of(&home, "minimax-oauth").0, "changed");
    assert!(!marker.exists());
}

#[test]
fn a_link_planted_at_the_old_temp_names_is_not_followed() {
    let home = Home::new();
    home.install_minimax();
    let victim = home.scratch().join("victim.txt");
    std::fs::write(&victim, b"do not overwrite").unwrap();
    let changed = home.scratch().join("libminimax_oauth.so");
    let mut bytes = std::fs::read(lib("minimax_oauth")).unwrap();
    bytes.extend_from_slice(b"\0a different build");
    std::fs::write(&changed, &bytes).unwrap();
    // The temp names hermes once used were `.<name>.tmp.<pid>`. The install starts stopped
    // (a shell stops itself, then execs hermes under the same pid), links are planted at
    // both names for its pid, and then it goes on: whatever else runs on the machine, the
    // names it would have used are taken.
    let vdir = home.path().join("plugins/minimax-oauth/0.1.0");
    let install = home.command(&["plugins", "install", changed.to_str().unwrap()]);
    let mut command = std::process::Command::new("/bin/sh");
    command
        .env_clear()
        .envs(install.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .arg("-c")
        .arg("kill -STOP $$ && exec \"$0\" \"$@\"")
        .arg(install.get_program())
        .args(install.get_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    let pid = child.id();
    let mut status = 0;
    // SAFETY: waits for a stop of this test's own child without reaping it.
    let stopped = unsafe { libc::waitpid(pid as i32, &mut status, libc::WUNTRACED) };
    assert!(
        stopped == pid as i32 && libc::WIFSTOPPED(status),
        "the install did not stop before running"
    );
    for planted in [
        vdir.join(format!(".libminimax_oauth.so.tmp.{pid}")),
        home.path().join(format!(".plugins.json.tmp.{pid}")),
    ] {
        symlink(&victim, planted).unwrap();
    }
    // SAFETY: continues this test's own stopped child.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    let r = Run::from_output(child.wait_with_output().unwrap()).ok();
    assert!(
        r.stdout.contains("reinstalled minimax-oauth"),
        "{}",
        r.stdout
    );
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&victim).unwrap()),
        "do not overwrite"
    );
    let m = std::fs::symlink_metadata(home.path().join(MINIMAX_LIB)).unwrap();
    assert!(m.file_type().is_file(), "the library is a link now");
    let m = std::fs::symlink_metadata(home.path().join("plugins.json")).unwrap();
    assert!(m.file_type().is_file(), "plugins.json is a link now");
    assert_eq!(
        sha256_hex(&std::fs::read(home.path().join(MINIMAX_LIB)).unwrap()),
        sha256_hex(&bytes)
    );
    assert_eq!(status_of(&home, "minimax-oauth").0, "ok");
    // No staging file is left behind.
    let staged: Vec<_> = std::fs::read_dir(home.path().join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[test]
fn duplicate_records_the_later_is_ignored_and_doctor_reports_it() {
    let home = Home::new();
    home.install_minimax();
    let mut m = manifest(&home);
    let dup = m["plugins"][0].clone();
    m["plugins"].as_array_mut().unwrap().push(dup);
    write_manifest(&home, &m);

    // disable acts on the one record that counts: nothing loads the plugin any more.
    home.run(&["plugins", "disable", "minimax-oauth"]).ok();
    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    let rows = j["plugins"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{j:#}");
    assert_eq!(rows[0]["status"], "disabled");
    let r = home.run(&["auth", "status", "minimax-oauth"]).code(2);
    assert!(r.stderr.contains("unknown provider"), "{}", r.stderr);
    // The disable rewrote plugins.json without the duplicate.
    assert_eq!(manifest(&home)["plugins"].as_array().unwrap().len(), 1);

    // Doctor reports a duplicate, with a fix that changes nothing else.
    home.run(&["plugins", "enable", "minimax-oauth"]).ok();
    let mut m = manifest(&home);
    let mut dup = m["plugins"][0].clone();
    dup["version"] = "0.0.9".into();
    m["plugins"].as_array_mut().unwrap().push(dup);
    write_manifest(&home, &m);
    let fix = doctor_fix(&home, "minimax-oauth", "more than once");
    assert_eq!(fix, "hermes plugins enable minimax-oauth");
    run_fix(&home, &fix).ok();
    let m = manifest(&home);
    assert_eq!(m["plugins"].as_array().unwrap().len(), 1);
    assert_eq!(m["plugins"][0]["version"], "0.1.0");
    assert_eq!(status_of(&home, "minimax-oauth").0, "ok");

    // remove takes every trace: no record is left pointing at a deleted library.
    let mut m = manifest(&home);
    let dup = m["plugins"][0].clone();
    m["plugins"].as_array_mut().unwrap().push(dup);
    write_manifest(&home, &m);
    home.run(&["plugins", "remove", "minimax-oauth"]).ok();
    assert_eq!(manifest(&home)["plugins"].as_array().unwrap().len(), 0);
    assert!(!home.path().join(MINIMAX_LIB).exists());
}

/// After an install raced a remove: either minimax-oauth has a record whose library is there
/// with the recorded checksum (true), or it has neither record nor library (false). `remove`
/// is the last remove, shown when the check fails.
fn record_and_library_agree(home: &Home, when: &str, remove: &Run) -> bool {
    let m = manifest(home);
    let Some(rec) = m["plugins"].as_array().unwrap().first() else {
        assert!(
            !home.path().join(MINIMAX_LIB).exists(),
            "{when}: a library without a record"
        );
        return false;
    };
    let lib = home.path().join(rec["path"].as_str().unwrap());
    assert!(
        lib.is_file(),
        "{when}: a record whose library is missing (remove: {})",
        remove.all()
    );
    assert_eq!(
        sha256_hex(&std::fs::read(&lib).unwrap()),
        rec["sha256"].as_str().unwrap(),
        "{when}"
    );
    true
}

#[test]
fn install_racing_remove_never_leaves_a_record_without_its_library() {
    let home = Home::new();
    let builds: Vec<PathBuf> = (0..2)
        .map(|i| {
            let p = home.scratch().join(format!("b{i}/libminimax_oauth.so"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let mut bytes = std::fs::read(lib("minimax_oauth")).unwrap();
            bytes.extend_from_slice(format!("\0build {i}").as_bytes());
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    for round in 0..20 {
        home.run(&["plugins", "install", builds[round % 2].to_str().unwrap()])
            .ok();
        let mut install = home
            .command(&[
                "plugins",
                "install",
                builds[(round + 1) % 2].to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Remove again and again while the install runs, so that some remove overlaps its
        // commit.
        let mut remove = home.run(&["plugins", "remove", "minimax-oauth"]);
        while install.try_wait().unwrap().is_none() {
            remove = home.run(&["plugins", "remove", "minimax-oauth"]);
        }
        if record_and_library_agree(&home, &format!("round {round}"), &remove) {
            assert_eq!(status_of(&home, "minimax-oauth").0, "ok");
            home.run(&["plugins", "remove", "minimax-oauth"]).ok();
        }
    }
}

#[test]
fn a_library_or_folder_writable_by_others_is_refused_at_load() {
    let home = Home::new();
    home.install_minimax();
    let installed = home.path().join(MINIMAX_LIB);
    for (what, path) in [
        ("library", installed.clone()),
        ("folder", home.path().join("plugins/minimax-oauth")),
    ] {
        let old = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (status, reason) = status_of(&home, "minimax-oauth");
        assert_eq!(status, "refused", "{what}: {reason}");
        assert!(
            reason.contains(&format!(
                "{} is writable by other users (mode 777)",
                path.display()
            )),
            "{what}: {reason}"
        );
        let r = home.run(&["auth", "status", "minimax-oauth"]).code(1);
        assert!(r.stderr.contains("was not loaded"), "{}", r.stderr);
        let fix = doctor_fix(&home, "minimax-oauth", "writable by other users");
        assert_eq!(fix, format!("chmod go-w {}", path.display()), "{what}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(old & !0o022)).unwrap();
        assert_eq!(status_of(&home, "minimax-oauth").0, "ok", "{what}");
    }
    // Owned by another user (possible to arrange only as root).
    let c = std::ffi::CString::new(installed.to_str().unwrap()).unwrap();
    // SAFETY: plain FFI call with a valid path.
    if unsafe { libc::chown(c.as_ptr(), 65534, u32::MAX) } == 0 {
        let (status, reason) = status_of(&home, "minimax-oauth");
        assert_eq!(status, "refused");
        assert!(reason.contains("is owned by another user"), "{reason}");
    }
}

/// Spawn `hermes args…` with `pause` (a test-hook variable) set, and return once it says on
/// stderr that it reached the pause point; the reader keeps the rest of stderr.
// The child is handed to the caller, which waits for it (`finish`) or kills and reaps it.
#[allow(clippy::zombie_processes)]
fn spawn_paused(
    home: &Home,
    args: &[&str],
    pause: (&str, &str),
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut child = home
        .command(args)
        .env(pause.0, pause.1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).unwrap();
        if n == 0 {
            let status = child.wait();
            panic!("{args:?} ended ({status:?}) without reaching {}", pause.0);
        }
        if line.contains("test pause:") {
            return (child, err);
        }
    }
}

/// The rest of a paused child's stderr, and its exit code.
fn finish(
    mut child: std::process::Child,
    mut err: std::io::BufReader<std::process::ChildStderr>,
) -> (i32, String) {
    use std::io::Read;
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), rest)
}

/// Two builds of the MiniMax plugin with different bytes (same id and version).
fn two_builds(home: &Home) -> Vec<PathBuf> {
    (0..2)
        .map(|i| {
            let p = home.scratch().join(format!("b{i}/libminimax_oauth.so"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let mut bytes = std::fs::read(lib("minimax_oauth")).unwrap();
            bytes.extend_from_slice(format!("\0build {i}").as_bytes());
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

/// The race made certain: an install stops after placing its library, just before its
/// `plugins.json` goes in (`HERMES_TEST_PAUSE_BEFORE_RENAME_MS`), and a remove runs
/// meanwhile. The plugins lock makes the remove wait for the install, then remove both the
/// record and the library; without the lock, the remove deletes the new library and the
/// install then writes a record of a library that no longer exists.
#[test]
fn install_paused_before_its_commit_and_a_remove_meanwhile_leave_no_record_without_library() {
    let home = Home::new();
    let builds = two_builds(&home);
    home.run(&["plugins", "install", builds[0].to_str().unwrap()])
        .ok();
    let (install, err) = spawn_paused(
        &home,
        &["plugins", "install", builds[1].to_str().unwrap()],
        ("HERMES_TEST_PAUSE_BEFORE_RENAME_MS", "1500"),
    );
    let remove = home.run(&["plugins", "remove", "minimax-oauth"]);
    let (code, rest) = finish(install, err);
    assert_eq!(code, 0, "install: {rest}");
    if !record_and_library_agree(&home, "paused install", &remove) {
        assert_eq!(remove.code, 0, "{}", remove.all());
    }
}

/// Staging folders (`plugins/.staging-*`)
fn staging_folders(home: &Home) -> Vec<String> {
    std::fs::read_dir(home.path().join("plugins"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(".staging-"))
        .collect()
}

/// An install killed after it staged and verified its copy leaves the staging folder with
/// the library in it. The next change of the plugin set removes it, under the plugins lock,
/// while the staging folder of an install still running (it holds its folder's lock) is left
/// alone and that install completes.
#[test]
fn a_killed_install_s_staging_folder_is_removed_by_the_next_change_but_a_live_one_is_kept() {
    let home = Home::new();
    let builds = two_builds(&home);
    let (mut killed, _err) = spawn_paused(
        &home,
        &["plugins", "install", builds[0].to_str().unwrap()],
        ("HERMES_TEST_PAUSE_INSTALL_STAGED_MS", "60000"),
    );
    killed.kill().unwrap();
    killed.wait().unwrap();
    let dead = staging_folders(&home);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let dead_dir = home.path().join("plugins").join(&dead[0]);
    assert!(
        std::fs::read_dir(&dead_dir).unwrap().count() == 1,
        "the killed install's copy is in its staging folder"
    );
    // Older than the grace a brand-new staging folder gets.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let (live, err) = spawn_paused(
        &home,
        &["plugins", "install", builds[1].to_str().unwrap()],
        ("HERMES_TEST_PAUSE_INSTALL_STAGED_MS", "3000"),
    );
    std::thread::sleep(std::time::Duration::from_millis(2200));
    // Any change of the plugin set cleans up (here a disable of a plugin not installed).
    home.run(&["plugins", "disable", "minimax-oauth"]);
    let left = staging_folders(&home);
    assert!(!dead_dir.exists(), "the dead staging folder is still there");
    assert_eq!(
        left.len(),
        1,
        "the live install's folder was removed: {left:?}"
    );
    let (code, rest) = finish(live, err);
    assert_eq!(code, 0, "the live install failed: {rest}");
    assert_eq!(status_of(&home, "minimax-oauth").0, "ok");
    assert!(staging_folders(&home).is_empty());
}

/// A record written by an older hermes has no `dev` in its identity, so it never matches and
/// every load re-hashes the library. After one load that re-hashed and layout-checked it, the
/// record carries the file's full identity (written once), and later loads leave
/// `plugins.json` alone.
#[test]
fn a_record_without_dev_is_completed_once_after_a_verified_load() {
    use std::os::unix::fs::MetadataExt;
    let home = Home::new();
    home.install_minimax();
    let mut m = manifest(&home);
    m["plugins"][0]["verified"]
        .as_object_mut()
        .unwrap()
        .remove("dev");
    write_manifest(&home, &m);
    assert_eq!(status_of(&home, "minimax-oauth").0, "ok");
    let dev = std::fs::metadata(home.path().join(MINIMAX_LIB))
        .unwrap()
        .dev();
    let m = manifest(&home);
    assert_eq!(
        m["plugins"][0]["verified"]["dev"].as_u64(),
        Some(dev),
        "{m:#}"
    );
    let ino = |h: &Home| {
        std::fs::metadata(h.path().join("plugins.json"))
            .unwrap()
            .ino()
    };
    let before = ino(&home);
    assert_eq!(status_of(&home, "minimax-oauth").0, "ok");
    home.run(&["auth", "status"]);
    assert_eq!(ino(&home), before, "plugins.json was written again");
}
