//! What a person sees in a terminal: colour decided per stream, `NO_COLOR` as no-color.org
//! defines it, and a waiting line when there is no terminal to animate. Terminal cases run
//! hermes on a real pseudo-terminal through `script` (util-linux).

use std::process::{Command, Stdio};

use crate::support::*;

/// Run `shell` (a command line that may redirect) on a pseudo-terminal with `home`'s
/// environment changed by `env` (`None` removes a variable); what the terminal showed.
fn on_a_terminal(home: &Home, shell: &str, env: &[(&str, Option<&str>)]) -> String {
    let mut c = Command::new("script");
    c.args(["-qefc", shell, "/dev/null"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in home.command(&[]).get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c
        .output()
        .expect("script (util-linux) runs hermes on a pseudo-terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const GREEN_TICK: &str = "\x1b[32m✓";

#[test]
fn colour_is_decided_per_stream_and_only_a_non_empty_no_color_removes_it() {
    let home = Home::new();
    home.install_minimax();
    let hermes = hermes_bin().display().to_string();
    // At a terminal, with NO_COLOR unset and with NO_COLOR empty (which does not count).
    for env in [[("NO_COLOR", None)], [("NO_COLOR", Some(""))]] {
        let shown = on_a_terminal(&home, &format!("{hermes} doctor"), &env);
        assert!(shown.contains(GREEN_TICK), "{env:?}: {shown:?}");
    }
    let shown = on_a_terminal(
        &home,
        &format!("{hermes} doctor"),
        &[("NO_COLOR", Some("1"))],
    );
    assert!(shown.contains('✓') && !shown.contains('\x1b'), "{shown:?}");
    // stdout redirected to a file while stderr is still the terminal: no codes in the file.
    let file = home.scratch().join("doctor.txt");
    on_a_terminal(
        &home,
        &format!("{hermes} doctor > {}", file.display()),
        &[("NO_COLOR", None)],
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains('✓'), "{written:?}");
    assert!(
        !written.contains('\x1b'),
        "escape codes in a redirected stdout: {written:?}"
    );
}

#[test]
fn without_a_terminal_sign_in_says_once_what_it_waits_for() {
    let (_emu, home) = minimax(approving());
    let r = login(&home);
    assert_eq!(
        r.stderr
            .matches("waiting for approval; the code expires in")
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Ctrl-C to cancel"), "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
}

#[test]
fn opening_the_browser_is_announced() {
    use std::os::unix::fs::PermissionsExt;
    let (_emu, mut home) = minimax(approving());
    // A stand-in browser that records the URL it was given.
    let opened = home.scratch().join("opened");
    let opener = home.scratch().join("opener.sh");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    home.set_env("HERMES_BROWSER", opener.to_str().unwrap());
    let r = home.run(&["auth", "add", "minimax-oauth"]).ok();
    assert!(
        r.stderr.contains("Opening the link in your browser…"),
        "{}",
        r.stderr
    );
    // With --no-browser nothing is opened and nothing is said about it.
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .ok();
    assert!(!r.stderr.contains("Opening the link"), "{}", r.stderr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !opened.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = std::fs::read_to_string(&opened).unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
}

#[test]
fn a_sign_in_whose_polls_all_fail_says_the_server_failed_not_just_timed_out() {
    // 20 s of polls every 2 s, on the test clock.
    let (emu, home, _clock) = minimax_on_test_clock(approving());
    emu.inject("/oauth2/token", Fault::Status500, 1000);
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
    assert!(
        r.stderr.contains("gave up waiting for approval"),
        "{}",
        r.stderr
    );
    // Every poll failed, and each was counted.
    let counted: Vec<u32> = r
        .stderr
        .rsplit("the server failed ")
        .next()
        .filter(|_| r.stderr.contains("the server failed "))
        .unwrap_or_else(|| panic!("{}", r.stderr))
        .split_whitespace()
        .take(3)
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        counted.len() == 2 && counted[0] == counted[1] && counted[0] >= 8,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("500"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was saved"), "{}", r.stderr);
    // Said while waiting, not only at the end: status and how often.
    let warned = r
        .stderr
        .find("warning: the server failed 1 of 1 poll (last: MiniMax OAuth error (HTTP 500): internal server error); still waiting for approval")
        .unwrap_or_else(|| panic!("no warning while waiting:\n{}", r.stderr));
    assert!(warned < r.stderr.find("gave up").unwrap(), "{}", r.stderr);
}

#[test]
fn a_failing_code_request_says_the_status_and_the_servers_words_not_its_json() {
    let (emu, home) = minimax(approving());
    emu.inject("/oauth/code", Fault::Status500, 1);
    let r = home
        .run(&["auth", "add", "minimax-oauth", "--no-browser"])
        .code(1);
    assert!(
        r.stderr
            .contains("MiniMax OAuth authorization failed (HTTP 500): internal server error"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains('{') && !r.stderr.contains("base_resp"),
        "{}",
        r.stderr
    );
}

/// What a terminal `cols` wide shows after `bytes`: its rows, trailing blanks trimmed. Enough
/// of a VT100 for hermes's output: text with auto-wrap (the cursor waits at the last column
/// until the next character comes), CR, LF, backspace, erase in line (`ESC[K`, `ESC[2K`),
/// cursor up and down; other sequences are ignored.
fn screen(bytes: &str, cols: usize) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col, mut wrap_pending) = (0usize, 0usize, false);
    let mut chars = bytes.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                col = 0;
                wrap_pending = false;
            }
            '\n' => {
                row += 1;
                wrap_pending = false;
            }
            '\x08' => col = col.saturating_sub(1),
            '\x1b' => {
                if chars.peek() != Some(&'[') {
                    chars.next();
                    continue;
                }
                chars.next();
                let mut params = String::new();
                let mut last = ' ';
                for p in chars.by_ref() {
                    if p.is_ascii_alphabetic() || p == '~' {
                        last = p;
                        break;
                    }
                    params.push(p);
                }
                let n: usize = params.trim_start_matches('?').parse().unwrap_or(0);
                while rows.len() <= row {
                    rows.push(Vec::new());
                }
                match last {
                    'K' if n == 2 => rows[row].clear(),
                    'K' if n == 0 => rows[row].truncate(col),
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => row += n.max(1),
                    'G' => col = n.max(1) - 1,
                    _ => {}
                }
                wrap_pending = false;
            }
            c if c.is_control() => {}
            c => {
                if wrap_pending {
                    row += 1;
                    col = 0;
                    wrap_pending = false;
                }
                while rows.len() <= row {
                    rows.push(Vec::new());
                }
                let line = &mut rows[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                if col + 1 == cols {
                    wrap_pending = true;
                } else {
                    col += 1;
                }
            }
        }
    }
    rows.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_string())
        .collect()
}

#[test]
fn the_screen_model_wraps_like_a_terminal() {
    // The failure it stands for: a spinner padded to the full width, then `^C` echoed.
    let rows = screen("\r\x1b[2K⠋ wait    \x5eC\r\x1b[2Kerror\r\n", 10);
    assert_eq!(rows, ["⠋ wait", "error"]);
    // A line that leaves room: the echo lands on it and goes with it.
    let rows = screen("\r\x1b[2K⠋ wait^C\r\x1b[2Kerror\r\n", 10);
    assert_eq!(rows, ["error"]);
}

#[test]
fn ctrl_c_during_sign_in_leaves_no_spinner_line_behind() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    const COLS: usize = 60;
    // A code with 90 s to live, never approved, and a server failing every poll: the waiting
    // line is long (it must be cut to fit) and counts down in m:ss.
    let (emu, home) = minimax(EmulatorConfig {
        auto_approve: false,
        interval_ms: 100,
        code_ttl_ms: 90_000,
        ..EmulatorConfig::default()
    });
    emu.inject("/oauth2/token", Fault::Status500, 10_000);
    let shell = format!(
        "stty cols {COLS} rows 30; exec {} auth add minimax-oauth --no-browser",
        hermes_bin().display()
    );
    let mut c = Command::new("script");
    c.args(["-qefc", &shell, "/dev/null"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in home.command(&[]).get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let mut child = c
        .spawn()
        .expect("script (util-linux) runs hermes on a pseudo-terminal");
    let shown = Arc::new(Mutex::new(Vec::<u8>::new()));
    let reader = {
        let shown = Arc::clone(&shown);
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    // Wait until the waiting line says the server is failing, then press Ctrl-C (the byte the
    // terminal turns into SIGINT, and echoes as `^C`).
    // (After the warning, once the spinner has been drawn again below it.)
    let redrawn = || {
        let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
        text.split_once("still waiting for approval")
            .is_some_and(|(_, after)| after.contains("(Ctrl-C to cancel)"))
    };
    let start = std::time::Instant::now();
    while !redrawn() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no failing-server notice: {:?}",
            String::from_utf8_lossy(&shown.lock().unwrap())
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let bytes = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert_eq!(status.code(), Some(130), "{bytes:?}");
    // The countdown is m:ss under ten minutes.
    assert!(
        ["1:30 left", "1:29 left", "1:28 left", "1:27 left"]
            .iter()
            .any(|t| bytes.contains(t)),
        "{bytes:?}"
    );
    let rows = screen(&bytes, COLS);
    let text = rows.join("\n");
    assert!(
        rows.iter()
            .any(|r| r == "error: sign-in cancelled; nothing was saved"),
        "{text}"
    );
    assert!(
        !rows.iter().any(|r| r.contains("waiting for approval…")
            || r.contains("Ctrl-C to cancel")
            || r.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))),
        "a spinner line was left on the screen:\n{text}"
    );
    // The server's failure was said in full on its own line (status and its words), with
    // the spinner going on below it.
    // (Compared without spaces: the rows are trimmed where the terminal wrapped the line.)
    let said = "warning: the server failed 1 of 1 poll (last: MiniMax OAuth error (HTTP 500): internal server error); still waiting for approval";
    assert!(
        rows.concat()
            .replace(' ', "")
            .contains(&said.replace(' ', "")),
        "{text}"
    );
}
