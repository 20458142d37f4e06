//! The error type at the edge of the library. Each layer says what went wrong in its own enum
//! ([`StoreError`], [`AuthError`], [`PluginsError`], [`ConfigError`], [`ChatError`]);
//! [`Error`] gathers them, and the exit code and the `help:` line are derived from the variant
//! here, in one place.

pub use crate::auth::store::StoreError;
pub use crate::auth::AuthError;
pub use crate::chat::ChatError;
pub use crate::config::ConfigError;
pub use crate::plugins::PluginsError;

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

/// An error reported to the user: its `Display` is the `error:` line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Plugins(#[from] PluginsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The command line asked for something that cannot be done as given (exit 2).
    #[error("{message}")]
    Usage { message: String, help: String },
    /// Stopped with Ctrl-C (exit 130).
    #[error("stopped with Ctrl-C")]
    Interrupted,
    /// An I/O failure while doing `what`.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
        help: Option<String>,
    },
    /// A failure of a command of its own (the gateway key, a scaffold, ...), said in words.
    #[error("{message}")]
    Other {
        message: String,
        help: Option<String>,
    },
}

impl Error {
    /// A failure with a message.
    pub fn msg(message: impl Into<String>) -> Error {
        Error::Other {
            message: message.into(),
            help: None,
        }
    }
    /// A usage error (exit 2) with the command that helps.
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, err: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source: err,
            help: None,
        }
    }
    /// Adds the `help:` line to an error said in words ([`Error::msg`], [`Error::io`]);
    /// the other variants derive theirs.
    pub fn with_help(mut self, text: impl Into<String>) -> Error {
        if let Error::Other { help, .. } | Error::Io { help, .. } = &mut self {
            *help = Some(text.into());
        }
        self
    }
    /// The one-line message.
    pub fn message(&self) -> String {
        self.to_string()
    }
    /// The `help:` line: the command or step that fixes it, where there is one.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Store(e) => e.help(),
            Error::Auth(e) => e.help(),
            Error::Plugins(e) => e.help(),
            Error::Config(e) => e.help(),
            Error::Chat(e) => e.help(),
            Error::Usage { help, .. } => Some(help.clone()),
            Error::Interrupted => None,
            Error::Io { help, .. } | Error::Other { help, .. } => help.clone(),
        }
    }
    /// Detail shown only with `-v`.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::Plugins(e) => e.detail(),
            _ => None,
        }
    }
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. } => ExitCode::Usage,
            Error::Config(e) if e.is_usage() => ExitCode::Usage,
            Error::Plugins(e) if e.is_usage() => ExitCode::Usage,
            Error::Interrupted => ExitCode::Interrupted,
            _ => ExitCode::Failure,
        }
    }
    /// Whether a new sign-in is what fixes it (the gateway answers such an error with a 401).
    pub fn needs_sign_in(&self) -> bool {
        match self {
            Error::Auth(e) => e.needs_sign_in(),
            Error::Chat(e) => matches!(e, ChatError::RejectedAgain { .. }),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_comes_from_the_variant() {
        let usage = [
            Error::from(ConfigError::NoHome),
            Error::from(ConfigError::InvalidKey { key: "a..b".into() }),
            Error::from(ConfigError::KeyTooDeep { levels: 9 }),
            Error::from(PluginsError::NoChecksum {
                url: "https://example.com/x.so".into(),
            }),
            Error::usage("no provider chosen", "pass --provider"),
        ];
        for e in &usage {
            assert_eq!(e.exit_code(), ExitCode::Usage, "{e:?}");
            assert!(e.help().is_some(), "{e:?}");
        }
        assert_eq!(Error::Interrupted.exit_code(), ExitCode::Interrupted);
        let failures = [
            Error::from(ConfigError::NotMapping {
                path: "/h/config.yaml".into(),
            }),
            Error::from(PluginsError::NotInstalled { id: "x".into() }),
            Error::from(AuthError::Transient {
                message: "503".into(),
            }),
            Error::from(StoreError::Encode(serde_json::Error::io(
                std::io::Error::other("x"),
            ))),
        ];
        for e in &failures {
            assert_eq!(e.exit_code(), ExitCode::Failure, "{e:?}");
        }
    }

    #[test]
    fn the_help_line_and_the_sign_in_hint_come_from_the_variant() {
        let e = Error::from(AuthError::NotSignedIn {
            provider: "MiniMax".into(),
            login: "hermes auth add minimax-oauth".into(),
        });
        assert_eq!(e.to_string(), "not signed in to MiniMax");
        assert_eq!(
            e.help().as_deref(),
            Some("run `hermes auth add minimax-oauth`")
        );
        assert!(e.needs_sign_in());
        let transient = Error::from(AuthError::Transient {
            message: "the server answered 503".into(),
        });
        assert_eq!(
            transient.to_string(),
            "the server answered 503 (your login is kept)"
        );
        assert!(!transient.needs_sign_in());
        // Its help names `hermes auth add`, but a corrupt store is not fixed by signing in.
        let corrupt = Error::from(StoreError::Corrupt {
            path: "/h/auth.json".into(),
            why: "invalid JSON".into(),
            copy: None,
        });
        assert!(corrupt.help().unwrap().contains("hermes auth add"));
        assert!(!corrupt.needs_sign_in());
        let again = Error::from(ChatError::RejectedAgain {
            provider: "MiniMax".into(),
            login: "hermes auth add minimax-oauth".into(),
        });
        assert!(again.needs_sign_in());
    }
}
