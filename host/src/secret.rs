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

/// Secrets shorter than this are not searched for in text: masking a few common characters
/// would garble the message without protecting anything a real token needs.
const MIN_REDACTED_LEN: usize = 8;

/// `text` with every secret in `secrets` replaced by its masked form, in each of the shapes a
/// server may echo it back: as is, URL-encoded, and JSON-escaped (`\/`). Every server-provided
/// string (error bodies, streamed error events, refresh and sign-in failures) passes through
/// here before it is printed or stored.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= MIN_REDACTED_LEN) {
        let masked = mask(s);
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        let json_escaped = s.replace('/', "\\/");
        for form in [s.to_string(), encoded, json_escaped] {
            if out.contains(&form) {
                out = out.replace(&form, &masked);
            }
        }
    }
    out
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

    #[test]
    fn redact_hides_every_echoed_form() {
        let tok = "mm-at-ab/cd+ef=0123456789";
        let body = format!(
            "{{\"error\":\"bad token {tok}\",\"url\":\"?t=mm-at-ab%2Fcd%2Bef%3D0123456789\",\"j\":\"mm-at-ab\\/cd+ef=0123456789\"}}"
        );
        let out = redact(&body, &[tok]);
        assert!(!out.contains("0123456789\""), "{out}");
        assert!(
            !out.contains("ab/cd") && !out.contains("ab%2Fcd") && !out.contains("ab\\/cd"),
            "{out}"
        );
        assert_eq!(out.matches(&mask(tok)).count(), 3, "{out}");
    }

    #[test]
    fn redact_leaves_text_without_secrets_alone() {
        assert_eq!(
            redact("rate limit", &["mm-at-0123456789", "short"]),
            "rate limit"
        );
    }
}
