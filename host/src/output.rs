//! The only module that prints. Results go to stdout (text or `--json`); progress, prose,
//! warnings and logs go to stderr.

use std::io::{IsTerminal, Write};

use crate::config::Env;

/// Longest error or warning line printed. Not a limit in practice (plugins and the host cap
/// what they quote, and say so); it only bounds a runaway message.
const MAX_MESSAGE_CHARS: usize = 1 << 20;

/// Where and how to print.
#[derive(Clone, Debug)]
pub struct Output {
    verbose: u8,
    quiet: bool,
    color: bool,
    stdout_tty: bool,
    stderr_tty: bool,
}

impl Output {
    /// An output for this environment and these flags.
    pub fn new(env: &Env, verbose: u8, quiet: bool) -> Output {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        Output {
            verbose,
            quiet,
            color: !env.no_color && stderr_tty,
            stdout_tty,
            stderr_tty,
        }
    }

    /// An output that prints nothing to terminals (tests and child processes).
    pub fn plain(verbose: u8) -> Output {
        Output {
            verbose,
            quiet: false,
            color: false,
            stdout_tty: false,
            stderr_tty: false,
        }
    }

    /// `-v` count.
    pub fn verbose(&self) -> u8 {
        self.verbose
    }
    /// Whether progress may be animated (stderr is a terminal, no `--quiet`, no `NO_COLOR`).
    pub fn animated(&self) -> bool {
        self.stderr_tty && !self.quiet && self.color
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
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
    /// A result line on stdout that must arrive: a failed write or flush (a full disk, a
    /// closed pipe) is an error, so a script never takes a missing token for success.
    pub fn result_checked(&self, line: &str) -> crate::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| crate::Error::io("cannot write to stdout", e))
    }
    /// Raw text on stdout, flushed (streamed output).
    pub fn result_raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    /// A JSON document on stdout.
    pub fn json(&self, value: &serde_json::Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        self.result(&text);
    }
    /// Prose on stderr (suppressed by `--quiet`).
    pub fn info(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
    /// Prose on stderr that `--quiet` does not hide (sign-in codes and URLs).
    pub fn notice(&self, line: &str) {
        eprintln!("{line}");
    }
    /// A warning on stderr. Warnings quote servers and plugins, so the text is made
    /// terminal-safe here.
    pub fn warn(&self, line: &str) {
        eprintln!(
            "{} {}",
            self.paint("warning:", "33"),
            crate::text::line(line, MAX_MESSAGE_CHARS)
        );
    }
    /// A log line, shown when `-v` was given `level` times or more.
    pub fn log(&self, level: u8, line: &str) {
        if self.verbose >= level {
            eprintln!("{} {line}", self.paint("debug:", "2"));
        }
    }
    /// An error with its `help:` line and, at `-v`, its detail.
    /// Errors quote servers and plugins, so their text is made terminal-safe here.
    pub fn error(&self, err: &crate::Error) {
        eprintln!(
            "{} {}",
            self.paint("error:", "31"),
            crate::text::line(err.message(), MAX_MESSAGE_CHARS)
        );
        if let Some(h) = err.help() {
            eprintln!(
                "{} {}",
                self.paint("help:", "36"),
                crate::text::line(h, MAX_MESSAGE_CHARS)
            );
        }
        if let Some(d) = err.detail() {
            if self.verbose > 0 {
                eprintln!("{}", crate::text::text(d));
            } else {
                eprintln!("(run with -v for details)");
            }
        }
    }

    /// `✓` in green.
    pub fn ok_mark(&self) -> String {
        self.paint("✓", "32")
    }
    /// `✗` in red.
    pub fn bad_mark(&self) -> String {
        self.paint("✗", "31")
    }
    /// `!` in yellow.
    pub fn warn_mark(&self) -> String {
        self.paint("!", "33")
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}
