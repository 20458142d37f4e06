//! The host's protections, each with a test that fails if the protection is removed, and
//! fault tests: a full disk, a stuck lock, and a flaky server.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::support::*;

/// A server that answers every request with a redirect to `location`.
fn redirecting_server(location: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_redirect_outside_the_allow_list_is_refused() {
    let mut home = Home::new();
    home.set_env(
        "MINIMAX_PORTAL_BASE_URL",
        &redirecting_server("https://evil.example.net/oauth2/device/code"),
    );
    home.install_minimax();
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(
        r.stderr.contains("refused a request to evil.example.net"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("may only reach api.minimax.io"),
        "{}",
        r.stderr
    );
}

/// An HTTP proxy on loopback that answers `CONNECT api.minimax.io:443`, speaks TLS as
/// api.minimax.io (a certificate from `fixtures/tls`, trusted through `SSL_CERT_FILE`), and
/// redirects every request to `location`: a remote host as hermes sees it.
fn remote_host_behind_a_proxy(location: String) -> String {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(include_bytes!("fixtures/tls/leaf.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("fixtures/tls/leaf-key.der").to_vec(),
    ));
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("the test certificate"),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let config = std::sync::Arc::clone(&config);
            let location = location.clone();
            std::thread::spawn(move || {
                let connect = read_head(&mut s);
                if !connect.starts_with("CONNECT api.minimax.io:443 ") {
                    let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                let _ = s.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n");
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                let _ = read_head(&mut tls);
                let _ = write!(
                    tls,
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    format!("http://{addr}")
}

/// Bytes up to the end of an HTTP head.
fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn regress_remote_redirect_to_loopback() {
    // A local service that must never hear from hermes on a remote server's say-so.
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    local.set_nonblocking(true).unwrap();
    let target = format!(
        "http://127.0.0.1:{}/oauth2/device/code",
        local.local_addr().unwrap().port()
    );
    let mut home = Home::new();
    let ca = home.scratch().join("ca.pem");
    std::fs::write(&ca, include_str!("fixtures/tls/ca.pem")).unwrap();
    home.set_env("SSL_CERT_FILE", ca.to_str().unwrap());
    home.set_env("HTTPS_PROXY", &remote_host_behind_a_proxy(target));
    home.set_env("MINIMAX_PORTAL_BASE_URL", "https://api.minimax.io");
    home.install_minimax();
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(
        r.stderr
            .contains("refused a redirect from api.minimax.io to 127.0.0.1"),
        "{}",
        r.stderr
    );
    assert!(
        local.accept().is_err(),
        "hermes followed a remote redirect to a local service"
    );
}

#[test]
fn a_redirect_to_plain_http_on_an_allowed_host_is_refused() {
    let mut home = Home::new();
    home.set_env(
        "MINIMAX_PORTAL_BASE_URL",
        &redirecting_server("http://api.minimax.io/oauth2/device/code"),
    );
    home.install_minimax();
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(
        r.stderr.contains("refused plain http to api.minimax.io"),
        "{}",
        r.stderr
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let mut home = Home::new();
    home.set_env("MINIMAX_PORTAL_BASE_URL", "http://api.minimax.io");
    home.install_minimax();
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(
        r.stderr.contains("refused plain http to api.minimax.io"),
        "{}",
        r.stderr
    );
}

#[test]
fn chat_never_sends_a_token_outside_the_allow_list() {
    let (emu, mut home) = minimax(approving());
    login(&home);
    home.set_env(
        "MINIMAX_INFERENCE_BASE_URL",
        "https://evil.example.net/anthropic",
    );
    let r = home
        .run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
        .code(1);
    assert!(
        r.stderr.contains("refused a request to evil.example.net"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.counters().messages_requests, 0);
}

#[test]
fn loose_permissions_are_reported_by_doctor() {
    let (_emu, home) = minimax(approving());
    login(&home);
    home.run(&["doctor"]).ok();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        home.path().join("auth.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let lib = home
        .path()
        .join("plugins/minimax-oauth/0.1.0/libminimax_oauth.so");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o777)).unwrap();
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout
            .contains(&format!("(fix: chmod 700 {})", home.path().display())),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains(&format!(
            "(fix: chmod 600 {})",
            home.path().join("auth.json").display()
        )),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("is writable by other users"),
        "{}",
        d.stdout
    );
}

#[test]
fn secret_files_are_written_0600() {
    let (_emu, home) = minimax(approving());
    login(&home);
    home.run(&["config", "set", "model.default", "MiniMax-M2.7"])
        .ok();
    for f in ["auth.json", "plugins.json", "config.yaml", "auth.lock"] {
        let mode = std::fs::metadata(home.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

#[test]
fn a_library_path_outside_hermes_home_is_not_loaded() {
    let home = Home::new();
    home.install_minimax();
    let outside = home.scratch().join("libelsewhere.so");
    std::fs::copy(lib("fixture_test_provider"), &outside).unwrap();
    let path = home.path().join("plugins.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut rec = m["plugins"][0].clone();
    rec["id"] = "elsewhere".into();
    rec["path"] = format!(
        "plugins/../../{}",
        outside.file_name().unwrap().to_str().unwrap()
    )
    .into();
    m["plugins"].as_array_mut().unwrap().push(rec);
    std::fs::write(&path, m.to_string()).unwrap();
    let list = home.run(&["plugins", "list"]).ok();
    assert!(
        list.stdout
            .contains("is not a plain path inside the plugins folder"),
        "{}",
        list.stdout
    );
    let d = home.run(&["doctor"]).code(1);
    assert!(d.stdout.contains("✓ plugin minimax-oauth"), "{}", d.stdout);
}

/// Run `hermes` with a file-size limit, so that writing a file fails as on a full disk.
fn run_with_full_disk(home: &Home, args: &[&str]) -> Run {
    let mut c = home.command(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

#[test]
fn a_full_disk_during_a_write_leaves_the_old_files() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    let before = home.read("auth.json");
    let r = run_with_full_disk(&home, &["auth", "token", "minimax-oauth"]).code(1);
    assert!(r.stderr.contains("cannot write"), "{}", r.stderr);
    assert!(
        r.stderr.contains("the previous auth.json is unchanged"),
        "{}",
        r.stderr
    );
    assert_eq!(home.read("auth.json"), before);
    assert_eq!(
        emu.counters().refresh_success,
        1,
        "the refresh itself happened"
    );
    let leftovers: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");

    std::fs::write(
        home.path().join("config.yaml"),
        "model:\n  default: MiniMax-M2.7\n",
    )
    .unwrap();
    let r = run_with_full_disk(
        &home,
        &["config", "set", "model.provider", &"x".repeat(200)],
    )
    .code(1);
    assert!(r.stderr.contains("cannot write"), "{}", r.stderr);
    assert_eq!(
        home.read("config.yaml"),
        "model:\n  default: MiniMax-M2.7\n"
    );
}

#[test]
fn a_lock_held_by_a_stuck_process_times_out_clearly() {
    let (_emu, mut home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    let before = home.read("auth.json");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(home.path().join("auth.lock"))
        .unwrap();
    lock.lock().unwrap();
    home.set_env("HERMES_LOCK_TIMEOUT_MS", "500");
    let r = home.run(&["auth", "token", "minimax-oauth"]).code(1);
    assert!(
        r.stderr.contains("cannot lock the credential store"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("held by another process (waited 0.5 s)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("help: if no other hermes is running"),
        "{}",
        r.stderr
    );
    assert_eq!(home.read("auth.json"), before);
    lock.unlock().unwrap();
    home.run(&["auth", "token", "minimax-oauth"]).ok();
}

#[test]
fn login_rides_out_bursts_of_429_500_and_dropped_connections() {
    // Each failed poll costs one 2 s interval: on the test clock, not in real time.
    let (emu, home, clock) = minimax_on_test_clock(EmulatorConfig {
        auto_approve: true,
        approve_after_polls: 1,
        ..EmulatorConfig::default()
    });
    let real = std::time::Instant::now();
    emu.inject("/oauth2/token", Fault::Status429, 2);
    emu.inject("/oauth2/token", Fault::DropConnection, 1);
    emu.inject("/oauth2/token", Fault::Slow(Duration::from_millis(300)), 1);
    // Transient failures while polling never end a sign-in: polling goes on to approval.
    login(&home);
    let c = emu.counters();
    assert_eq!(c.faults_injected, 4, "{c:?}");
    assert_eq!(c.logins_completed, 1);
    // Three failed polls and one pending answer, each followed by the 2 s interval (on the
    // clock, or in real time while polling).
    let passed = clock.offset_ms() + real.elapsed().as_millis() as i64;
    assert!(passed >= 8_000, "{passed}");
    home.run(&["auth", "status", "minimax-oauth"]).ok();
}

#[test]
fn refresh_and_chat_ride_out_server_bursts_without_quarantine() {
    let (emu, home) = minimax(EmulatorConfig {
        access_ttl_ms: 30_000,
        ..approving()
    });
    login(&home);
    for fault in [
        Fault::Status429,
        Fault::Status500,
        Fault::DropConnection,
        Fault::TruncatedBody,
        Fault::MalformedJson,
    ] {
        emu.inject("/oauth2/token", fault, 1);
        let r = home.run(&["auth", "token", "minimax-oauth"]).ok();
        assert!(
            r.stderr.contains("using the current one while it lasts"),
            "{}",
            r.stderr
        );
        assert!(stored(&home).get("last_auth_error").is_none());
    }
    emu.set_config(|c| c.access_ttl_ms = 900_000);
    home.run(&["auth", "token", "minimax-oauth"]).ok();
    for fault in [Fault::Status429, Fault::Status500, Fault::DropConnection] {
        emu.inject("/v1/messages", fault, 1);
        let r = home
            .run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
            .code(1);
        assert_eq!(
            r.stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{}",
            r.stderr
        );
        home.run(&["chat", "-q", "hi", "--provider", "minimax-oauth"])
            .ok();
    }
    assert!(stored(&home).get("last_auth_error").is_none());
}
