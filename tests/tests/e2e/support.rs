//! Test support: a temporary `HERMES_HOME` per test, a command runner for the real binary,
//! and paths to the built plugin libraries.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Start `command`, whose program the test has just written (a copy of `hermes`). While
/// another test thread forks, its child holds this process's open files until it execs, the
/// copy's write descriptor among them, and an exec of the copy meanwhile fails with "Text file
/// busy". That passes within milliseconds: try again.
pub fn spawn_written_program(command: &mut Command) -> std::process::Child {
    let start = std::time::Instant::now();
    loop {
        match command.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && start.elapsed() < std::time::Duration::from_secs(10) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            started => {
                return started
                    .unwrap_or_else(|e| panic!("start {}: {e}", command.get_program().display()))
            }
        }
    }
}

/// The target directory the test binary was built in (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/e2e-<hash> → target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The `hermes` binary.
pub fn hermes_bin() -> PathBuf {
    let p = bin_dir().join("hermes");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// A plugin library built in the workspace, by crate name (`minimax_oauth`).
pub fn lib(crate_name: &str) -> PathBuf {
    let p = bin_dir().join(format!("lib{crate_name}.so"));
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The result of a finished process.
    pub fn from_output(o: Output) -> Run {
        Run::from(o)
    }
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Assert exit 0 and return self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    /// Assert this exit code and return self.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    /// stdout + stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A temporary `HERMES_HOME` and the environment commands run with.
pub struct Home {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = BTreeMap::new();
        env.insert(
            "HERMES_HOME".to_string(),
            dir.path().join("home").display().to_string(),
        );
        env.insert("NO_COLOR".to_string(), "1".to_string());
        Home { dir, env }
    }
    /// `HERMES_HOME`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    /// A scratch directory beside it.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
    /// Set an environment variable for every later command.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.insert(k.to_string(), v.to_string());
    }
    /// A `hermes` command with the environment set (and nothing inherited that could change
    /// behaviour, such as a user's own HERMES_* or MINIMAX_* variables).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(hermes_bin());
        c.args(args).env_clear();
        for k in ["PATH", "HOME", "LANG", "TMPDIR"] {
            if let Ok(v) = std::env::var(k) {
                c.env(k, v);
            }
        }
        c.envs(&self.env).stdin(Stdio::null());
        c
    }
    /// Run `hermes args…`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run hermes"))
    }
    /// Run with stdin.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn hermes");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait"))
    }
    /// Install the MiniMax plugin by name, as a user would.
    pub fn install_minimax(&self) {
        self.run(&["plugins", "install", "minimax-oauth"]).ok();
    }
    /// Read a file under `HERMES_HOME`.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
    /// `auth.json` parsed.
    pub fn auth_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.read("auth.json")).expect("auth.json is JSON")
    }
    /// Record a library in plugins.json without going through install (to test what the
    /// host does with a plugin that became bad after installation).
    pub fn force_record(&self, id: &str, lib_path: &Path) {
        let rel = format!("plugins/{id}/0.1.0/lib{}.so", id.replace('-', "_"));
        let dst = self.path().join(&rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        // As install makes them: hermes refuses folders others may write (whatever the umask).
        use std::os::unix::fs::PermissionsExt;
        for d in [
            dst.parent().unwrap(),
            dst.parent().unwrap().parent().unwrap(),
        ] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        std::fs::copy(lib_path, &dst).unwrap();
        let manifest_path = self.path().join("plugins.json");
        let mut m: serde_json::Value = std::fs::read_to_string(&manifest_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({"version": 1, "plugins": []}));
        let sha = sha256_hex(&std::fs::read(&dst).unwrap());
        m["plugins"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "id": id, "version": "0.1.0", "api_version": "1.0.0", "path": rel,
                "sha256": sha, "enabled": true, "providers": [id],
            }));
        std::fs::write(manifest_path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    }
}

/// SHA-256, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub use hermes_tests::emulator::{Canned, Emulator, EmulatorConfig, ExpiryEncoding, Fault};

/// An emulator and a home whose MiniMax URLs point at it, with the plugin installed.
pub fn minimax(config: EmulatorConfig) -> (Emulator, Home) {
    minimax_in(Home::new(), config)
}

pub use hermes::timefmt::TestClock;

/// [`minimax`] on one test clock shared by hermes (`HERMES_TEST_CLOCK`), the emulator and the
/// test: hermes's waits between polls move it instead of taking real time, and the test ages
/// tokens and codes with [`TestClock::advance`] instead of sleeping.
pub fn minimax_on_test_clock(config: EmulatorConfig) -> (Emulator, Home, TestClock) {
    let mut home = Home::new();
    let clock = TestClock::new(home.scratch().join("clock"));
    home.set_env("HERMES_TEST_CLOCK", &clock.path().display().to_string());
    let (emu, home) = minimax_in(
        home,
        EmulatorConfig {
            clock_file: Some(clock.path().to_path_buf()),
            ..config
        },
    );
    (emu, home, clock)
}

fn minimax_in(mut home: Home, config: EmulatorConfig) -> (Emulator, Home) {
    let emu = Emulator::start(EmulatorConfig {
        log_requests: false,
        ..config
    });
    home.set_env("MINIMAX_PORTAL_BASE_URL", &emu.url());
    home.set_env("MINIMAX_INFERENCE_BASE_URL", &emu.inference_url());
    home.install_minimax();
    (emu, home)
}

/// An emulator that approves every login at once.
pub fn approving() -> EmulatorConfig {
    EmulatorConfig {
        auto_approve: true,
        interval_ms: 0,
        ..EmulatorConfig::default()
    }
}

/// Sign in through the real flow (the emulator approves).
pub fn login(home: &Home) -> Run {
    home.run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .ok()
}

/// `providers.minimax-oauth` of auth.json.
pub fn stored(home: &Home) -> serde_json::Value {
    home.auth_json()["providers"]["minimax-oauth"].clone()
}

/// The current unix time in ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A form POST over a plain TCP connection (for acting as "another client" of the emulator).
pub fn post_form(url: &str, fields: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let body: String = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut s = std::net::TcpStream::connect(authority).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Assert no secret in `secrets` appears in `text`.
#[track_caller]
pub fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !text.contains(s.as_str()),
            "a secret leaked into the output:\n{text}"
        );
    }
}

impl Home {
    /// Another binary from the target directory, with this home's environment.
    pub fn command_of(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = self.command(args);
        let mut other = Command::new(bin_dir().join(bin));
        other.args(c.get_args()).env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                other.env(k, v);
            }
        }
        other.stdin(Stdio::null());
        let _ = &mut c;
        other
    }
}

/// Replace the stored refresh token of the main login with one the emulator never issued, so
/// the next refresh is answered `invalid_grant` (a dead login).
pub fn revoke_refresh_token(home: &Home) {
    let path = home.path().join("auth.json");
    let rt = stored(home)["refresh_token"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&rt, "mm-rt-revoked-0000000000000000000000");
    std::fs::write(&path, text).unwrap();
}

/// The refresh worker a `hermes` process started, once it exists (`None` if the process
/// ended first).
pub fn worker_of(pid: u32) -> Option<u32> {
    // `/proc/<pid>/task/<tid>/children` where the kernel has it; otherwise every process's
    // parent, from its `stat`.
    let children_files = std::path::Path::new(&format!("/proc/{pid}/task/{pid}/children")).exists();
    loop {
        if children_files {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
            for task in tasks.flatten() {
                let children =
                    std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                if let Some(child) = children.split_whitespace().next() {
                    return child.parse().ok();
                }
            }
        } else {
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                let Some(child) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                // `pid (comm) state ppid ...`: the fields after the last ')'.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(pid) {
                    return Some(child);
                }
            }
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        if status.contains(") Z ") {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}
