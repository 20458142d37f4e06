//! The chat client: requests in the provider's wire dialect ([`dialect`], chosen by the
//! descriptor's `api_mode`), with a token taken from the host's token source **per request**
//! and one refresh-and-retry on a 401.
//!
//! The api mode always comes from the provider's descriptor; nothing in configuration can send
//! a provider's credentials to another API shape. Requests go only to the provider's inference
//! base URL, under the same https and allow-list rules as plugin requests, and never follow
//! redirects (a bearer token must not travel to a host it was not meant for).
//!
//! Everything a server says passes through [`secret::redact`] (with the token in use) and
//! [`text::line`] before it becomes part of an error; streamed text through [`text::text`].
//! Streamed text is handed on as it arrives and kept only up to a cap (none for a one-shot
//! answer that is printed), so an endless answer costs no memory; a stream that sends nothing
//! for the idle timeout ends with an error.

pub mod dialect;
pub mod sse;

use std::sync::Arc;
use std::time::Duration;

pub use dialect::{ChatRequest, Dialect, Message, StopReason, StreamEvent, Usage};

use crate::auth::{Resolved, TokenSource};
use crate::error::{Error, Result};

/// What can go wrong with a chat request. Every text from a server in here is already
/// masked and clipped.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The provider's API mode is not one hermes speaks.
    #[error(
        "{provider} uses the {api_mode} API, which this hermes cannot chat in (it speaks {spoken})"
    )]
    UnsupportedDialect {
        provider: String,
        api_mode: String,
        spoken: String,
    },
    /// The API refused the token again after a refresh.
    #[error("{provider} rejected the access token again after a refresh (401)")]
    RejectedAgain { provider: String, login: String },
    /// The inference URL from the plugin does not parse.
    #[error("the inference URL {url:?} is not valid: {why}")]
    InvalidUrl { url: String, why: String },
    /// The host's network rules refuse the URL.
    #[error("{0}")]
    Refused(String),
    /// The plugin asks for a way of sending the credential hermes does not use.
    #[error("{provider}: {why}; hermes sends credentials only as Bearer or x-api-key")]
    AuthScheme { provider: String, why: String },
    /// No answer in time, no connection, or the connection dropped before an answer.
    #[error("{0}")]
    Network(String),
    /// The server answered with a redirect.
    #[error(
        "{host} answered {status} (a redirect); hermes does not follow redirects with credentials"
    )]
    Redirect { host: String, status: u16 },
    /// The API said no (with its status, or as an error event in a stream).
    #[error("{provider} API error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Api {
        provider: String,
        status: Option<u16>,
        message: String,
    },
    /// The answer could not be read as the dialect's answer.
    #[error("{0}")]
    BadAnswer(String),
    /// The stream was not well-formed.
    #[error(transparent)]
    Stream(#[from] sse::SseError),
    /// The stream sent nothing for the idle timeout.
    #[error("the stream from {host} stalled: nothing for {secs} s after {chars} characters")]
    Stalled {
        host: String,
        secs: f64,
        chars: usize,
    },
    /// The connection broke during the stream.
    #[error("the stream from {host} broke off after {chars} characters")]
    BrokeOff { host: String, chars: usize },
    /// The stream ended without saying the message was complete.
    #[error("the stream from {host} ended before the message was complete ({chars} characters received)")]
    Incomplete { host: String, chars: usize },
}

impl ChatError {
    /// The `help:` line.
    pub fn help(&self) -> Option<String> {
        match self {
            ChatError::UnsupportedDialect { .. } => Some(
                "a newer hermes may speak it: `hermes plugins check` lists what a plugin declares"
                    .into(),
            ),
            ChatError::RejectedAgain { login, .. } => Some(format!("sign in again: `{login}`")),
            _ => None,
        }
    }
}
use crate::net::{Net, Policy, ERROR_BODY_CAP};
use crate::{secret, text};

/// Default longest wait for the next bytes of an answer.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest non-streamed answer accepted.
pub const REPLY_CAP: usize = 8 * 1024 * 1024;
/// Default cap on the streamed text kept for [`ChatReply::text`] (a conversation's history).
pub const KEPT_TEXT_CAP: usize = 1024 * 1024;
/// Longest server-provided message shown in an error.
const MESSAGE_MAX: usize = 300;

/// An answer.
#[derive(Clone, Debug)]
pub struct ChatReply {
    /// The text (of a streamed answer, at most the client's keep cap).
    pub text: String,
    /// Whether [`ChatReply::text`] lost its end to the keep cap.
    pub text_clipped: bool,
    /// Why it stopped, in neutral words ([`StopReason::as_str`]).
    pub stop_reason: Option<String>,
    pub usage: Usage,
    /// The model that answered.
    pub model: String,
    /// A 401 was answered by one refresh and a retry.
    pub retried_after_401: bool,
    /// The login used.
    pub account: String,
    /// Why that login.
    pub account_reason: String,
}

impl ChatReply {
    fn empty() -> ChatReply {
        ChatReply {
            text: String::new(),
            text_clipped: false,
            stop_reason: None,
            usage: Usage::default(),
            model: String::new(),
            retried_after_401: false,
            account: String::new(),
            account_reason: String::new(),
        }
    }
}

/// Why one attempt failed.
enum Attempt {
    Unauthorized,
    Failed(Error),
}

/// The chat client of one provider login.
pub struct ChatClient {
    source: Arc<TokenSource>,
    dialect: &'static dyn Dialect,
    policy: Policy,
    ctrl_c: bool,
    idle: Duration,
    keep: usize,
}

impl ChatClient {
    /// A client over `source`; refuses providers whose api mode it does not speak.
    pub fn new(source: Arc<TokenSource>) -> Result<ChatClient> {
        let p = source.provider();
        let d = &p.desc;
        let Some(dialect) = dialect::for_mode(&d.api_mode) else {
            return Err(ChatError::UnsupportedDialect {
                provider: d.display_name.clone(),
                api_mode: text::line(&d.api_mode, 64),
                spoken: dialect::spoken().join(", "),
            }
            .into());
        };
        let policy = p.policy.clone();
        Ok(ChatClient {
            source,
            dialect,
            policy,
            ctrl_c: false,
            idle: STREAM_IDLE_TIMEOUT,
            keep: KEPT_TEXT_CAP,
        })
    }

    /// Stop cleanly on Ctrl-C (for the command line).
    pub fn stop_on_ctrl_c(mut self) -> Self {
        self.ctrl_c = true;
        self
    }

    /// Give up when an answer sends nothing for `idle`.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Keep at most `cap` bytes of streamed text in [`ChatReply::text`] (0 when the caller
    /// prints the text and needs nothing back).
    pub fn keep_streamed_text(mut self, cap: usize) -> Self {
        self.keep = cap;
        self
    }

    /// The dialect in use.
    pub fn dialect(&self) -> &'static dyn Dialect {
        self.dialect
    }

    fn display(&self) -> &str {
        &self.source.provider().desc.display_name
    }

    /// Send one request; `on_text` receives streamed text (terminal-safe) as it arrives.
    /// Blocks the calling thread (which must not be inside an async runtime).
    pub fn send(&self, req: &ChatRequest, on_text: &mut dyn FnMut(&str)) -> Result<ChatReply> {
        let mut resolved = self.source.token()?;
        let mut retried = false;
        loop {
            let net = Net::get();
            let attempt = net.runtime().block_on(async {
                let work = self.send_once(net, &resolved, req, on_text);
                if self.ctrl_c {
                    tokio::select! {
                        r = work => r,
                        _ = tokio::signal::ctrl_c() => Err(Attempt::Failed(Error::Interrupted)),
                    }
                } else {
                    work.await
                }
            });
            match attempt {
                Ok(mut reply) => {
                    reply.retried_after_401 = retried;
                    reply.account = resolved.entry_name.clone();
                    reply.account_reason = resolved.reason.clone();
                    return Ok(reply);
                }
                Err(Attempt::Unauthorized) if !retried => {
                    retried = true;
                    resolved = self.source.after_unauthorized(&resolved)?;
                }
                Err(Attempt::Unauthorized) => {
                    let d = &self.source.provider().desc;
                    return Err(ChatError::RejectedAgain {
                        provider: d.display_name.clone(),
                        login: d.login_command(),
                    }
                    .into());
                }
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
    }

    /// A server-provided message made safe to show: the token in use masked, one clipped line.
    fn clean(&self, raw: &str, tok: &Resolved) -> String {
        text::line(&secret::redact(raw, &[tok.token.expose()]), MESSAGE_MAX)
    }

    async fn send_once(
        &self,
        net: &Net,
        tok: &Resolved,
        req: &ChatRequest,
        on_text: &mut dyn FnMut(&str),
    ) -> std::result::Result<ChatReply, Attempt> {
        let fail = |e: ChatError| Attempt::Failed(e.into());
        let url = self.dialect.url(&tok.base_url);
        let url = reqwest::Url::parse(&url).map_err(|e| {
            fail(ChatError::InvalidUrl {
                url: text::line(&url, 200),
                why: e.to_string(),
            })
        })?;
        self.policy
            .check(&url)
            .map_err(|e| fail(ChatError::Refused(e.message.to_string())))?;
        let host = url.host_str().unwrap_or("").to_string();
        let (name, value) = tok.auth_header().map_err(|m| {
            fail(ChatError::AuthScheme {
                provider: self.display().to_string(),
                why: m.to_string(),
            })
        })?;
        let body = self.dialect.request_body(req);
        let mut rb = net
            .client_for(&url)
            .post(url.clone())
            .header(name, value)
            .header("content-type", "application/json")
            .header(
                "accept",
                if req.stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(serde_json::to_vec(&body).unwrap_or_default());
        for (k, v) in &tok.extra_headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let sent = std::time::Instant::now();
        let resp = tokio::time::timeout(self.idle, rb.send())
            .await
            .map_err(|_| format!("{host} did not answer within {} s", self.idle.as_secs_f64()))
            .and_then(|r| r.map_err(|e| network_error(&e, &host)));
        crate::net::log_request(
            "POST",
            &url,
            resp.as_ref()
                .map(|r| r.status().as_u16())
                .map_err(String::as_str),
            sent.elapsed(),
        );
        let resp = resp.map_err(|e| fail(ChatError::Network(e)))?;
        let status = resp.status().as_u16();
        if status == 401 {
            return Err(Attempt::Unauthorized);
        }
        if (300..400).contains(&status) {
            return Err(fail(ChatError::Redirect { host, status }));
        }
        if status >= 400 {
            let body = read_capped(resp, ERROR_BODY_CAP, self.idle)
                .await
                .unwrap_or_default();
            let raw = dialect::error_text(self.dialect, &body);
            return Err(fail(ChatError::Api {
                provider: self.display().to_string(),
                status: Some(status),
                message: self.clean(&raw, tok),
            }));
        }
        if req.stream {
            self.read_stream(resp, &host, tok, on_text)
                .await
                .map_err(Attempt::Failed)
        } else {
            let bytes = read_capped(resp, REPLY_CAP, self.idle)
                .await
                .map_err(|m| fail(ChatError::Network(format!("{m} from {host}"))))?;
            let a = self.dialect.parse_answer(&bytes).map_err(|m| {
                fail(ChatError::BadAnswer(format!(
                    "{}: {}",
                    self.display(),
                    self.clean(&m, tok)
                )))
            })?;
            let mut reply = ChatReply::empty();
            reply.text = text::text(&a.text).into_owned();
            reply.stop_reason = a.stop_reason.map(|r| r.as_str().to_string());
            reply.usage = a.usage;
            reply.model = a.model;
            Ok(reply)
        }
    }

    async fn read_stream(
        &self,
        mut resp: reqwest::Response,
        host: &str,
        tok: &Resolved,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<ChatReply> {
        let mut parser = sse::Parser::default();
        let mut reply = ChatReply::empty();
        // Characters handed on, for messages; the text itself is not kept beyond `keep`.
        let mut chars = 0usize;
        loop {
            let chunk = tokio::time::timeout(self.idle, resp.chunk())
                .await
                .map_err(|_| ChatError::Stalled {
                    host: host.to_string(),
                    secs: self.idle.as_secs_f64(),
                    chars,
                })?
                .map_err(|_| ChatError::BrokeOff {
                    host: host.to_string(),
                    chars,
                })?;
            let ended = chunk.is_none();
            let events = match chunk {
                Some(bytes) => parser.push(&bytes).map_err(ChatError::from)?,
                None => parser
                    .finish()
                    .map_err(ChatError::from)?
                    .into_iter()
                    .collect(),
            };
            for ev in events {
                let parsed = self.dialect.stream_event(&ev).map_err(|m| {
                    ChatError::BadAnswer(format!(
                        "{}: {} ({})",
                        self.display(),
                        m,
                        text::line(&ev.event, 40)
                    ))
                })?;
                for e in parsed {
                    match e {
                        StreamEvent::Start {
                            model,
                            input_tokens,
                        } => {
                            reply.model = text::line(&model, 200);
                            if input_tokens > 0 {
                                reply.usage.input_tokens = input_tokens;
                            }
                        }
                        StreamEvent::Text(t) => {
                            let t = text::text(&t);
                            chars += t.chars().count();
                            on_text(&t);
                            keep(&mut reply, &t, self.keep);
                        }
                        StreamEvent::Stop(r) => {
                            reply.stop_reason = Some(text::line(r.as_str(), 64))
                        }
                        StreamEvent::Usage(u) => reply.usage.merge(u),
                        StreamEvent::Finish { stop, usage } => {
                            if let Some(r) = stop {
                                reply.stop_reason = Some(text::line(r.as_str(), 64));
                            }
                            reply.usage.merge(usage);
                        }
                        StreamEvent::Done => return Ok(reply),
                        StreamEvent::Error(m) => {
                            return Err(ChatError::Api {
                                provider: self.display().to_string(),
                                status: None,
                                message: self.clean(&m, tok),
                            }
                            .into())
                        }
                    }
                }
            }
            if ended {
                // A stream that said why it stopped is complete even without its final marker.
                if reply.stop_reason.is_some() {
                    return Ok(reply);
                }
                return Err(ChatError::Incomplete {
                    host: host.to_string(),
                    chars,
                }
                .into());
            }
        }
    }
}

/// Add `t` to the kept text, up to `cap` bytes (on a character boundary).
fn keep(reply: &mut ChatReply, t: &str, cap: usize) {
    if reply.text_clipped {
        return;
    }
    let room = cap.saturating_sub(reply.text.len());
    if t.len() <= room {
        reply.text.push_str(t);
        return;
    }
    let mut cut = room;
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    reply.text.push_str(&t[..cut]);
    reply.text_clipped = true;
}

fn network_error(e: &reqwest::Error, host: &str) -> String {
    if e.is_connect() {
        format!("cannot connect to {host}")
    } else if e.is_timeout() {
        format!("the request to {host} timed out")
    } else {
        format!("the connection to {host} failed before an answer")
    }
}

/// Read an answer, keeping at most `cap` bytes; a stall longer than `idle` or a broken
/// connection is an error.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
    idle: Duration,
) -> std::result::Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Err(_) => return Err("the answer stalled".into()),
            Ok(Err(_)) => return Err("the answer was cut short".into()),
            Ok(Ok(None)) => return Ok(buf),
            Ok(Ok(Some(c))) => {
                let room = cap.saturating_sub(buf.len());
                buf.extend_from_slice(&c[..c.len().min(room)]);
                if c.len() > room {
                    return Ok(buf);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hermes_plugin_api::auth_scheme;

    fn resolved(scheme: u32) -> Resolved {
        Resolved {
            token: crate::secret::Secret::new("tok-0123456789"),
            expires_at_ms: 0,
            base_url: "http://127.0.0.1:9".into(),
            auth_scheme: scheme,
            extra_headers: vec![],
            entry_id: "abc".into(),
            entry_name: "oauth".into(),
            reason: String::new(),
            refreshed: false,
        }
    }

    #[test]
    fn an_unknown_auth_scheme_is_refused_not_sent_as_bearer() {
        assert_eq!(
            resolved(auth_scheme::BEARER).auth_header().unwrap(),
            ("authorization", "Bearer tok-0123456789".to_string())
        );
        assert_eq!(
            resolved(auth_scheme::X_API_KEY).auth_header().unwrap(),
            ("x-api-key", "tok-0123456789".to_string())
        );
        for scheme in [0, 3, 99, u32::MAX] {
            let e = resolved(scheme).auth_header().unwrap_err();
            assert!(e.contains(&format!("auth scheme {scheme}")), "{e}");
            assert!(!e.contains("tok-0123456789"));
        }
    }

    #[test]
    fn kept_text_is_capped_on_a_character_boundary() {
        let mut r = ChatReply::empty();
        keep(&mut r, "ab", 4);
        keep(&mut r, "cé", 4);
        assert_eq!((r.text.as_str(), r.text_clipped), ("abc", true));
        keep(&mut r, "d", 4);
        assert_eq!(r.text, "abc");
        let mut r = ChatReply::empty();
        keep(&mut r, "printed", 0);
        assert!(r.text.is_empty());
    }
}
