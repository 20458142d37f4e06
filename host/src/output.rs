//! The only module that prints. Results go to stdout (text or `--json`); progress, prose,
//! warnings and logs go to stderr.
//!
//! stdout and stderr belong to hermes, not to the plugins running in its process: at start,
//! [`protect_stdio`] keeps private duplicates of fds 1 and 2 for this module and points fd 1 at
//! `/dev/null`, so a plugin's `println!` cannot corrupt `--json` or the token `auth token`
//! prints, and a plugin that closes fd 1 or 2 cannot silence hermes. [`restore_stdio`] reopens
//! any of fds 0–2 a plugin closed, so that no file or socket hermes opens later takes their
//! number (where a plugin's later writes to "stdout" would land in it).

use std::io::IsTerminal;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// hermes's own stdout and stderr, duplicated at start.
struct Saved {
    out: RawFd,
    err: RawFd,
}

static SAVED: OnceLock<Saved> = OnceLock::new();
/// One writer at a time, so that lines from threads do not interleave.
static WRITE: Mutex<()> = Mutex::new(());

fn fd_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

fn open_dev_null_at(fd: RawFd) {
    // SAFETY: plain descriptor calls on a path literal; failures are left as they are.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 {
            return;
        }
        if null != fd {
            libc::dup2(null, fd);
            libc::close(null);
        } else {
            // It landed on the closed slot itself: keep it, without close-on-exec.
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
    }
}

/// Reopen fds 0–2 on `/dev/null` where a plugin (or whoever started hermes) closed them.
/// Cheap (three `fcntl`s): called after plugin code ran and before hermes opens a file.
pub fn restore_stdio() {
    for fd in 0..=2 {
        if !fd_open(fd) {
            open_dev_null_at(fd);
        }
    }
}

/// Keep private duplicates of stdout and stderr for hermes's own output, and point fd 1 at
/// `/dev/null` for the rest of the process (hermes itself never writes to fd 1). Call once,
/// first thing.
pub fn protect_stdio() {
    restore_stdio();
    // SAFETY: duplicating open descriptors; the copies are close-on-exec and never closed.
    let dup = |fd: RawFd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    let (out, err) = (dup(1), dup(2));
    if out < 0 || err < 0 {
        return;
    }
    if SAVED.set(Saved { out, err }).is_ok() {
        // SAFETY: replaces fd 1 with /dev/null; hermes's output goes to the duplicate.
        unsafe { libc::close(1) };
        open_dev_null_at(1);
    }
}

fn out_fd() -> RawFd {
    SAVED.get().map_or(1, |s| s.out)
}
fn err_fd() -> RawFd {
    SAVED.get().map_or(2, |s| s.err)
}

/// Write all of `bytes` to `fd`, ignoring errors (a closed pipe is not hermes's problem to
/// report on the pipe itself).
fn write_fd(fd: RawFd, bytes: &[u8]) {
    let _ = try_write_fd(fd, bytes);
}

/// Write all of `bytes` to `fd`; the first failure is the error (a full disk, a closed pipe).
fn try_write_fd(fd: RawFd, bytes: &[u8]) -> std::io::Result<()> {
    let _g = WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writes from a valid slice to a descriptor this module owns.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        rest = &rest[n as usize..];
    }
    Ok(())
}

fn is_tty(fd: RawFd) -> bool {
    // SAFETY: the descriptor stays open for the whole process (a duplicate or 0–2).
    unsafe { BorrowedFd::borrow_raw(fd) }.is_terminal()
}

/// stdout (hermes's own) is a terminal.
pub fn stdout_is_terminal() -> bool {
    is_tty(out_fd())
}
/// stderr (hermes's own) is a terminal.
pub fn stderr_is_terminal() -> bool {
    is_tty(err_fd())
}

use crate::config::Env;

/// Longest error or warning line printed. Not a limit in practice (plugins and the host cap
/// what they quote, and say so); it only bounds a runaway message.
const MAX_MESSAGE_CHARS: usize = 1 << 20;

/// Where and how to print.
#[derive(Clone, Debug)]
pub struct Output {
    verbose: u8,
    quiet: bool,
    /// Colour on stdout (results, the ✓/✗ marks) and on stderr (labels), each decided by its
    /// own stream: `hermes doctor > file` at a terminal writes no escape codes into the file.
    color_out: bool,
    color_err: bool,
    stdout_tty: bool,
    stderr_tty: bool,
}

impl Output {
    /// An output for this environment and these flags.
    pub fn new(env: &Env, verbose: u8, quiet: bool) -> Output {
        let stdout_tty = stdout_is_terminal();
        let stderr_tty = stderr_is_terminal();
        Output {
            verbose,
            quiet,
            color_out: !env.no_color && stdout_tty,
            color_err: !env.no_color && stderr_tty,
            stdout_tty,
            stderr_tty,
        }
    }

    /// An output that prints nothing to terminals (tests and child processes).
    pub fn plain(verbose: u8) -> Output {
        Output {
            verbose,
            quiet: false,
            color_out: false,
            color_err: false,
            stdout_tty: false,
            stderr_tty: false,
        }
    }

    /// `-v` count.
    pub fn verbose(&self) -> u8 {
        self.verbose
    }
    /// Whether `--quiet` was given.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
    /// Whether progress may be animated (stderr is a terminal, no `--quiet`). `NO_COLOR` takes
    /// the colour away, not the progress.
    pub fn animated(&self) -> bool {
        self.stderr_tty && !self.quiet
    }
    /// Whether stdout is a terminal.
    pub fn stdout_is_tty(&self) -> bool {
        self.stdout_tty
    }
    /// Whether stderr is a terminal.
    pub fn stderr_is_tty(&self) -> bool {
        self.stderr_tty
    }

    /// A result line on stdout.
    pub fn result(&self, line: &str) {
        write_fd(out_fd(), format!("{line}\n").as_bytes());
    }
    /// A result line on stdout that must arrive: a failed write or flush (a full disk, a
    /// closed pipe) is an error, so a script never takes a missing token for success.
    pub fn result_checked(&self, line: &str) -> crate::Result<()> {
        try_write_fd(out_fd(), format!("{line}\n").as_bytes())
            .map_err(|e| crate::Error::io("cannot write to stdout", e))
    }
    /// Raw text on stdout, flushed (streamed output).
    pub fn result_raw(&self, text: &str) {
        write_fd(out_fd(), text.as_bytes());
    }
    /// A JSON document on stdout.
    pub fn json(&self, value: &serde_json::Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        self.result(&text);
    }
    /// Prose on stderr (suppressed by `--quiet`).
    pub fn info(&self, line: &str) {
        if !self.quiet {
            self.stderr(line);
        }
    }
    /// Prose on stderr that `--quiet` does not hide (sign-in codes and URLs).
    pub fn notice(&self, line: &str) {
        self.stderr(line);
    }
    /// A warning on stderr. Warnings quote servers and plugins, so the text is made
    /// terminal-safe here.
    pub fn warn(&self, line: &str) {
        self.stderr(&format!(
            "{} {}",
            self.paint("warning:", "33"),
            crate::text::line(line, MAX_MESSAGE_CHARS)
        ));
    }
    /// A log line, shown when `-v` was given `level` times or more.
    pub fn log(&self, level: u8, line: &str) {
        if self.verbose >= level {
            self.stderr(&format!("{} {line}", self.paint("debug:", "2")));
        }
    }
    /// An error with its `help:` line and, at `-v`, its detail.
    /// Errors quote servers and plugins, so their text is made terminal-safe here.
    pub fn error(&self, err: &crate::Error) {
        self.stderr(&format!(
            "{} {}",
            self.paint("error:", "31"),
            crate::text::line(&err.message(), MAX_MESSAGE_CHARS)
        ));
        if let Some(h) = err.help() {
            self.stderr(&format!(
                "{} {}",
                self.paint("help:", "36"),
                crate::text::line(&h, MAX_MESSAGE_CHARS)
            ));
        }
        if let Some(d) = err.detail() {
            if self.verbose > 0 {
                self.stderr(&crate::text::text(d));
            } else {
                self.stderr("(run with -v for details)");
            }
        }
    }

    /// A line on hermes's stderr. While a spinner runs, its line is cleared first so that the
    /// text does not land behind it (the spinner redraws below on its next frame).
    fn stderr(&self, line: &str) {
        let clear = if SPINNING.load(Ordering::SeqCst) {
            CLEAR_LINE
        } else {
            ""
        };
        write_fd(err_fd(), format!("{clear}{line}\n").as_bytes());
    }

    /// A spinner on stderr showing `message`, when progress may be animated ([`Self::animated`]).
    pub fn spinner(&self, message: &str) -> Option<Spinner> {
        self.animated().then(|| Spinner::start(message))
    }

    /// `✓` in green.
    pub fn ok_mark(&self) -> String {
        paint(self.color_out, "✓", "32")
    }
    /// `✗` in red.
    pub fn bad_mark(&self) -> String {
        paint(self.color_out, "✗", "31")
    }
    /// `!` in yellow.
    pub fn warn_mark(&self) -> String {
        paint(self.color_out, "!", "33")
    }

    /// `text` in colour `code` for stderr.
    fn paint(&self, text: &str, code: &str) -> String {
        paint(self.color_err, text, code)
    }
}

/// Back to the start of the line and clear it.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Whether a [`Spinner`] is drawing on stderr.
static SPINNING: AtomicBool = AtomicBool::new(false);

/// Columns of the terminal on stderr (80 when it does not say).
fn terminal_columns() -> usize {
    // SAFETY: TIOCGWINSZ fills a plain struct; the descriptor stays open for the process.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(err_fd(), libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// One frame of a spinner: `glyph message`, cut to fit in `columns` with room to spare.
///
/// The line never reaches the last columns: the terminal echoes `^C` where the cursor is, and
/// on a full line that echo wraps onto a new line, leaving the spinner frozen above it (the
/// clean-up clears only the line the cursor is on).
fn spinner_frame(glyph: char, message: &str, columns: usize) -> String {
    let room = columns.saturating_sub(4).max(1);
    let mut line: String = std::iter::once(glyph)
        .chain(std::iter::once(' '))
        .chain(message.chars())
        .collect();
    if line.chars().count() > room {
        line = line.chars().take(room.saturating_sub(1)).collect();
        line.push('…');
    }
    format!("{CLEAR_LINE}{line}")
}

/// A one-line spinner on stderr, redrawn from its own thread; its line is cleared when it is
/// dropped. At most one runs at a time.
pub struct Spinner {
    shared: Arc<(Mutex<(String, bool)>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    const GLYPHS: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    const FRAME: Duration = Duration::from_millis(120);

    fn start(message: &str) -> Spinner {
        let shared = Arc::new((
            Mutex::new((crate::text::line(message, 400), false)),
            Condvar::new(),
        ));
        SPINNING.store(true, Ordering::SeqCst);
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hermes-spinner".into())
            .spawn(move || {
                let (lock, wake) = &*s;
                let mut frame = 0usize;
                let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !g.1 {
                    let glyph = Spinner::GLYPHS[frame % Spinner::GLYPHS.len()];
                    write_fd(
                        err_fd(),
                        spinner_frame(glyph, &g.0, terminal_columns()).as_bytes(),
                    );
                    frame += 1;
                    g = wake
                        .wait_timeout(g, Spinner::FRAME)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            })
            .ok();
        Spinner { shared, thread }
    }

    /// Show `message` from the next frame on.
    pub fn set(&self, message: &str) {
        let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = crate::text::line(message, 400);
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        {
            let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
            g.1 = true;
        }
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        SPINNING.store(false, Ordering::SeqCst);
        write_fd(err_fd(), CLEAR_LINE.as_bytes());
    }
}

fn paint(color: bool, text: &str, code: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinner_frame_leaves_room_for_the_ctrl_c_echo() {
        let long = "waiting for approval… 9:59 left; ".repeat(5);
        for columns in [20, 60, 80] {
            let frame = spinner_frame('⠋', &long, columns);
            let shown = frame.strip_prefix(CLEAR_LINE).unwrap();
            assert!(shown.chars().count() <= columns - 4, "{columns}: {shown}");
            assert!(shown.ends_with('…'), "{shown}");
        }
        let short = spinner_frame('⠋', "waiting", 80);
        assert_eq!(short, format!("{CLEAR_LINE}⠋ waiting"));
    }
}
