//! The measurements behind `bench/run`. Wall times are medians of repeated runs; peak RSS
//! comes from the kernel's accounting of each child (`wait4`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Rows of (what, figure, target).
#[derive(Default)]
pub struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    /// Add a row (also shown on stderr as it is measured).
    pub fn row(&mut self, what: &str, figure: String, target: &str) {
        eprintln!("  {what}: {figure}");
        self.rows
            .push((what.to_string(), figure, target.to_string()));
    }
    /// Print as a Markdown table on stdout.
    pub fn print(&self) {
        println!("| measurement | result | target |");
        println!("|---|---|---|");
        for (w, f, t) in &self.rows {
            println!("| {w} | {f} | {t} |");
        }
    }
}

/// A finished child: wall time and peak RSS in KiB.
pub struct ChildStats {
    /// Wall time.
    pub wall: Duration,
    /// Peak resident set size, KiB.
    pub max_rss_kib: i64,
    /// Exit code.
    pub code: i32,
}

/// Run a command to completion and measure it. The command is started by a fresh, small
/// process (`hermes-bench __measure`): a child's peak RSS includes the memory of whoever forked
/// it until it execs, and this benchmark process holds dozens of loaded plugins.
pub fn measure(cmd: &Command) -> ChildStats {
    let exe = std::env::current_exe().expect("bench exe");
    let mut outer = Command::new(exe);
    outer
        .arg("__measure")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    let out = outer.output().expect("run __measure");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|w| w.parse::<i64>().unwrap_or(-1));
    let (ns, rss, code) = (
        it.next().unwrap_or(-1),
        it.next().unwrap_or(-1),
        it.next().unwrap_or(-1),
    );
    ChildStats {
        wall: Duration::from_nanos(ns.max(0) as u64),
        max_rss_kib: rss,
        code: code as i32,
    }
}

/// The `__measure` mode: run argv, print `wall_ns max_rss_kib exit_code`.
pub fn measure_main(argv: &[String]) -> ! {
    let Some((prog, args)) = argv.split_first() else {
        std::process::exit(2)
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call with valid out-pointers; the child is ours and not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(r, pid, "wait4 failed");
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    println!("{} {} {}", wall.as_nanos(), usage.ru_maxrss, code);
    std::process::exit(0)
}

/// Median wall time and max peak RSS of repeated runs.
pub fn repeat(n: usize, cmd: &Command) -> (Duration, i64) {
    let mut walls = Vec::with_capacity(n);
    let mut rss = 0;
    for _ in 0..n {
        let s = measure(cmd);
        assert!(s.code >= 0, "{cmd:?} did not exit normally");
        walls.push(s.wall);
        rss = rss.max(s.max_rss_kib);
    }
    walls.sort();
    (walls[n / 2], rss)
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// MB with one decimal from KiB.
pub fn mb(kib: i64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

/// A fresh `HERMES_HOME` (inside the returned temp dir).
pub fn temp_home() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().expect("tempdir");
    let h = t.path().join("home");
    (t, h)
}

/// `hermes` with a home.
pub fn hermes(dir: &Path, home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(dir.join("hermes"));
    c.args(args).env("HERMES_HOME", home).env("NO_COLOR", "1");
    c
}

/// Run a command that must succeed; its stdout.
pub fn run_ok(mut c: Command) -> String {
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Make `n` copies of the test-provider fixture with distinct ids (`bench-00`, …).
pub fn bench_copies(dir: &Path, into: &Path, n: usize) -> Vec<PathBuf> {
    let src = dir.join("libfixture_test_provider.so");
    std::fs::create_dir_all(into).expect("mkdir");
    (0..n)
        .map(|i| {
            let p = into.join(format!("libbench_{i:02}.so"));
            std::fs::copy(&src, &p).expect("copy fixture");
            p
        })
        .collect()
}

/// Plugin load, doctor with 1 and 50 plugins, `--version`.
pub fn plugins(dir: &Path, table: &mut Table) {
    // In-process load of distinct files, each loaded once (the real first-load cost). Every
    // command loads installed, unchanged libraries without repeating the layout check; install
    // and changed files get the full check.
    use hermes::plugins::loader::{load_with, Layout};
    let (_t, scratch) = temp_home();
    for (layout, what, target) in [
        (
            Layout::AlreadyVerified,
            "plugin load of a file without the layout check (mean of 50 distinct libraries)",
            "",
        ),
        (
            Layout::Check,
            "plugin load with the full ABI layout check (install, changed file)",
            "",
        ),
    ] {
        let copies = bench_copies(dir, &scratch.join(format!("{layout:?}")), 50);
        let start = Instant::now();
        for p in &copies {
            load_with(p, layout).expect("load bench plugin");
        }
        let per = start.elapsed() / copies.len() as u32;
        table.row(
            what,
            format!("{:.3} ms", per.as_secs_f64() * 1000.0),
            target,
        );
    }

    let minimax = dir.join("libminimax_oauth.so").display().to_string();
    let (_t1, home1) = temp_home();
    run_ok(hermes(dir, &home1, &["plugins", "install", &minimax]));
    let (wall, rss) = repeat(30, &hermes(dir, &home1, &["doctor"]));
    table.row(
        "hermes doctor, 1 plugin (median of 30)",
        ms(wall),
        "≤ 10 ms",
    );
    table.row("hermes doctor, 1 plugin, peak RSS", mb(rss), "≤ 10 MB");

    let (_t50, home50) = temp_home();
    let copies = bench_copies(dir, &scratch.join("installed"), 49);
    run_ok(hermes(dir, &home50, &["plugins", "install", &minimax]));
    for p in &copies {
        run_ok(hermes(
            dir,
            &home50,
            &["plugins", "install", &p.display().to_string()],
        ));
    }
    let (wall, rss) = repeat(20, &hermes(dir, &home50, &["doctor"]));
    table.row(
        "hermes doctor, 50 plugins (median of 20)",
        ms(wall),
        "≤ 30 ms",
    );
    table.row("hermes doctor, 50 plugins, peak RSS", mb(rss), "");
    // What every command does per plugin: read plugins.json, open each library as recorded
    // (the checks on the file and its folders), and load it without the layout check.
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("HERMES_HOME".to_string(), home50.display().to_string());
    let env = hermes::config::Env::from_vars(vars).expect("env");
    let start = Instant::now();
    let set = hermes::plugins::PluginSet::load(&env.paths(), hermes::plugins::runtime::Scope::All)
        .expect("load the installed plugins");
    let per = start.elapsed() / set.installed.len().max(1) as u32;
    assert!(
        set.installed.iter().all(|i| i.usable().is_some()),
        "every installed bench plugin loads"
    );
    table.row(
        "plugin load from plugins.json, installed and unchanged (mean of 50 installed plugins, in process)",
        format!("{:.3} ms", per.as_secs_f64() * 1000.0),
        "≤ 0.5 ms",
    );
    let (wall, _) = repeat(10, &hermes(dir, &home50, &["doctor", "--deep"]));
    table.row(
        "hermes doctor --deep (re-hash every library), 50 plugins (median of 10)",
        ms(wall),
        "",
    );

    let (wall, rss) = repeat(30, &hermes(dir, &home1, &["--version"]));
    table.row("hermes --version (median of 30)", ms(wall), "");
    table.row("hermes --version, peak RSS", mb(rss), "");
}

/// Fresh-token resolution in process, `hermes auth token` as a process, the refresh race,
/// and the chat client's overhead to the first request byte.
pub fn tokens(dir: &Path, table: &mut Table) {
    use crate::emulator::{Emulator, EmulatorConfig};
    use hermes::auth::{Store, TokenSource};
    use std::sync::Arc;

    let emu = Emulator::start(EmulatorConfig {
        auto_approve: true,
        interval_ms: 0,
        ..EmulatorConfig::default()
    });
    let (_t, home) = temp_home();
    let with_env = |mut c: Command| {
        c.env("MINIMAX_PORTAL_BASE_URL", emu.url())
            .env("MINIMAX_INFERENCE_BASE_URL", emu.inference_url());
        c
    };
    run_ok(with_env(hermes(
        dir,
        &home,
        &[
            "plugins",
            "install",
            &dir.join("libminimax_oauth.so").display().to_string(),
        ],
    )));
    run_ok(with_env(hermes(
        dir,
        &home,
        &["auth", "add", "minimax-oauth", "--no-browser"],
    )));

    let mut vars = std::collections::BTreeMap::new();
    vars.insert("HERMES_HOME".to_string(), home.display().to_string());
    vars.insert("MINIMAX_PORTAL_BASE_URL".to_string(), emu.url());
    vars.insert(
        "MINIMAX_INFERENCE_BASE_URL".to_string(),
        emu.inference_url(),
    );
    let env = hermes::config::Env::from_vars(vars).expect("env");
    let out = hermes::output::Output::plain(0);
    let provider = {
        use hermes::plugins::runtime::{PluginSet, Scope};
        let set = PluginSet::load(&env.paths(), Scope::Provider("minimax-oauth")).expect("plugins");
        let settings = hermes::config::Settings::load(&env.paths()).expect("settings");
        let entry = set.resolve("minimax-oauth").expect("provider");
        let time = env.time();
        set.open(entry, &env, &settings, &out, time)
            .expect("provider")
    };

    // Cold: a new token source reads the store and asks the plugin (no refresh needed).
    let n = 2_000;
    let start = Instant::now();
    for _ in 0..n {
        let s = TokenSource::new(
            Store::new(&env.paths()),
            Arc::clone(&provider),
            None,
            "",
            out.clone(),
        );
        std::hint::black_box(s.token().expect("token"));
    }
    let cold = start.elapsed() / n;
    // Warm: the per-request path of a running client.
    let source = TokenSource::new(
        Store::new(&env.paths()),
        Arc::clone(&provider),
        None,
        "",
        out.clone(),
    );
    source.token().expect("token");
    let n = 2_000_000u32;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(source.token().expect("token"));
    }
    let warm = start.elapsed() / n;
    table.row(
        "fresh token resolve in process (per request, from memory)",
        format!("{} ns", warm.as_nanos()),
        "≤ 1 µs",
    );
    table.row(
        "first token resolve in process (store read + plugin check)",
        format!("{:.1} µs", cold.as_secs_f64() * 1e6),
        "",
    );

    let (wall, rss) = repeat(
        30,
        &with_env(hermes(dir, &home, &["auth", "token", "minimax-oauth"])),
    );
    table.row(
        "hermes auth token, whole process (median of 30)",
        ms(wall),
        "",
    );
    table.row("hermes auth token, peak RSS", mb(rss), "");

    let (wall, _) = repeat(
        30,
        &with_env(hermes(dir, &home, &["auth", "token", "minimax-portal"])),
    );
    table.row(
        "hermes auth token <alias>, 1 plugin (median of 30)",
        ms(wall),
        "",
    );

    // A token that is always due: every run refreshes, through the refresh worker (one more
    // process start and plugin load than a fresh token).
    emu.set_config(|c| c.access_ttl_ms = 30_000);
    run_ok(with_env(hermes(
        dir,
        &home,
        &["auth", "add", "minimax-oauth", "--no-browser"],
    )));
    let before = emu.counters().refresh_success;
    let (wall, _) = repeat(
        30,
        &with_env(hermes(dir, &home, &["auth", "token", "minimax-oauth"])),
    );
    assert_eq!(
        emu.counters().refresh_success - before,
        30,
        "every run refreshed once"
    );
    table.row(
        "hermes auth token that refreshes (in its worker; median of 30)",
        ms(wall),
        "",
    );
    emu.set_config(|c| c.access_ttl_ms = 900_000);
    run_ok(with_env(hermes(
        dir,
        &home,
        &["auth", "add", "minimax-oauth", "--no-browser"],
    )));

    race(dir, &emu, &home, table);
    chat_overhead(dir, &emu, &home, table);

    // The same login beside 49 more plugins: names are resolved and plugins listed without
    // loading every plugin.
    let copies = bench_copies(dir, &home.with_file_name("copies"), 49);
    for p in &copies {
        run_ok(hermes(
            dir,
            &home,
            &["plugins", "install", &p.display().to_string()],
        ));
    }
    let (wall, _) = repeat(
        30,
        &with_env(hermes(dir, &home, &["auth", "token", "minimax-portal"])),
    );
    table.row(
        "hermes auth token <alias>, 50 plugins installed (median of 30)",
        ms(wall),
        "",
    );
    let (wall, _) = repeat(
        30,
        &with_env(hermes(dir, &home, &["auth", "token", "minimax-oauth"])),
    );
    table.row(
        "hermes auth token <canonical id>, 50 plugins installed (median of 30)",
        ms(wall),
        "",
    );
    let (wall, _) = repeat(20, &hermes(dir, &home, &["plugins", "list"]));
    table.row(
        "hermes plugins list, 50 plugins (median of 20)",
        ms(wall),
        "",
    );
}

/// 8 processes × 4 threads on one token 30 s from expiry, repeated.
fn race(dir: &Path, emu: &crate::emulator::Emulator, home: &Path, table: &mut Table) {
    let rounds = 10;
    let (mut refreshes, mut reused, mut lost, mut disagreements) = (0, 0, 0, 0);
    for _ in 0..rounds {
        emu.set_config(|c| c.access_ttl_ms = 30_000);
        let mut login = hermes(dir, home, &["auth", "add", "minimax-oauth", "--no-browser"]);
        login
            .env("MINIMAX_PORTAL_BASE_URL", emu.url())
            .env("MINIMAX_INFERENCE_BASE_URL", emu.inference_url());
        run_ok(login);
        emu.set_config(|c| c.access_ttl_ms = 900_000);
        let before = emu.counters();
        let start_at = (hermes::timefmt::now_ms() + 400).to_string();
        let children: Vec<_> = (0..8)
            .map(|_| {
                Command::new(dir.join("token-race"))
                    .arg("4")
                    .env("HERMES_HOME", home)
                    .env("MINIMAX_PORTAL_BASE_URL", emu.url())
                    .env("MINIMAX_INFERENCE_BASE_URL", emu.inference_url())
                    .env("RACE_START_AT_MS", &start_at)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn token-race")
            })
            .collect();
        let mut tokens = std::collections::BTreeSet::new();
        let mut failed = false;
        for c in children {
            let o = c.wait_with_output().expect("wait");
            failed |= !o.status.success();
            tokens.extend(String::from_utf8_lossy(&o.stdout).lines().map(String::from));
        }
        let after = emu.counters();
        refreshes += after.refresh_requests - before.refresh_requests;
        reused += after.refresh_reused - before.refresh_reused;
        lost += u64::from(failed);
        disagreements += u64::from(tokens.len() != 1);
    }
    table.row(
        &format!("refresh race, 8 processes × 4 threads, {rounds} rounds: refresh requests / reuse errors / lost logins / rounds with differing tokens"),
        format!("{refreshes} / {reused} / {lost} / {disagreements}"),
        &format!("{rounds} / 0 / 0 / 0"),
    );
}

/// From `hermes chat` starting to the first byte of its request reaching a loopback server
/// (the token is fresh; the server answers at once).
fn chat_overhead(dir: &Path, emu: &crate::emulator::Emulator, home: &Path, table: &mut Table) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut samples = Vec::new();
    for _ in 0..20 {
        let mut c = hermes(
            dir,
            home,
            &["chat", "-q", "hi", "--provider", "minimax-oauth", "--json"],
        );
        c.env("MINIMAX_PORTAL_BASE_URL", emu.url())
            .env(
                "MINIMAX_INFERENCE_BASE_URL",
                format!("http://{addr}/anthropic"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let started = Instant::now();
        let mut child = c.spawn().expect("spawn chat");
        let (mut s, _) = listener.accept().expect("accept");
        let mut first = [0u8; 1];
        s.read_exact(&mut first).expect("first byte");
        samples.push(started.elapsed());
        let mut rest = [0u8; 8192];
        let _ = s.read(&mut rest);
        let body = r#"{"id":"m","type":"message","role":"assistant","model":"MiniMax-M2.7","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}"#;
        let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        drop(s);
        let _ = child.wait();
    }
    samples.sort();
    table.row(
        "hermes chat: process start to first request byte (median of 20)",
        ms(samples[samples.len() / 2]),
        "",
    );
}
