//! Wire dialects: how one inference API shapes a request, a streamed answer, a whole answer and
//! an error, over neutral types ([`ChatRequest`], [`StreamEvent`], [`ChatReply`]).
//!
//! A provider's `api_mode` picks its dialect in one place, [`for_mode`]. Each dialect works in
//! both directions, so that the chat client can *talk* to a provider (build a request, read the
//! answer) and a gateway can *read* a client's request and *write* the answer back in the
//! client's dialect. A new dialect is a host change: one more implementation here.
//!
//! Nothing here prints or sanitises: strings taken from answers are raw, and the caller passes
//! them through `secret::redact` and `text::line`/`text::text` before a person sees them.

use hermes_plugin_api::api_mode;
use serde_json::{json, Map, Value};

use super::sse::Event;

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// A request, in no dialect.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    /// Output cap.
    pub max_tokens: u64,
    /// System prompt.
    pub system: Option<String>,
    /// The conversation so far, ending with the user's turn.
    pub messages: Vec<Message>,
    /// Sampling temperature, when the caller chose one.
    pub temperature: Option<f64>,
    /// Stop sequences.
    pub stop: Vec<String>,
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

impl Usage {
    /// Take the non-zero counts of `later` (a stream may report them in several pieces).
    pub fn merge(&mut self, later: Usage) {
        if later.input_tokens > 0 {
            self.input_tokens = later.input_tokens;
        }
        if later.output_tokens > 0 {
            self.output_tokens = later.output_tokens;
        }
    }
}

/// Why an answer stopped, in no dialect. Shown (and in `--json`) by [`StopReason::as_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The output cap was reached.
    MaxTokens,
    /// A stop sequence was produced.
    StopSequence,
    /// The model asked for a tool.
    ToolUse,
    /// The provider filtered the answer.
    ContentFilter,
    /// Anything else, as the provider named it.
    Other(String),
}

impl StopReason {
    /// The neutral name (Anthropic's spelling for the shared ones).
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::ToolUse => "tool_use",
            StopReason::ContentFilter => "content_filter",
            StopReason::Other(s) => s,
        }
    }
}

/// What a streamed answer says, one piece at a time.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The answer began (model, prompt tokens when known).
    Start {
        /// The model answering.
        model: String,
        /// Prompt tokens, 0 when not told yet.
        input_tokens: u64,
    },
    /// Text to show.
    Text(String),
    /// Why it stopped.
    Stop(StopReason),
    /// Token counts (a later one replaces the non-zero fields of an earlier one).
    Usage(Usage),
    /// The stop reason and the final token counts together, as a gateway writes them for its
    /// client once the provider's stream has said both (readers report them apart, as
    /// [`StreamEvent::Stop`] and [`StreamEvent::Usage`]).
    Finish {
        /// Why it stopped, if the provider said.
        stop: Option<StopReason>,
        /// The final counts.
        usage: Usage,
    },
    /// The answer is complete.
    Done,
    /// The provider reported an error inside the stream (raw message).
    Error(String),
}

/// A whole answer, in no dialect.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    pub stop_reason: Option<StopReason>,
    pub usage: Usage,
    /// The model that answered.
    pub model: String,
}

/// One inference API's wire format.
pub trait Dialect: Send + Sync {
    /// The `api_mode` it speaks.
    fn api_mode(&self) -> &'static str;
    /// What is appended to a provider's `Runtime.base_url` (documented for plugin authors).
    fn path(&self) -> &'static str;
    /// The request URL under `base_url`.
    fn url(&self, base_url: &str) -> String {
        format!("{}{}", base_url.trim_end_matches('/'), self.path())
    }
    fn request_body(&self, req: &ChatRequest) -> Value;
    /// Read a request body written in this dialect (a gateway reading its client).
    fn parse_request(&self, body: &[u8]) -> Result<ChatRequest, String>;
    /// Turn one SSE event of a streamed answer into neutral events.
    fn stream_event(&self, ev: &Event) -> Result<Vec<StreamEvent>, String>;
    /// Write neutral events as this dialect's SSE bytes (a gateway answering its client).
    fn write_stream_event(&self, ev: &StreamEvent) -> String;
    /// Read a whole (non-streamed) answer.
    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String>;
    /// Write a whole answer in this dialect.
    fn write_answer(&self, answer: &Answer) -> Value;
    /// The message of an error body (raw, possibly long), or `None` when the body is not this
    /// dialect's error shape.
    fn error_message(&self, body: &[u8]) -> Option<String>;
}

/// The dialect of `mode`, or `None` when this hermes cannot chat in it. The only place an api
/// mode is turned into behaviour.
pub fn for_mode(mode: &str) -> Option<&'static dyn Dialect> {
    match mode {
        api_mode::ANTHROPIC_MESSAGES => Some(&AnthropicMessages),
        api_mode::CHAT_COMPLETIONS => Some(&ChatCompletions),
        _ => None,
    }
}

/// The api modes hermes can chat in.
pub fn spoken() -> Vec<&'static str> {
    api_mode::ALL
        .iter()
        .copied()
        .filter(|m| for_mode(m).is_some())
        .collect()
}

/// The message of an error body in whichever shape it comes, else the body itself (raw).
pub fn error_text(dialect: &dyn Dialect, body: &[u8]) -> String {
    if let Some(m) = dialect.error_message(body) {
        return m;
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "no details".into()
    } else {
        text.into_owned()
    }
}

/// Text of a `content` that is a string or a list of blocks (`{"type":"text","text":…}`).
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect(),
        ),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the body is not a JSON object".into()),
        Err(_) => Err("the body is not valid JSON".into()),
    }
}

fn parse_messages(list: &Value, allow_system: bool) -> Result<(Vec<Message>, Vec<String>), String> {
    let list = list.as_array().ok_or("messages must be a list")?;
    let mut messages = Vec::new();
    let mut system = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        let text =
            content_text(&m["content"]).ok_or(format!("messages.{i}.content is not text"))?;
        match role {
            "user" | "assistant" => messages.push(Message {
                role: role.into(),
                content: text,
            }),
            "system" | "developer" if allow_system => system.push(text),
            _ => return Err(format!("messages.{i}.role {role:?} is not supported")),
        }
    }
    Ok((messages, system))
}

fn stop_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// The Anthropic Messages API: `POST {base}/v1/messages`, `system` beside the messages, SSE
/// with named events (`message_start`, `content_block_delta`, `message_delta`,
/// `message_stop`, `error`), errors as `{"type":"error","error":{"type","message"}}`.
pub struct AnthropicMessages;

impl AnthropicMessages {
    fn stop(reason: &str) -> StopReason {
        match reason {
            "end_turn" => StopReason::EndTurn,
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            "tool_use" => StopReason::ToolUse,
            "refusal" => StopReason::ContentFilter,
            other => StopReason::Other(other.into()),
        }
    }
}

fn sse_named(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

impl Dialect for AnthropicMessages {
    fn api_mode(&self) -> &'static str {
        api_mode::ANTHROPIC_MESSAGES
    }
    fn path(&self) -> &'static str {
        "/v1/messages"
    }
    fn request_body(&self, req: &ChatRequest) -> Value {
        let mut body = json!({
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": req.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
        });
        if let Some(s) = &req.system {
            body["system"] = json!(s);
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if !req.stop.is_empty() {
            body["stop_sequences"] = json!(req.stop);
        }
        if req.stream {
            body["stream"] = json!(true);
        }
        body
    }
    fn parse_request(&self, body: &[u8]) -> Result<ChatRequest, String> {
        let o = json_object(body)?;
        let (messages, _) = parse_messages(o.get("messages").unwrap_or(&Value::Null), false)?;
        let system = match o.get("system") {
            None | Some(Value::Null) => None,
            Some(s) => Some(content_text(s).ok_or("system is not text")?),
        };
        Ok(ChatRequest {
            model: o
                .get("model")
                .and_then(Value::as_str)
                .ok_or("model is missing")?
                .into(),
            max_tokens: o
                .get("max_tokens")
                .and_then(Value::as_u64)
                .ok_or("max_tokens is missing")?,
            system,
            messages,
            temperature: o.get("temperature").and_then(Value::as_f64),
            stop: o.get("stop_sequences").map(stop_list).unwrap_or_default(),
            stream: o.get("stream").and_then(Value::as_bool).unwrap_or(false),
        })
    }
    fn stream_event(&self, ev: &Event) -> Result<Vec<StreamEvent>, String> {
        let data: Value = match serde_json::from_str(&ev.data) {
            Ok(v) => v,
            Err(_) if ev.event == "ping" => return Ok(Vec::new()),
            Err(_) => return Err("a malformed event in the stream".into()),
        };
        Ok(match ev.event.as_str() {
            "message_start" => vec![StreamEvent::Start {
                model: data["message"]["model"].as_str().unwrap_or("").into(),
                input_tokens: data["message"]["usage"]["input_tokens"]
                    .as_u64()
                    .unwrap_or(0),
            }],
            "content_block_delta" if data["delta"]["type"] == "text_delta" => data["delta"]["text"]
                .as_str()
                .map(|t| vec![StreamEvent::Text(t.into())])
                .unwrap_or_default(),
            "message_delta" => {
                let mut out = Vec::new();
                if let Some(r) = data["delta"]["stop_reason"].as_str() {
                    out.push(StreamEvent::Stop(Self::stop(r)));
                }
                if let Some(n) = data["usage"]["output_tokens"].as_u64() {
                    out.push(StreamEvent::Usage(Usage {
                        input_tokens: data["usage"]["input_tokens"].as_u64().unwrap_or(0),
                        output_tokens: n,
                    }));
                }
                out
            }
            "message_stop" => vec![StreamEvent::Done],
            "error" => vec![StreamEvent::Error(error_text(self, ev.data.as_bytes()))],
            _ => Vec::new(),
        })
    }
    fn write_stream_event(&self, ev: &StreamEvent) -> String {
        match ev {
            StreamEvent::Start {
                model,
                input_tokens,
            } => {
                let mut s = sse_named(
                    "message_start",
                    &json!({"type": "message_start", "message": {
                        "type": "message", "role": "assistant", "model": model, "content": [],
                        "stop_reason": null, "usage": {"input_tokens": input_tokens, "output_tokens": 0}}}),
                );
                s.push_str(&sse_named(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ));
                s
            }
            StreamEvent::Text(t) => sse_named(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}),
            ),
            StreamEvent::Stop(r) => sse_named(
                "message_delta",
                &json!({"type": "message_delta", "delta": {"stop_reason": r.as_str(), "stop_sequence": null}}),
            ),
            StreamEvent::Usage(u) => sse_named(
                "message_delta",
                &json!({"type": "message_delta", "delta": {}, "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}}),
            ),
            StreamEvent::Finish { stop, usage } => sse_named(
                "message_delta",
                &json!({"type": "message_delta",
                        "delta": {"stop_reason": stop.as_ref().map(StopReason::as_str), "stop_sequence": null},
                        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}),
            ),
            StreamEvent::Done => {
                let mut s = sse_named(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                );
                s.push_str(&sse_named("message_stop", &json!({"type": "message_stop"})));
                s
            }
            StreamEvent::Error(m) => sse_named(
                "error",
                &json!({"type": "error", "error": {"type": "api_error", "message": m}}),
            ),
        }
    }
    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|_| "the answer is not valid JSON".to_string())?;
        if v["type"] == "error" {
            return Err(format!("API error: {}", error_text(self, body)));
        }
        let Some(content) = v["content"].as_array() else {
            return Err("the answer has no content".into());
        };
        Ok(Answer {
            text: content
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect(),
            stop_reason: v["stop_reason"].as_str().map(Self::stop),
            usage: Usage {
                input_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0),
                output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
            },
            model: v["model"].as_str().unwrap_or("").into(),
        })
    }
    fn write_answer(&self, a: &Answer) -> Value {
        json!({
            "type": "message", "role": "assistant", "model": a.model,
            "content": [{"type": "text", "text": a.text}],
            "stop_reason": a.stop_reason.as_ref().map(StopReason::as_str),
            "usage": {"input_tokens": a.usage.input_tokens, "output_tokens": a.usage.output_tokens},
        })
    }
    fn error_message(&self, body: &[u8]) -> Option<String> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let e = &v["error"];
        if let (Some(t), Some(m)) = (e["type"].as_str(), e["message"].as_str()) {
            return Some(format!("{t}: {m}"));
        }
        e.as_str()
            .or_else(|| e["message"].as_str())
            .or_else(|| v["message"].as_str())
            .map(String::from)
    }
}

/// The OpenAI chat completions API: `POST {base}/chat/completions` (the base URL includes
/// `/v1`, as in the OpenAI convention), the system prompt as the first message, data-only SSE
/// with `choices[0].delta.content`, `finish_reason`, a usage chunk (asked for with
/// `stream_options.include_usage`) and `data: [DONE]`; errors as
/// `{"error":{"message","type","code"}}`.
pub struct ChatCompletions;

impl ChatCompletions {
    fn stop(reason: &str) -> StopReason {
        match reason {
            "stop" => StopReason::EndTurn,
            "length" => StopReason::MaxTokens,
            "tool_calls" | "function_call" => StopReason::ToolUse,
            "content_filter" => StopReason::ContentFilter,
            other => StopReason::Other(other.into()),
        }
    }
    fn finish(reason: &StopReason) -> &str {
        match reason {
            StopReason::EndTurn | StopReason::StopSequence => "stop",
            StopReason::MaxTokens => "length",
            StopReason::ToolUse => "tool_calls",
            StopReason::ContentFilter => "content_filter",
            StopReason::Other(s) => s,
        }
    }
    fn usage(u: &Value) -> Option<Usage> {
        u.is_object().then(|| Usage {
            input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
            output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
        })
    }
}

fn sse_data(data: &Value) -> String {
    format!("data: {data}\n\n")
}

impl Dialect for ChatCompletions {
    fn api_mode(&self) -> &'static str {
        api_mode::CHAT_COMPLETIONS
    }
    fn path(&self) -> &'static str {
        "/chat/completions"
    }
    fn request_body(&self, req: &ChatRequest) -> Value {
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(s) = &req.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.extend(
            req.messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content})),
        );
        let mut body = json!({
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": messages,
        });
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        if req.stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }
    fn parse_request(&self, body: &[u8]) -> Result<ChatRequest, String> {
        let o = json_object(body)?;
        let (messages, system) = parse_messages(o.get("messages").unwrap_or(&Value::Null), true)?;
        let max_tokens = o
            .get("max_completion_tokens")
            .or_else(|| o.get("max_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(4096);
        Ok(ChatRequest {
            model: o
                .get("model")
                .and_then(Value::as_str)
                .ok_or("model is missing")?
                .into(),
            max_tokens,
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            temperature: o.get("temperature").and_then(Value::as_f64),
            stop: o.get("stop").map(stop_list).unwrap_or_default(),
            stream: o.get("stream").and_then(Value::as_bool).unwrap_or(false),
        })
    }
    fn stream_event(&self, ev: &Event) -> Result<Vec<StreamEvent>, String> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            return Ok(vec![StreamEvent::Done]);
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|_| "a malformed chunk in the stream".to_string())?;
        if !v["error"].is_null() {
            return Ok(vec![StreamEvent::Error(error_text(self, data.as_bytes()))]);
        }
        let mut out = Vec::new();
        if let Some(model) = v["model"].as_str().filter(|m| !m.is_empty()) {
            out.push(StreamEvent::Start {
                model: model.into(),
                input_tokens: 0,
            });
        }
        let choice = &v["choices"][0];
        if let Some(t) = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            out.push(StreamEvent::Text(t.into()));
        }
        if let Some(r) = choice["finish_reason"].as_str() {
            out.push(StreamEvent::Stop(Self::stop(r)));
        }
        if let Some(u) = Self::usage(&v["usage"]) {
            out.push(StreamEvent::Usage(u));
        }
        Ok(out)
    }
    fn write_stream_event(&self, ev: &StreamEvent) -> String {
        let chunk = |choice: Value| {
            sse_data(&json!({"object": "chat.completion.chunk", "choices": [choice]}))
        };
        match ev {
            StreamEvent::Start { model, .. } => sse_data(&json!({
                "object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}],
            })),
            StreamEvent::Text(t) => {
                chunk(json!({"index": 0, "delta": {"content": t}, "finish_reason": null}))
            }
            StreamEvent::Stop(r) => {
                chunk(json!({"index": 0, "delta": {}, "finish_reason": Self::finish(r)}))
            }
            StreamEvent::Usage(u) => sse_data(&json!({
                "object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
                          "total_tokens": u.input_tokens + u.output_tokens},
            })),
            StreamEvent::Finish { stop, usage } => {
                let mut s = match stop {
                    Some(r) => self.write_stream_event(&StreamEvent::Stop(r.clone())),
                    None => String::new(),
                };
                s.push_str(&self.write_stream_event(&StreamEvent::Usage(*usage)));
                s
            }
            StreamEvent::Done => "data: [DONE]\n\n".into(),
            StreamEvent::Error(m) => {
                sse_data(&json!({"error": {"message": m, "type": "api_error", "code": null}}))
            }
        }
    }
    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|_| "the answer is not valid JSON".to_string())?;
        if !v["error"].is_null() {
            return Err(format!("API error: {}", error_text(self, body)));
        }
        let Some(choice) = v["choices"].as_array().and_then(|c| c.first()) else {
            return Err("the answer has no choices".into());
        };
        let text = content_text(&choice["message"]["content"])
            .ok_or("the answer's message has no text")?;
        Ok(Answer {
            text,
            stop_reason: choice["finish_reason"].as_str().map(Self::stop),
            usage: Self::usage(&v["usage"]).unwrap_or_default(),
            model: v["model"].as_str().unwrap_or("").into(),
        })
    }
    fn write_answer(&self, a: &Answer) -> Value {
        json!({
            "object": "chat.completion", "model": a.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": a.text},
                         "finish_reason": a.stop_reason.as_ref().map(Self::finish)}],
            "usage": {"prompt_tokens": a.usage.input_tokens, "completion_tokens": a.usage.output_tokens,
                      "total_tokens": a.usage.input_tokens + a.usage.output_tokens},
        })
    }
    fn error_message(&self, body: &[u8]) -> Option<String> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let e = &v["error"];
        if let Some(m) = e["message"].as_str() {
            let kind = e["type"]
                .as_str()
                .or_else(|| e["code"].as_str())
                .filter(|k| !k.is_empty());
            return Some(match kind {
                Some(k) => format!("{k}: {m}"),
                None => m.to_string(),
            });
        }
        e.as_str()
            .or_else(|| v["message"].as_str())
            .or_else(|| v["detail"].as_str())
            .map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stream: bool) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            max_tokens: 7,
            system: Some("be brief".into()),
            messages: vec![
                Message {
                    role: "user".into(),
                    content: "hi".into(),
                },
                Message {
                    role: "assistant".into(),
                    content: "hello".into(),
                },
                Message {
                    role: "user".into(),
                    content: "again".into(),
                },
            ],
            temperature: Some(0.5),
            stop: vec!["END".into()],
            stream,
        }
    }

    fn events(d: &dyn Dialect, stream: &str) -> Vec<StreamEvent> {
        let mut p = super::super::sse::Parser::default();
        let mut evs = p.push(stream.as_bytes()).unwrap();
        evs.extend(p.finish().unwrap());
        evs.iter()
            .flat_map(|e| d.stream_event(e).unwrap())
            .collect()
    }

    #[test]
    fn the_api_mode_picks_the_dialect() {
        assert_eq!(
            for_mode("chat_completions").unwrap().api_mode(),
            "chat_completions"
        );
        assert_eq!(
            for_mode("anthropic_messages")
                .unwrap()
                .url("http://h/anthropic/"),
            "http://h/anthropic/v1/messages"
        );
        assert_eq!(
            for_mode("chat_completions").unwrap().url("http://h/v1"),
            "http://h/v1/chat/completions"
        );
        assert!(for_mode("responses").is_none());
        assert_eq!(spoken(), api_mode::ALL);
    }

    #[test]
    fn chat_completions_puts_the_system_prompt_first_and_asks_for_usage() {
        let b = ChatCompletions.request_body(&request(true));
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(b["messages"][1]["content"], "hi");
        assert_eq!(b["messages"].as_array().unwrap().len(), 4);
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["stop"], json!(["END"]));
        let b = ChatCompletions.request_body(&request(false));
        assert!(b.get("stream").is_none() && b.get("stream_options").is_none());
    }

    #[test]
    fn each_dialect_reads_back_the_request_it_writes() {
        for d in [&AnthropicMessages as &dyn Dialect, &ChatCompletions] {
            for stream in [true, false] {
                let req = request(stream);
                let body = serde_json::to_vec(&d.request_body(&req)).unwrap();
                assert_eq!(d.parse_request(&body).unwrap(), req, "{}", d.api_mode());
            }
            assert!(d.parse_request(b"[1]").is_err());
            assert!(d.parse_request(b"{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}").is_err());
        }
    }

    #[test]
    fn a_chat_completions_stream_gives_text_stop_usage_and_done() {
        let stream = "data: {\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n\
            : keep-alive\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n\
            data: [DONE]\n\n";
        assert_eq!(
            events(&ChatCompletions, stream),
            vec![
                StreamEvent::Start {
                    model: "gpt-x".into(),
                    input_tokens: 0
                },
                StreamEvent::Text("Hel".into()),
                StreamEvent::Text("lo".into()),
                StreamEvent::Stop(StopReason::EndTurn),
                StreamEvent::Usage(Usage {
                    input_tokens: 3,
                    output_tokens: 2
                }),
                StreamEvent::Done,
            ]
        );
        let err = events(
            &ChatCompletions,
            "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"code\":null}}\n\n",
        );
        assert_eq!(
            err,
            vec![StreamEvent::Error("server_error: Overloaded".into())]
        );
        assert!(ChatCompletions
            .stream_event(&Event {
                event: "message".into(),
                data: "{not json".into()
            })
            .is_err());
    }

    #[test]
    fn each_dialect_reads_back_the_stream_it_writes() {
        let sent = [
            StreamEvent::Start {
                model: "m".into(),
                input_tokens: 4,
            },
            StreamEvent::Text("a\nb".into()),
            StreamEvent::Stop(StopReason::MaxTokens),
            StreamEvent::Usage(Usage {
                input_tokens: 4,
                output_tokens: 9,
            }),
            StreamEvent::Done,
        ];
        for d in [&AnthropicMessages as &dyn Dialect, &ChatCompletions] {
            let wire: String = sent.iter().map(|e| d.write_stream_event(e)).collect();
            let back = events(d, &wire);
            let texts: Vec<_> = back
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        StreamEvent::Text(_) | StreamEvent::Stop(_) | StreamEvent::Done
                    )
                })
                .cloned()
                .collect();
            assert_eq!(
                texts,
                sent[1..3]
                    .iter()
                    .cloned()
                    .chain([StreamEvent::Done])
                    .collect::<Vec<_>>(),
                "{}",
                d.api_mode()
            );
            assert!(
                back.contains(&StreamEvent::Usage(Usage {
                    input_tokens: 4,
                    output_tokens: 9
                })),
                "{}: {back:?}",
                d.api_mode()
            );
            let answer = Answer {
                text: "t".into(),
                stop_reason: Some(StopReason::EndTurn),
                usage: Usage {
                    input_tokens: 1,
                    output_tokens: 2,
                },
                model: "m".into(),
            };
            let body = serde_json::to_vec(&d.write_answer(&answer)).unwrap();
            assert_eq!(d.parse_answer(&body).unwrap(), answer, "{}", d.api_mode());
        }
    }

    #[test]
    fn whole_answers_parse_and_bad_ones_are_errors() {
        let r = ChatCompletions.parse_answer(br#"{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi!"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#).unwrap();
        assert_eq!((r.text.as_str(), r.usage.output_tokens), ("hi!", 2));
        assert_eq!(r.stop_reason, Some(StopReason::MaxTokens));
        let r = AnthropicMessages.parse_answer(br#"{"type":"message","model":"m","content":[{"type":"text","text":"hi"},{"type":"text","text":"!"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#).unwrap();
        assert_eq!((r.text.as_str(), r.usage.output_tokens), ("hi!", 2));
        for d in [&AnthropicMessages as &dyn Dialect, &ChatCompletions] {
            for bad in [
                &b"[1,2]"[..],
                b"{\"content\": 5, \"choices\": 5}",
                b"\xff",
                b"",
            ] {
                assert!(d.parse_answer(bad).is_err(), "{}: {bad:?}", d.api_mode());
            }
        }
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_text(
                &AnthropicMessages,
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "overloaded_error: Overloaded"
        );
        assert_eq!(
            error_text(&ChatCompletions, br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#),
            "invalid_request_error: Incorrect API key provided"
        );
        assert_eq!(error_text(&ChatCompletions, br#"{"error":"bad"}"#), "bad");
        assert_eq!(
            error_text(&ChatCompletions, b"<html>502</html>"),
            "<html>502</html>"
        );
        assert_eq!(error_text(&AnthropicMessages, b"  "), "no details");
    }
}
