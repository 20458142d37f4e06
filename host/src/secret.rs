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

/// `n` random bytes from the OS, as lower-case hex (tokens, keys, ids). Without an OS random
/// source no secure value can be made, and there is nothing sensible to fall back to: an error.
pub fn random_hex(n: usize) -> crate::Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)
        .map_err(|e| crate::Error::msg(format!("the OS random source failed: {e}")))?;
    Ok(hex(&buf))
}

/// `bytes` as lower-case hex (checksums, ids).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
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
    for (form, masked) in forms(secrets) {
        if out.contains(&form) {
            out = out.replace(&form, &masked);
        }
    }
    out
}

/// Each shape of each secret long enough to search for, with its masked form.
fn forms(secrets: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in secrets.iter().filter(|s| s.len() >= MIN_REDACTED_LEN) {
        let masked = mask(s);
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        let json_escaped = s.replace('/', "\\/");
        for form in [s.to_string(), encoded, json_escaped] {
            if !out.iter().any(|(f, _)| *f == form) {
                out.push((form, masked.clone()));
            }
        }
    }
    out
}

/// [`redact`] for a byte stream cut anywhere (a relayed answer): a secret split across two
/// chunks is still found. Only a chunk's end that could be the start of a secret is held back
/// until the next chunk, so an answer that holds no secret flows through unchanged and undelayed.
pub struct StreamRedactor {
    forms: Vec<(Vec<u8>, Vec<u8>)>,
    held: Vec<u8>,
}

impl StreamRedactor {
    /// A redactor for `secrets`.
    pub fn new(secrets: &[&str]) -> StreamRedactor {
        StreamRedactor {
            forms: forms(secrets)
                .into_iter()
                .map(|(f, m)| (f.into_bytes(), m.into_bytes()))
                .collect(),
            held: Vec::new(),
        }
    }

    /// The bytes that may go out now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.forms.is_empty() {
            return chunk.to_vec();
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        let mut out = self.replace(&buf);
        let keep = self.partial_suffix(&out);
        self.held = out.split_off(out.len() - keep);
        out
    }

    /// What was held back, at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    fn replace(&self, buf: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'scan: while i < buf.len() {
            for (form, masked) in &self.forms {
                if buf[i..].starts_with(form) {
                    out.extend_from_slice(masked);
                    i += form.len();
                    continue 'scan;
                }
            }
            out.push(buf[i]);
            i += 1;
        }
        out
    }

    /// The length of the longest end of `buf` that is the start of some secret form.
    fn partial_suffix(&self, buf: &[u8]) -> usize {
        let longest = self
            .forms
            .iter()
            .map(|(f, _)| f.len() - 1)
            .max()
            .unwrap_or(0);
        (1..=longest.min(buf.len()))
            .rev()
            .find(|&n| {
                let tail = &buf[buf.len() - n..];
                self.forms.iter().any(|(f, _)| f.starts_with(tail))
            })
            .unwrap_or(0)
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

    #[test]
    fn a_secret_split_across_chunks_is_still_masked_and_other_bytes_flow_undelayed() {
        let tok = "mm-at-0123456789abcdef";
        let text = format!("data: {{\"error\":\"bad {tok}\"}}\n\ndata: [DONE]\n\n");
        for cut in 1..text.len() {
            let mut r = StreamRedactor::new(&[tok]);
            let mut out = r.push(&text.as_bytes()[..cut]);
            out.extend(r.push(&text.as_bytes()[cut..]));
            out.extend(r.finish());
            let out = String::from_utf8(out).unwrap();
            assert_eq!(out, redact(&text, &[tok]), "cut at {cut}");
            assert!(!out.contains("0123456789"), "cut at {cut}: {out}");
        }
        // Nothing that could start a secret is held back.
        let mut r = StreamRedactor::new(&[tok]);
        assert_eq!(r.push(b"event: ping\n\n"), b"event: ping\n\n");
        assert_eq!(r.push(b"xx mm-a"), b"xx ");
        assert_eq!(r.finish(), b"mm-a");
    }
}
