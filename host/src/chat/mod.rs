//! The chat client: Anthropic Messages requests with a token taken from the host's token
//! source **per request**, and one refresh-and-retry on a 401.
//!
//! The api mode always comes from the provider's descriptor; nothing in configuration can send
//! a provider's credentials to another API shape. Requests go only to the provider's inference
//! base URL, under the same https and allow-list rules as plugin requests, and never follow
//! redirects (a bearer token must not travel to a host it was not meant for).

pub mod sse;

use std::sync::Arc;
use std::time::Duration;

use hermes_plugin_api::api_mode;
use serde_json::{json, Value};

use crate::auth::{Resolved, TokenSource};
use crate::error::{Error, Result};
use crate::services::{Net, Policy, ERROR_BODY_CAP};

/// Longest wait for the next bytes of a streamed answer.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest non-streamed answer accepted.
pub const REPLY_CAP: usize = 8 * 1024 * 1024;

/// One turn of the conversation.
#[derive(Clone, Debug)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
}

/// A request.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// Model id.
    pub model: String,
    /// Output cap.
    pub max_tokens: u64,
    /// System prompt.
    pub system: Option<String>,
    /// The conversation so far, ending with the user's turn.
    pub messages: Vec<Message>,
    /// Stream the answer (SSE).
    pub stream: bool,
}

/// Token counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
}

/// An answer.
#[derive(Clone, Debug)]
pub struct ChatReply {
    /// The text.
    pub text: String,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Token counts.
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

/// Why one attempt failed.
enum Attempt {
    Unauthorized,
    Failed(Error),
}

/// The chat client of one provider login.
pub struct ChatClient {
    source: Arc<TokenSource>,
    policy: Policy,
    ctrl_c: bool,
}

impl ChatClient {
    /// A client over `source`; refuses providers whose api mode it does not speak.
    pub fn new(source: Arc<TokenSource>) -> Result<ChatClient> {
        let d = &source.provider().desc;
        if d.api_mode != api_mode::ANTHROPIC_MESSAGES {
            return Err(Error::msg(format!(
                "{} uses the {} API, which hermes chat does not speak yet (it speaks {})",
                d.display_name,
                d.api_mode,
                api_mode::ANTHROPIC_MESSAGES
            )));
        }
        let policy = Policy {
            provider: d.id.clone(),
            allowed_hosts: d.allowed_hosts.clone(),
        };
        Ok(ChatClient {
            source,
            policy,
            ctrl_c: false,
        })
    }

    /// Stop cleanly on Ctrl-C (for the command line).
    pub fn stop_on_ctrl_c(mut self) -> Self {
        self.ctrl_c = true;
        self
    }

    fn display(&self) -> &str {
        &self.source.provider().desc.display_name
    }

    /// Send one request; `on_text` receives streamed text as it arrives. Blocks the calling
    /// thread (which must not be inside an async runtime).
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
                        _ = tokio::signal::ctrl_c() => Err(Attempt::Failed(Error::interrupted("stopped with Ctrl-C"))),
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
                    return Err(Error::msg(format!(
                        "{} rejected the access token again after a refresh (401)",
                        d.display_name
                    ))
                    .with_help(format!("sign in again: `{}`", d.login_command())));
                }
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
    }

    async fn send_once(
        &self,
        net: &Net,
        tok: &Resolved,
        req: &ChatRequest,
        on_text: &mut dyn FnMut(&str),
    ) -> std::result::Result<ChatReply, Attempt> {
        let fail = |m: String| Attempt::Failed(Error::msg(m));
        let url = format!("{}/v1/messages", tok.base_url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&url)
            .map_err(|e| fail(format!("the inference URL {url:?} is not valid: {e}")))?;
        self.policy
            .check(&url)
            .map_err(|e| fail(e.message.to_string()))?;
        let host = url.host_str().unwrap_or("").to_string();
        let mut body = json!({
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": req.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
        });
        if let Some(s) = &req.system {
            body["system"] = json!(s);
        }
        if req.stream {
            body["stream"] = json!(true);
        }
        let (name, value) = tok.auth_header();
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
        let resp = tokio::time::timeout(STREAM_IDLE_TIMEOUT, rb.send())
            .await
            .map_err(|_| {
                fail(format!(
                    "{host} did not answer within {} s",
                    STREAM_IDLE_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| fail(network_error(&e, &host)))?;
        let status = resp.status().as_u16();
        if status == 401 {
            return Err(Attempt::Unauthorized);
        }
        if (300..400).contains(&status) {
            return Err(fail(format!("{host} answered {status} (a redirect); hermes does not follow redirects with credentials")));
        }
        if status >= 400 {
            let body = read_capped(resp, ERROR_BODY_CAP).await.unwrap_or_default();
            return Err(fail(format!(
                "{} API error {status}: {}",
                self.display(),
                api_error_line(&body)
            )));
        }
        if req.stream {
            self.read_stream(resp, &host, on_text)
                .await
                .map_err(Attempt::Failed)
        } else {
            let bytes = read_capped(resp, REPLY_CAP)
                .await
                .map_err(|m| fail(format!("{m} from {host}")))?;
            parse_message(&bytes).map_err(|m| fail(format!("{}: {m}", self.display())))
        }
    }

    async fn read_stream(
        &self,
        mut resp: reqwest::Response,
        host: &str,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<ChatReply> {
        let mut parser = sse::Parser::default();
        let mut reply = ChatReply {
            text: String::new(),
            stop_reason: None,
            usage: Usage::default(),
            model: String::new(),
            retried_after_401: false,
            account: String::new(),
            account_reason: String::new(),
        };
        loop {
            let chunk = tokio::time::timeout(STREAM_IDLE_TIMEOUT, resp.chunk())
                .await
                .map_err(|_| {
                    Error::msg(format!(
                        "the stream from {host} stalled for {} s",
                        STREAM_IDLE_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(|_| {
                    Error::msg(format!(
                        "the stream from {host} broke off after {} characters",
                        reply.text.chars().count()
                    ))
                })?;
            let ended = chunk.is_none();
            let events = match chunk {
                Some(bytes) => parser.push(&bytes).map_err(|e| Error::msg(e.to_string()))?,
                None => parser
                    .finish()
                    .map_err(|e| Error::msg(e.to_string()))?
                    .into_iter()
                    .collect(),
            };
            for ev in events {
                if self.apply_event(&ev, &mut reply, on_text)? {
                    return Ok(reply);
                }
            }
            if ended {
                return Err(Error::msg(format!(
                    "the stream from {host} ended before the message was complete ({} characters received)",
                    reply.text.chars().count()
                )));
            }
        }
    }

    /// Apply one event; `Ok(true)` when the message is complete.
    fn apply_event(
        &self,
        ev: &sse::Event,
        reply: &mut ChatReply,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<bool> {
        let data: Value = match serde_json::from_str(&ev.data) {
            Ok(v) => v,
            Err(_) if ev.event == "ping" => return Ok(false),
            Err(_) => {
                return Err(Error::msg(format!(
                    "{}: a malformed {} event in the stream",
                    self.display(),
                    ev.event
                )))
            }
        };
        match ev.event.as_str() {
            "message_start" => {
                reply.model = data["message"]["model"].as_str().unwrap_or("").to_string();
                reply.usage.input_tokens = data["message"]["usage"]["input_tokens"]
                    .as_u64()
                    .unwrap_or(0);
            }
            "content_block_delta" if data["delta"]["type"] == "text_delta" => {
                if let Some(t) = data["delta"]["text"].as_str() {
                    on_text(t);
                    reply.text.push_str(t);
                }
            }
            "message_delta" => {
                if let Some(r) = data["delta"]["stop_reason"].as_str() {
                    reply.stop_reason = Some(r.to_string());
                }
                if let Some(n) = data["usage"]["output_tokens"].as_u64() {
                    reply.usage.output_tokens = n;
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                return Err(Error::msg(format!(
                    "{} API error: {}",
                    self.display(),
                    api_error_line(ev.data.as_bytes())
                )));
            }
            _ => {}
        }
        Ok(false)
    }
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

async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(STREAM_IDLE_TIMEOUT, resp.chunk()).await {
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

/// One line from an Anthropic-style error body (`{"type":"error","error":{"type","message"}}`),
/// or the start of whatever the body was.
pub fn api_error_line(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let e = &v["error"];
        if let (Some(t), Some(m)) = (e["type"].as_str(), e["message"].as_str()) {
            return one_line(&format!("{t}: {m}"));
        }
        if let Some(m) = e.as_str().or_else(|| v["message"].as_str()) {
            return one_line(m);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "no details".into()
    } else {
        one_line(&text)
    }
}

fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 300 {
        format!("{}…", flat.chars().take(300).collect::<String>())
    } else {
        flat
    }
}

/// Parse a non-streamed Messages answer.
pub fn parse_message(bytes: &[u8]) -> std::result::Result<ChatReply, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|_| "the answer is not valid JSON".to_string())?;
    if v["type"] == "error" {
        return Err(format!("API error: {}", api_error_line(bytes)));
    }
    let Some(content) = v["content"].as_array() else {
        return Err("the answer has no content".into());
    };
    let text: String = content
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    Ok(ChatReply {
        text,
        stop_reason: v["stop_reason"].as_str().map(String::from),
        usage: Usage {
            input_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0),
            output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
        },
        model: v["model"].as_str().unwrap_or("").to_string(),
        retried_after_401: false,
        account: String::new(),
        account_reason: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_one_line() {
        assert_eq!(
            api_error_line(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "overloaded_error: Overloaded"
        );
        assert_eq!(
            api_error_line(b"<html>\n<body>502 Bad Gateway</body>\n</html>"),
            "<html> <body>502 Bad Gateway</body> </html>"
        );
        assert_eq!(api_error_line(b""), "no details");
        assert!(
            api_error_line("x".repeat(10_000).as_bytes())
                .chars()
                .count()
                <= 301
        );
    }

    #[test]
    fn non_streamed_answers_parse_and_bad_ones_are_errors() {
        let r = parse_message(br#"{"type":"message","model":"m","content":[{"type":"text","text":"hi"},{"type":"text","text":"!"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#).unwrap();
        assert_eq!((r.text.as_str(), r.usage.output_tokens), ("hi!", 2));
        assert!(parse_message(b"[1,2]").is_err());
        assert!(parse_message(b"{\"content\": 5}").is_err());
        assert!(parse_message(b"\xff").is_err());
    }
}
