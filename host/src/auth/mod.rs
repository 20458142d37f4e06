//! Credentials: the store (`auth.json`), the pool of logins per provider, the device-code
//! driver, and the refresh coordinator with its quarantine.

pub mod choice;
mod doctor;
pub mod login;
pub mod pool;
pub mod refresh;
pub mod store;
pub mod worker;

pub use pool::{EntryView, Slot};
pub use refresh::{Resolved, TokenSource};
pub use store::{AuthFile, Store};

/// What can go wrong with a login. `provider` is the display name; `login` the command that
/// signs in to it.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum AuthError {
    /// The provider has no login at all.
    #[error("not signed in to {provider}")]
    NotSignedIn { provider: String, login: String },
    /// The login was quarantined by an earlier dead refresh (`why` is what the server said).
    #[error("sign-in required for {provider} ({account}){}", why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    ReloginRequired {
        provider: String,
        account: String,
        why: Option<String>,
        login: String,
    },
    /// The refresh was refused for good: the login is dead and was quarantined.
    #[error("{provider}: {message}")]
    RefreshRejected {
        provider: String,
        message: String,
        login: String,
    },
    /// The server refused the credential (say, a revoked API key); nothing was changed.
    #[error("{message}")]
    CredentialRefused { message: String, login: String },
    /// The refresh failed in a way that may pass (network, 5xx); the login is kept.
    #[error("{message} (your login is kept)")]
    Transient { message: String },
    /// The plugin could not turn the credential into what a request needs.
    #[error("{provider}: {message}")]
    Runtime { provider: String, message: String },
    /// The provider gives no runtime credentials (`id` is the provider id).
    #[error("provider {id} does not provide runtime credentials")]
    NoRuntime { id: String },
    /// The provider has no sign-in flow.
    #[error("{provider} has no sign-in flow")]
    NoSignInFlow { provider: String },
    /// A sign-in did not start or did not end in approval; the message is masked.
    #[error("{0}")]
    SignIn(String),
    /// More than one login answers to the name asked for.
    #[error("{} logins of {display} are called {:?} ({source_}, {})", ids.len(), crate::text::line(key, 64), ids.join(", "))]
    AmbiguousAccount {
        display: String,
        provider: String,
        key: String,
        source_: String,
        ids: Box<[String]>,
    },
    /// No login answers to the name asked for.
    #[error(
        "no login of {display} is called {:?} ({source_})",
        crate::text::line(key, 64)
    )]
    UnknownAccount {
        display: String,
        provider: String,
        key: String,
        source_: String,
    },
    /// The login was removed by another process while this one refreshed it.
    #[error("the login of {provider} was removed while it was being refreshed")]
    RemovedDuringRefresh { provider: String },
    /// The login named by id is not in the store (any more).
    #[error("the login {id} of {provider} is gone")]
    LoginGone { provider: String, id: String },
}

impl AuthError {
    /// The `help:` line.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            AuthError::NotSignedIn { login, .. } | AuthError::RefreshRejected { login, .. } => {
                format!("run `{login}`")
            }
            AuthError::ReloginRequired { login, .. } => format!("run `{login}` to sign in again"),
            AuthError::CredentialRefused { login, .. } => format!("`{login}` replaces the login"),
            AuthError::Transient { .. } => {
                "this is usually temporary; try again in a moment, or run `hermes doctor`".into()
            }
            AuthError::AmbiguousAccount { provider, .. } => format!(
                "name one by its id, or remove the extra ones with `hermes auth remove {provider} <id>`"
            ),
            AuthError::UnknownAccount { provider, .. } => {
                format!("see them with `hermes auth list {provider}`")
            }
            AuthError::Runtime { .. }
            | AuthError::NoRuntime { .. }
            | AuthError::NoSignInFlow { .. }
            | AuthError::SignIn(_)
            | AuthError::RemovedDuringRefresh { .. }
            | AuthError::LoginGone { .. } => return None,
        })
    }

    /// Whether a new sign-in is what fixes it.
    pub fn needs_sign_in(&self) -> bool {
        matches!(
            self,
            AuthError::NotSignedIn { .. }
                | AuthError::ReloginRequired { .. }
                | AuthError::RefreshRejected { .. }
                | AuthError::CredentialRefused { .. }
        )
    }
}
