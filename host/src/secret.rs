//! One type for secrets: no `Display`, a redacted `Debug`, and an explicit [`Secret::expose`]
//! at the few places a token must leave (an HTTP header, the store, `hermes auth token`).

use std::fmt;

pub use hermes_plugin_api::mask;

/// A token or key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself. Call only where it must leave the process.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The masked form for people (`mm-…f3a9`).
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new("mm-at-0123456789abcdef0123456789");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
        assert_eq!(s.masked(), "mm-…6789");
    }

    #[test]
    fn short_secrets_are_fully_hidden() {
        assert_eq!(Secret::new("abc").masked(), "…");
        assert_eq!(Secret::new("").masked(), "");
    }
}
