//! Between dialects: a client speaking one API and a provider speaking the other. The request
//! is read in the client's dialect and written in the provider's; the answer (whole, streamed or
//! an error) comes back the other way. What cannot be carried across (tool calls, images,
//! extended thinking, several choices, structured output) is refused with a 400 naming it,
//! never dropped silently.

use serde_json::{json, Value};

use crate::chat::dialect::{Answer, Dialect, StopReason, StreamEvent, Usage};
use crate::chat::sse;

/// The first feature of `request` (a body in `client`'s dialect) that has no counterpart in the
/// other dialect.
pub fn untranslatable(client: &dyn Dialect, request: &Value) -> Option<String> {
    let anthropic = client.api_mode() == hermes_plugin_api::api_mode::ANTHROPIC_MESSAGES;
    let fields: &[(&str, &str)] = if anthropic {
        &[
            ("tools", "tool use"),
            ("tool_choice", "tool use"),
            ("thinking", "extended thinking"),
        ]
    } else {
        &[
            ("tools", "tool calls"),
            ("tool_choice", "tool calls"),
            ("functions", "function calls"),
            ("function_call", "function calls"),
            ("logprobs", "log probabilities"),
            ("top_logprobs", "log probabilities"),
            ("audio", "audio output"),
            ("modalities", "audio output"),
            ("prediction", "predicted outputs"),
        ]
    };
    for (field, feature) in fields {
        if request
            .get(field)
            .is_some_and(|v| !v.is_null() && v != &json!(false))
        {
            return Some(format!("{feature} (`{field}`)"));
        }
    }
    if !anthropic {
        if request
            .get("n")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 1)
        {
            return Some("more than one choice (`n`)".into());
        }
        let format = request["response_format"]["type"].as_str();
        if format.is_some_and(|t| t != "text") {
            return Some("structured output (`response_format`)".into());
        }
    }
    let text_only = |content: &Value| match content {
        Value::String(_) | Value::Null => None,
        Value::Array(parts) => parts
            .iter()
            .map(|p| p["type"].as_str().unwrap_or("unknown"))
            .find(|t| *t != "text")
            .map(String::from),
        _ => Some("non-text".into()),
    };
    if let Some(kind) = request.get("system").and_then(&text_only) {
        return Some(format!("{kind} content in `system`"));
    }
    for (i, m) in request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let role = m["role"].as_str().unwrap_or("");
        if matches!(role, "tool" | "function") {
            return Some(format!("tool results (`messages.{i}.role` {role:?})"));
        }
        if m.get("tool_calls").is_some_and(|v| !v.is_null())
            || m.get("function_call").is_some_and(|v| !v.is_null())
        {
            return Some(format!("tool calls (`messages.{i}.tool_calls`)"));
        }
        if let Some(kind) = text_only(&m["content"]) {
            return Some(format!("{kind} content (`messages.{i}.content`)"));
        }
    }
    None
}

/// A whole answer in the provider's dialect, rewritten in the client's.
pub fn answer(provider: &dyn Dialect, client: &dyn Dialect, body: &[u8]) -> Result<Value, String> {
    let a: Answer = provider.parse_answer(body)?;
    let mut v = client.write_answer(&a);
    if let Value::Object(o) = &mut v {
        let anthropic = client.api_mode() == hermes_plugin_api::api_mode::ANTHROPIC_MESSAGES;
        let prefix = if anthropic { "msg_" } else { "chatcmpl-" };
        let id = crate::secret::random_hex(12).map_err(|e| e.message().to_string())?;
        o.entry("id")
            .or_insert_with(|| json!(format!("{prefix}{id}")));
        if !anthropic {
            o.entry("created")
                .or_insert_with(|| json!(crate::timefmt::now_ms() / 1000));
        }
    }
    Ok(v)
}

/// A streamed answer in the provider's dialect, rewritten in the client's as it arrives.
pub struct Stream {
    provider: &'static dyn Dialect,
    client: &'static dyn Dialect,
    parser: sse::Parser,
    model: String,
    started: bool,
    stop: Option<StopReason>,
    usage: Usage,
    done: bool,
}

impl Stream {
    /// A translator answering for `model`.
    pub fn new(
        provider: &'static dyn Dialect,
        client: &'static dyn Dialect,
        model: &str,
    ) -> Stream {
        Stream {
            provider,
            client,
            parser: sse::Parser::default(),
            model: model.to_string(),
            started: false,
            stop: None,
            usage: Usage::default(),
            done: false,
        }
    }

    /// Whether the answer is complete (nothing more will be written).
    pub fn done(&self) -> bool {
        self.done
    }

    /// The client's bytes for the provider's `bytes`. `redact` cleans error messages.
    pub fn push(&mut self, bytes: &[u8], redact: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        match self.parser.push(bytes) {
            Ok(events) => {
                for ev in events {
                    self.event(&ev, &mut out, redact);
                }
            }
            Err(e) => self.fail(&e.to_string(), &mut out),
        }
        out
    }

    /// The provider's stream ended: flush, and end the client's stream properly if the provider
    /// did not.
    pub fn finish(&mut self, redact: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        if let Ok(Some(ev)) = self.parser.finish() {
            self.event(&ev, &mut out, redact);
        }
        if !self.done {
            if self.stop.is_some() {
                self.complete(&mut out);
            } else {
                self.fail(
                    "the provider's stream ended before the answer was complete",
                    &mut out,
                );
            }
        }
        out
    }

    fn event(&mut self, ev: &sse::Event, out: &mut String, redact: &dyn Fn(&str) -> String) {
        if self.done {
            return;
        }
        let parsed = match self.provider.stream_event(ev) {
            Ok(p) => p,
            Err(m) => return self.fail(&m, out),
        };
        for e in parsed {
            match e {
                StreamEvent::Start { input_tokens, .. } => {
                    if input_tokens > 0 {
                        self.usage.input_tokens = input_tokens;
                    }
                    self.start(out);
                }
                StreamEvent::Text(t) => {
                    self.start(out);
                    out.push_str(&self.client.write_stream_event(&StreamEvent::Text(t)));
                }
                StreamEvent::Stop(r) => self.stop = Some(r),
                StreamEvent::Usage(u) => self.usage.merge(u),
                StreamEvent::Finish { stop, usage } => {
                    self.stop = stop.or(self.stop.take());
                    self.usage.merge(usage);
                }
                StreamEvent::Done => self.complete(out),
                StreamEvent::Error(m) => self.fail(&redact(&m), out),
            }
        }
    }

    fn start(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            out.push_str(&self.client.write_stream_event(&StreamEvent::Start {
                model: self.model.clone(),
                input_tokens: self.usage.input_tokens,
            }));
        }
    }

    fn complete(&mut self, out: &mut String) {
        self.start(out);
        out.push_str(&self.client.write_stream_event(&StreamEvent::Finish {
            stop: self.stop.clone(),
            usage: self.usage,
        }));
        out.push_str(&self.client.write_stream_event(&StreamEvent::Done));
        self.done = true;
    }

    fn fail(&mut self, message: &str, out: &mut String) {
        out.push_str(
            &self
                .client
                .write_stream_event(&StreamEvent::Error(message.to_string())),
        );
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::dialect::for_mode;
    use hermes_plugin_api::api_mode;

    fn d(mode: &str) -> &'static dyn Dialect {
        for_mode(mode).unwrap()
    }

    #[test]
    fn tools_images_and_choices_are_named_not_dropped() {
        let a = d(api_mode::ANTHROPIC_MESSAGES);
        let o = d(api_mode::CHAT_COMPLETIONS);
        let tools = json!({"model": "m", "tools": [{"name": "x"}], "messages": []});
        assert!(untranslatable(a, &tools).unwrap().contains("tool use"));
        let image = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "see"}, {"type": "image", "source": {}}]}]});
        assert!(untranslatable(a, &image).unwrap().contains("image content"));
        let n = json!({"model": "m", "n": 2, "messages": []});
        assert!(untranslatable(o, &n).unwrap().contains("`n`"));
        let tool_result = json!({"model": "m", "messages": [{"role": "tool", "content": "1"}]});
        assert!(untranslatable(o, &tool_result)
            .unwrap()
            .contains("tool results"));
        let plain = json!({"model": "m", "temperature": 0.2, "stop": ["x"], "stream": true,
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
        assert_eq!(untranslatable(o, &plain), None);
    }

    #[test]
    fn a_chat_completions_stream_becomes_a_messages_stream_with_one_start_and_one_finish() {
        let provider = d(api_mode::CHAT_COMPLETIONS);
        let client = d(api_mode::ANTHROPIC_MESSAGES);
        let upstream = [
            StreamEvent::Start {
                model: "m".into(),
                input_tokens: 0,
            },
            StreamEvent::Text("Hel".into()),
            StreamEvent::Start {
                model: "m".into(),
                input_tokens: 0,
            },
            StreamEvent::Text("lo".into()),
            StreamEvent::Stop(StopReason::EndTurn),
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 2,
            }),
            StreamEvent::Done,
        ]
        .iter()
        .map(|e| provider.write_stream_event(e))
        .collect::<String>();
        let mut t = Stream::new(provider, client, "m");
        // Split anywhere: the parser takes bytes as they come.
        let mut out = String::new();
        for chunk in upstream.as_bytes().chunks(7) {
            out.push_str(&t.push(chunk, &|s| s.to_string()));
        }
        out.push_str(&t.finish(&|s| s.to_string()));
        assert!(t.done());
        assert_eq!(out.matches("event: message_start").count(), 1, "{out}");
        assert_eq!(out.matches("event: message_delta").count(), 1, "{out}");
        assert_eq!(out.matches("event: message_stop").count(), 1, "{out}");
        // Read back as the client would.
        let mut p = sse::Parser::default();
        let mut text = String::new();
        let mut finish = None;
        for ev in p.push(out.as_bytes()).unwrap() {
            for e in client.stream_event(&ev).unwrap() {
                match e {
                    StreamEvent::Text(s) => text.push_str(&s),
                    StreamEvent::Stop(r) => finish = Some(r),
                    _ => {}
                }
            }
        }
        assert_eq!(text, "Hello");
        assert_eq!(finish, Some(StopReason::EndTurn));
        assert!(out.contains("\"output_tokens\":2"), "{out}");
    }

    #[test]
    fn a_stream_cut_short_ends_with_an_error_event() {
        let provider = d(api_mode::ANTHROPIC_MESSAGES);
        let client = d(api_mode::CHAT_COMPLETIONS);
        let mut t = Stream::new(provider, client, "m");
        let start = provider.write_stream_event(&StreamEvent::Start {
            model: "m".into(),
            input_tokens: 1,
        });
        let mut out = t.push(start.as_bytes(), &|s| s.to_string());
        out.push_str(&t.finish(&|s| s.to_string()));
        assert!(out.contains("\"error\""), "{out}");
        assert!(!out.contains("[DONE]"), "{out}");
    }

    #[test]
    fn whole_answers_cross_with_an_id() {
        let provider = d(api_mode::ANTHROPIC_MESSAGES);
        let client = d(api_mode::CHAT_COMPLETIONS);
        let body = provider.write_answer(&Answer {
            text: "hi".into(),
            stop_reason: Some(StopReason::MaxTokens),
            usage: Usage {
                input_tokens: 1,
                output_tokens: 2,
            },
            model: "m".into(),
        });
        let v = answer(provider, client, body.to_string().as_bytes()).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hi");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(v["created"].as_i64().unwrap() > 1_700_000_000);
    }
}
