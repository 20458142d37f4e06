//! Small helpers shared by the login and refresh paths: the form POST, bounded error bodies,
//! lenient JSON field access and URL checks.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::{form_encode, Host};
use serde_json::{Map, Value};

use crate::descriptor::{ALLOWED_HOSTS, HTTP_TIMEOUT_MS};

/// The most of an error body that goes into a message.
pub const MAX_ERROR_BODY: usize = 16 * 1024;
/// Appended when an error body was cut, here or by the host's size cap.
pub const TRUNCATED_SUFFIX: &str = "...[truncated]";

/// `POST` an `application/x-www-form-urlencoded` form, fields in the given order, with the
/// login/refresh timeout. `Accept: application/json` is always sent: without it the portal may
/// answer with an HTML page.
pub fn post_form(
    host: &Host,
    url: &str,
    fields: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> Result<HttpResponse, PluginError> {
    post_form_with_timeout(host, HTTP_TIMEOUT_MS, url, fields, extra_headers)
}

/// [`post_form`] with its own timeout (the refresh's long deadline).
pub fn post_form_with_timeout(
    host: &Host,
    timeout_ms: u64,
    url: &str,
    fields: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> Result<HttpResponse, PluginError> {
    let mut headers: RVec<Tuple2<RString, RString>> = RVec::new();
    headers.push(Tuple2(
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    headers.push(Tuple2("accept".into(), "application/json".into()));
    for (k, v) in extra_headers {
        headers.push(Tuple2((*k).into(), (*v).into()));
    }
    host.http(HttpRequest {
        method: "POST".into(),
        url: url.into(),
        headers,
        body: form_encode(fields).into_bytes().into(),
        timeout_ms,
    })
}

/// `{base}{path}` without a doubled slash.
pub fn endpoint(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// The body as text for a message (see [`clean`]), also marked when the host cut it.
pub fn body_for_message(resp: &HttpResponse, secrets: &[&str]) -> String {
    let mut out = clean(&String::from_utf8_lossy(&resp.body), secrets);
    if resp.truncated && !out.ends_with(TRUNCATED_SUFFIX) {
        out.push_str(TRUNCATED_SUFFIX);
    }
    out
}

/// Server text made fit for a message: `secrets` redacted first (so a cut cannot leave
/// half a token), then [`one_line`].
pub fn clean(text: &str, secrets: &[&str]) -> String {
    one_line(&redact(text, secrets))
}

/// Server text made fit for a one-line message: control characters (including the escape
/// that starts a terminal sequence) become spaces, the ends are trimmed, and at most
/// [`MAX_ERROR_BODY`] bytes are kept, cut on a char boundary and marked.
pub fn one_line(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.len() <= MAX_ERROR_BODY {
        return text.to_string();
    }
    let mut end = MAX_ERROR_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text.get(..end).unwrap_or_default().to_string();
    out.push_str(TRUNCATED_SUFFIX);
    out
}

/// The standard reason phrase of a status, for messages when the body is empty.
pub fn reason_phrase(status: u16) -> String {
    let known = match status {
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    if known.is_empty() {
        format!("HTTP {status}")
    } else {
        known.to_string()
    }
}

/// Whether retrying the same request later may succeed.
pub fn status_is_transient(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// The body as a JSON object; `None` for anything else (bad UTF-8, bad JSON, a non-object,
/// a body the host cut).
pub fn json_object(resp: &HttpResponse) -> Option<Map<String, Value>> {
    if resp.truncated {
        return None;
    }
    match serde_json::from_slice::<Value>(&resp.body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A non-empty string field.
pub fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `base_resp.status_msg`, MiniMax's human-readable error, as received.
pub fn status_msg(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("base_resp")
        .and_then(Value::as_object)
        .and_then(|b| str_field(b, "status_msg"))
}

/// The server's own message in an error body, cleaned: `base_resp.status_msg`, else an OAuth
/// `error_description`, else `message`, else `error`. A JSON body with none of them is never
/// shown raw (the reason phrase stands for it); a body that is not JSON is, cleaned.
pub fn describe_error_body(resp: &HttpResponse, secrets: &[&str]) -> String {
    let parsed = serde_json::from_slice::<Value>(&resp.body).ok();
    if let Some(obj) = parsed.as_ref().and_then(Value::as_object) {
        let said = status_msg(obj)
            .or_else(|| str_field(obj, "error_description"))
            .or_else(|| str_field(obj, "message"))
            .or_else(|| str_field(obj, "error"));
        return match said {
            Some(msg) => clean(msg, secrets),
            None => reason_phrase(resp.status),
        };
    }
    if parsed.is_some() {
        return reason_phrase(resp.status);
    }
    let body = body_for_message(resp, secrets);
    if body.is_empty() {
        reason_phrase(resp.status)
    } else {
        body
    }
}

/// The scheme and lower-cased host of an absolute URL; `None` when it has none or carries
/// user info (`https://api.minimax.io@evil.example/` must not pass as MiniMax).
pub fn scheme_and_host(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

/// Whether a host name is a loopback address.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .strip_prefix("127.")
            .is_some_and(|r| r.split('.').count() == 3 && r.split('.').all(is_octet))
}

fn is_octet(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u8>().is_ok()
}

/// Whether a URL from the server may become the inference base: https to an allow-listed
/// host, or http(s) to loopback (the emulator and local proxies).
pub fn is_trusted_base_url(url: &str) -> bool {
    match scheme_and_host(url) {
        Some((scheme, host)) if is_loopback(&host) => scheme == "https" || scheme == "http",
        Some((scheme, host)) => scheme == "https" && ALLOWED_HOSTS.contains(&host.as_str()),
        None => false,
    }
}

/// `text` with every occurrence of each non-empty secret replaced, so a server that echoes a
/// token back cannot push it into a message or a log.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_string(), |acc, s| acc.replace(s, "[redacted]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &[u8], truncated: bool) -> HttpResponse {
        HttpResponse {
            status,
            headers: RVec::new(),
            body: body.to_vec().into(),
            truncated,
            final_url: RString::new(),
        }
    }

    #[test]
    fn error_bodies_are_capped_at_16_kib() {
        let long = "x".repeat(MAX_ERROR_BODY + 100);
        let out = body_for_message(&resp(500, long.as_bytes(), false), &[]);
        assert_eq!(out.len(), MAX_ERROR_BODY + TRUNCATED_SUFFIX.len());
        assert!(out.ends_with("...[truncated]"));
        let exact = "y".repeat(MAX_ERROR_BODY);
        assert_eq!(
            body_for_message(&resp(500, exact.as_bytes(), false), &[]),
            exact
        );
    }

    #[test]
    fn error_body_cut_respects_utf8() {
        let long = "é".repeat(MAX_ERROR_BODY);
        let out = body_for_message(&resp(500, long.as_bytes(), false), &[]);
        assert!(out.ends_with(TRUNCATED_SUFFIX));
        assert!(out.len() <= MAX_ERROR_BODY + TRUNCATED_SUFFIX.len());
    }

    #[test]
    fn regress_unbounded_error_body_host_truncation_is_marked() {
        let out = body_for_message(&resp(502, b"partial", true), &[]);
        assert_eq!(out, "partial...[truncated]");
        assert!(json_object(&resp(200, b"{}", true)).is_none());
    }

    #[test]
    fn error_bodies_become_one_safe_line() {
        let out = body_for_message(
            &resp(500, b"<html>\r\n<b>down</b>\x1b[2J\n</html>\n", false),
            &[],
        );
        assert_eq!(out, "<html>  <b>down</b> [2J </html>");
    }

    #[test]
    fn error_description_prefers_status_msg() {
        let r = resp(
            400,
            br#"{"base_resp":{"status_code":1004,"status_msg":"bad code"}}"#,
            false,
        );
        assert_eq!(describe_error_body(&r, &[]), "bad code");
        // The shape a real MiniMax 500 has: its words, never the JSON.
        let r = resp(
            500,
            br#"{"error":"server_error","error_description":"try again later","base_resp":{"status_code":1000}}"#,
            false,
        );
        assert_eq!(describe_error_body(&r, &[]), "try again later");
        let r = resp(500, br#"{"error":"server_error","trace":{"id":1}}"#, false);
        assert_eq!(describe_error_body(&r, &[]), "server_error");
        let r = resp(500, br#"{"trace":{"id":1}}"#, false);
        assert_eq!(describe_error_body(&r, &[]), "Internal Server Error");
        assert_eq!(describe_error_body(&resp(503, b"down", false), &[]), "down");
        assert_eq!(
            describe_error_body(&resp(307, b"", false), &[]),
            "Temporary Redirect"
        );
        assert_eq!(
            describe_error_body(&resp(599, b" ", false), &[]),
            "HTTP 599"
        );
    }

    #[test]
    fn url_host_parsing() {
        let sh = |u: &str| scheme_and_host(u);
        assert_eq!(
            sh("https://API.minimax.io/anthropic"),
            Some(("https".into(), "api.minimax.io".into()))
        );
        assert_eq!(
            sh("http://127.0.0.1:8080/x"),
            Some(("http".into(), "127.0.0.1".into()))
        );
        assert_eq!(sh("http://[::1]:9/x"), Some(("http".into(), "::1".into())));
        assert_eq!(sh("https://api.minimax.io@evil.example/"), None);
        assert_eq!(sh("api.minimax.io/anthropic"), None);
        assert_eq!(sh("https:///path"), None);
    }

    #[test]
    fn trusted_base_urls() {
        assert!(is_trusted_base_url("https://api.minimax.io/anthropic"));
        assert!(is_trusted_base_url("https://api.minimaxi.com/anthropic"));
        assert!(is_trusted_base_url("http://127.0.0.1:4010/anthropic"));
        assert!(is_trusted_base_url("http://localhost:4010"));
        assert!(is_trusted_base_url("http://[::1]:4010"));
        assert!(!is_trusted_base_url("http://api.minimax.io/anthropic"));
        assert!(!is_trusted_base_url("https://evil.example/anthropic"));
        assert!(!is_trusted_base_url("https://api.minimax.io.evil.example/"));
        assert!(!is_trusted_base_url("https://api.minimax.io@evil.example/"));
        assert!(!is_trusted_base_url("http://127.0.0.1.evil.example/"));
        assert!(!is_trusted_base_url("ftp://127.0.0.1/"));
        assert!(!is_trusted_base_url(""));
    }

    #[test]
    fn redaction_happens_before_the_cut() {
        // A token straddling the 16 KiB cut must not leave its first half in the message.
        let secret = "rt-secret-0123456789";
        let body = format!("{}{secret}", "x".repeat(MAX_ERROR_BODY - 5));
        let out = body_for_message(&resp(400, body.as_bytes(), false), &[secret]);
        assert!(!out.contains("rt-se"), "{}", &out[out.len() - 40..]);
    }

    #[test]
    fn redaction_removes_secrets() {
        assert_eq!(
            redact("token rt-secret-1 was reused", &["rt-secret-1", ""]),
            "token [redacted] was reused"
        );
    }
}
