//! The error type at the edge of the library: every variant says what happened and, where
//! there is one, the command that fixes it.

use std::fmt;

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the process should exit for an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Something failed or needs action (1).
    Failure = 1,
    /// The command line was wrong (2).
    Usage = 2,
    /// Stopped with Ctrl-C (130, as shells report SIGINT).
    Interrupted = 130,
}

/// An error reported to the user.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    message: String,
    help: Option<String>,
    detail: Option<String>,
    exit: ExitCode,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    /// A failure with a message.
    pub fn msg(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            help: None,
            detail: None,
            exit: ExitCode::Failure,
        }
    }
    /// A usage error (exit 2) with the command that helps.
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error {
            exit: ExitCode::Usage,
            ..Error::msg(message).with_help(help)
        }
    }
    /// Stopped by the user (exit 130).
    pub fn interrupted(message: impl Into<String>) -> Error {
        Error {
            exit: ExitCode::Interrupted,
            ..Error::msg(message)
        }
    }
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, err: std::io::Error) -> Error {
        Error::msg(format!("{}: {err}", what.into()))
    }
    /// Adds the `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }
    /// Adds detail shown only with `-v`.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }
    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The `help:` line.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }
    /// The verbose detail.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        self.exit
    }
}
