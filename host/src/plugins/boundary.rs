//! Everything a plugin returns is bounded here, before hermes prints or stores it: messages,
//! codes, summaries and problem lists become short single lines ([`crate::text::line`]);
//! credentials, challenges and runtimes larger than any real one are refused, since a clipped
//! token or URL would be wrong rather than short. So nothing a plugin returns can make
//! `auth.json` grow beyond a small bound, or flood a terminal.

use abi_stable::std_types::{RString, RVec};
use hermes_plugin_api::{Challenge, Credential, PluginError, Runtime, StatusReport};

/// Longest message, summary or problem line kept from a plugin, in characters.
pub const MAX_LINE: usize = 300;
/// Longest error code kept.
pub const MAX_CODE: usize = 64;
/// Most problem lines kept from one status report.
pub const MAX_PROBLEMS: usize = 16;
/// Largest token or key accepted, in bytes.
pub const MAX_SECRET: usize = 16 * 1024;
/// Largest plugin state (`Credential.state`, a challenge's session) accepted, in bytes.
pub const MAX_STATE: usize = 64 * 1024;
/// Longest URL accepted, in bytes.
pub const MAX_URL: usize = 2048;
/// Most extra headers accepted on a runtime.
pub const MAX_HEADERS: usize = 32;

fn line(s: &RString, max: usize) -> RString {
    crate::text::line(s.as_str(), max).into()
}

/// An error with a short code and a one-line message.
pub fn error(e: PluginError) -> PluginError {
    PluginError {
        code: line(&e.code, MAX_CODE),
        message: line(&e.message, MAX_LINE),
        kind: e.kind,
        relogin_required: e.relogin_required,
    }
}

/// A report whose summary, region and problems are short single lines.
pub fn report(r: &StatusReport) -> StatusReport {
    let mut problems: RVec<RString> = r
        .problems
        .iter()
        .take(MAX_PROBLEMS)
        .map(|p| line(p, MAX_LINE))
        .collect();
    if r.problems.len() > MAX_PROBLEMS {
        problems.push(format!("… and {} more", r.problems.len() - MAX_PROBLEMS).into());
    }
    StatusReport {
        state: r.state,
        region: line(&r.region, 64),
        expires_at_ms: r.expires_at_ms,
        summary: line(&r.summary, MAX_LINE),
        problems,
    }
}

fn oversized(what: &str, len: usize, max: usize) -> PluginError {
    PluginError::new(
        hermes_plugin_api::kind::BUG,
        "oversized",
        format!("the plugin returned {what} of {len} bytes (at most {max} are accepted)"),
    )
}

fn limit(what: &str, s: &RString, max: usize) -> Result<(), PluginError> {
    if s.len() > max {
        Err(oversized(what, s.len(), max))
    } else {
        Ok(())
    }
}

/// A credential within bounds; region and label clipped to a line, anything else too large
/// refused.
pub fn credential(mut c: Credential) -> Result<Credential, PluginError> {
    limit("an access token", &c.access_token, MAX_SECRET)?;
    limit("a refresh token", &c.refresh_token, MAX_SECRET)?;
    limit("a base URL", &c.base_url, MAX_URL)?;
    limit("a credential state", &c.state, MAX_STATE)?;
    c.region = line(&c.region, 64);
    c.label = line(&c.label, 100);
    Ok(c)
}

/// A challenge within bounds.
pub fn challenge(mut c: Challenge) -> Result<Challenge, PluginError> {
    limit("a verification URL", &c.verification_uri, MAX_URL)?;
    limit("a sign-in session", &c.session, MAX_STATE)?;
    c.user_code = line(&c.user_code, 64);
    c.verification_uri = line(&c.verification_uri, MAX_URL);
    Ok(c)
}

/// A runtime within bounds.
pub fn runtime(r: Runtime) -> Result<Runtime, PluginError> {
    limit("a base URL", &r.base_url, MAX_URL)?;
    limit("a secret", &r.secret, MAX_SECRET)?;
    if r.extra_headers.len() > MAX_HEADERS {
        return Err(oversized(
            "extra headers",
            r.extra_headers.len(),
            MAX_HEADERS,
        ));
    }
    for h in r.extra_headers.iter() {
        limit("a header", &h.0, 256)?;
        limit("a header value", &h.1, 8 * 1024)?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_error_becomes_one_short_line() {
        let e = error(PluginError::transient(
            &"c".repeat(10_000),
            format!("first\nsecond {}", "x".repeat(1_000_000)),
        ));
        assert!(e.code.chars().count() <= MAX_CODE + 1);
        assert!(e.message.chars().count() <= MAX_LINE + 1);
        assert!(e.message.starts_with("first second"));
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn a_huge_report_is_clipped() {
        let mut r = StatusReport::new(1, &"s".repeat(1_000_000));
        r.region = "r".repeat(1_000_000).as_str().into();
        for _ in 0..1000 {
            r.problems
                .push("p\n\u{1b}[31m".repeat(1000).as_str().into());
        }
        let c = report(&r);
        assert!(c.summary.chars().count() <= MAX_LINE + 1);
        assert!(c.region.chars().count() <= 65);
        assert_eq!(c.problems.len(), MAX_PROBLEMS + 1);
        assert!(c.problems.iter().all(|p| p.chars().count() <= MAX_LINE + 1
            && !p.contains('\n')
            && !p.contains('\u{1b}')));
        assert_eq!(c.problems[MAX_PROBLEMS].as_str(), "… and 984 more");
    }

    #[test]
    fn an_oversized_credential_is_refused() {
        let c = Credential {
            access_token: "t".repeat(MAX_SECRET + 1).as_str().into(),
            ..Default::default()
        };
        assert!(credential(c).is_err());
        let ok = Credential {
            access_token: "t".into(),
            region: "r\u{1b}[2J".into(),
            ..Default::default()
        };
        assert_eq!(credential(ok).unwrap().region.as_str(), "r [2J");
    }
}
