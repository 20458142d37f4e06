//! `hermes serve` figures for `bench/run`: the latency the gateway adds to a non-streamed
//! request (the same client, keep-alive, gateway versus the emulator directly) and the gateway's
//! peak RSS while it relays 50 concurrent streams.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{hermes, mb, run_ok, temp_home, Table};
use crate::emulator::{Emulator, EmulatorConfig};

const BODY: &str =
    r#"{"model":"MiniMax-M2.7","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;

/// One keep-alive HTTP/1.1 connection that sends POSTs and reads `content-length` answers.
struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            reader: BufReader::new(s),
            host: addr.to_string(),
        }
    }

    /// POST `path` with `headers`; the status.
    fn post(&mut self, path: &str, headers: &str, body: &str) -> u16 {
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.reader
            .get_mut()
            .write_all(req.as_bytes())
            .expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body).expect("body");
        status
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn timed(n: usize, mut f: impl FnMut() -> u16) -> Vec<Duration> {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(f(), 200, "a benchmark request failed");
            t.elapsed()
        })
        .collect();
    v.sort();
    v
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Start `hermes serve --port 0` in `home`; the child and its address.
fn start_gateway(dir: &Path, home: &Path, emu: &Emulator) -> (std::process::Child, String) {
    let mut c = hermes(dir, home, &["serve", "--port", "0"]);
    c.env("MINIMAX_PORTAL_BASE_URL", emu.url())
        .env("MINIMAX_INFERENCE_BASE_URL", emu.inference_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("start hermes serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let addr = first.trim().trim_start_matches("http://").to_string();
    (child, addr)
}

/// Peak RSS of a live process, KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(-1)
}

/// The gateway rows.
pub fn gateway(dir: &Path, table: &mut Table) {
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
    let lib = dir.join("libminimax_oauth.so").display().to_string();
    run_ok(with_env(hermes(dir, &home, &["plugins", "install", &lib])));
    run_ok(with_env(hermes(
        dir,
        &home,
        &["auth", "add", "minimax-oauth", "--no-browser"],
    )));
    let token = run_ok(with_env(hermes(
        dir,
        &home,
        &["auth", "token", "minimax-oauth"],
    )));
    let (mut child, addr) = start_gateway(dir, &home, &emu);
    let key = std::fs::read_to_string(home.join("serve.key")).expect("serve.key");

    let n = 200;
    let emu_addr = emu.addr().to_string();
    let mut direct = Conn::open(&emu_addr);
    let direct_auth = format!(
        "authorization: Bearer {}\r\nanthropic-version: 2023-06-01\r\n",
        token.trim()
    );
    let mut via = Conn::open(&addr);
    let via_auth = format!("x-api-key: {}\r\n", key.trim());
    // Warm both paths (connections, the gateway's token cache and plugin).
    for _ in 0..20 {
        direct.post("/anthropic/v1/messages", &direct_auth, BODY);
        via.post("/v1/messages", &via_auth, BODY);
    }
    let d = timed(n, || {
        direct.post("/anthropic/v1/messages", &direct_auth, BODY)
    });
    let g = timed(n, || via.post("/v1/messages", &via_auth, BODY));
    let (dm, gm) = (percentile(&d, 0.5), percentile(&g, 0.5));
    let (d99, g99) = (percentile(&d, 0.99), percentile(&g, 0.99));
    table.row(
        "hermes serve: non-streamed request, direct / through the gateway (median of 200)",
        format!("{} / {}", us(dm), us(gm)),
        "",
    );
    table.row(
        "hermes serve: added latency, median / p99",
        format!(
            "{} / {}",
            us(gm.saturating_sub(dm)),
            us(g99.saturating_sub(d99))
        ),
        "median ≤ 1 ms",
    );

    // 50 streams at once, each event 20 ms apart, so all are open together.
    emu.set_config(|c| c.stream_event_delay_ms = 20);
    let body = BODY.replace("\"max_tokens\":64", "\"max_tokens\":64,\"stream\":true");
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (addr, auth, body) = (addr.clone(), via_auth.clone(), body.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).expect("connect");
                let req = format!(
                    "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(req.as_bytes()).expect("send");
                let mut all = String::new();
                let _ = s.read_to_string(&mut all);
                all.contains("message_stop")
            })
        })
        .collect();
    let complete = threads
        .into_iter()
        .map(|t| t.join().unwrap_or(false))
        .filter(|ok| *ok)
        .count();
    let rss = peak_rss_kib(child.id());
    table.row(
        &format!("hermes serve: peak RSS with 50 concurrent streams ({complete}/50 complete)"),
        mb(rss),
        "≤ 40 MiB",
    );
    let _ = child.kill();
    let _ = child.wait();
}
