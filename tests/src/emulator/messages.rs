//! `POST /anthropic/v1/messages`: the Anthropic Messages API with a deterministic reply.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::http::{json_response, mask, set_header, Req};
use super::net::{ScriptedStream, Step};
use super::state::Shared;
use super::{AuthStyle, MessagesRequestRecord, MAX_OUTPUT_TOKENS, MODELS};

/// What every reply starts with; the rest echoes the last user message.
pub const REPLY_PREFIX: &str = "Hello from the MiniMax emulator. You said: ";

/// How many `content_block_delta` events a streamed reply is cut into.
const STREAM_CHUNKS: usize = 4;

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The body fields the reply depends on.
struct Parsed {
    model: String,
    stream: bool,
    last_user_text: String,
    /// Characters of prompt text, for a stable token estimate.
    input_chars: usize,
}

/// Text of a message `content` (a string or an array of blocks) and whether it is well formed.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for block in blocks {
                let kind = block.get("type")?.as_str()?;
                if kind == "text" {
                    text.push_str(block.get("text")?.as_str()?);
                }
            }
            Some(text)
        }
        _ => None,
    }
}

fn validate(body: &[u8]) -> Result<Parsed, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or("request body must be a JSON object")?;

    let model = match obj.get("model") {
        None => return Err("model: Field required".into()),
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err("model: Input should be a valid string".into()),
    };
    if !MODELS.contains(&model.as_str()) {
        return Err(format!(
            "model: unknown model {model:?} (available: {})",
            MODELS.join(", ")
        ));
    }

    match obj.get("max_tokens") {
        None => return Err("max_tokens: Field required".into()),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_OUTPUT_TOKENS).contains(&n) => {}
            Some(n) if n > MAX_OUTPUT_TOKENS => {
                return Err(format!(
                    "max_tokens: {n} > {MAX_OUTPUT_TOKENS}, which is the maximum allowed number of output tokens for {model}"
                ))
            }
            _ => return Err("max_tokens: Input should be a positive integer".into()),
        },
    }

    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("stream: Input should be a valid boolean".into()),
    };

    let mut input_chars = match obj.get("system") {
        None | Some(Value::Null) => 0,
        Some(system) => content_text(system)
            .ok_or("system: Input should be a string or a list of text blocks")?
            .chars()
            .count(),
    };

    let messages = match obj.get("messages") {
        None => return Err("messages: Field required".into()),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err("messages: at least one message is required".into())
        }
        Some(Value::Array(list)) => list,
        Some(_) => return Err("messages: Input should be a valid list".into()),
    };
    let mut last_user_text = None;
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        if !matches!(role, Some("user") | Some("assistant")) {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        let text = message
            .get("content")
            .and_then(content_text)
            .ok_or_else(|| {
                format!(
                    "messages.{i}.content: Input should be a string or a list of content blocks"
                )
            })?;
        input_chars += text.chars().count();
        if role == Some("user") {
            last_user_text = Some(text);
        }
    }

    Ok(Parsed {
        model,
        stream,
        last_user_text: last_user_text.unwrap_or_default(),
        input_chars,
    })
}

/// A rough, stable token count: about four characters a token, at least one.
fn tokens_for(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

fn auth_style(req: &Req) -> AuthStyle {
    match (
        req.header("authorization"),
        req.headers.contains_key("x-api-key"),
    ) {
        (None, false) => AuthStyle::None,
        (None, true) => AuthStyle::ApiKey,
        (Some(_), true) => AuthStyle::Both,
        (Some(a), false) if bearer_token(a).is_some() => AuthStyle::Bearer,
        (Some(_), false) => AuthStyle::Other,
    }
}

fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub(crate) fn handle(shared: &Shared, req: &Req, note: &mut String) -> Response {
    let peek: Option<Value> = serde_json::from_slice(&req.body).ok();
    let mut record = MessagesRequestRecord {
        region: req.region.as_str().to_string(),
        path: req.full_path.clone(),
        auth: auth_style(req),
        status: 0,
        model: peek
            .as_ref()
            .and_then(|v| v.get("model"))
            .and_then(Value::as_str)
            .map(str::to_string),
        stream: peek
            .as_ref()
            .and_then(|v| v.get("stream"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        anthropic_version: req.header("anthropic-version").map(str::to_string),
        anthropic_beta: req.header("anthropic-beta").map(str::to_string),
        content_type: req.header("content-type").map(str::to_string),
    };

    let mut state = shared.lock();
    state.counters_mut(req.region).messages_requests += 1;

    let bearer = req.header("authorization").and_then(bearer_token);
    let api_key = req.header("x-api-key");
    // Only keys added on purpose count as x-api-key: an OAuth access token sent there is the
    // classic client bug this endpoint must expose.
    let authorized = bearer.is_some_and(|t| state.access_valid(req.region, t))
        || api_key.is_some_and(|k| state.api_keys.contains(k));
    note.push_str(&format!(
        "auth={:?}{}",
        record.auth,
        bearer.map(|t| format!(" {}", mask(t))).unwrap_or_default()
    ));

    let outcome = if !authorized {
        state.counters_mut(req.region).messages_unauthorized += 1;
        Err((
            StatusCode::UNAUTHORIZED,
            error_body("authentication_error", "invalid or expired token"),
        ))
    } else if record.anthropic_version.is_none() {
        state.counters_mut(req.region).messages_invalid += 1;
        Err((
            StatusCode::BAD_REQUEST,
            error_body(
                "invalid_request_error",
                "anthropic-version: header is required",
            ),
        ))
    } else {
        validate(&req.body).map_err(|message| {
            state.counters_mut(req.region).messages_invalid += 1;
            (
                StatusCode::BAD_REQUEST,
                error_body("invalid_request_error", &message),
            )
        })
    };

    let presented = bearer.or(api_key).unwrap_or("").to_string();
    let outcome = match (outcome, state.config.inference_error_status) {
        (Ok(_), Some(status)) => {
            let message = if state.config.echo_token_in_errors {
                format!("request refused for token {presented}")
            } else {
                "request refused".to_string()
            };
            Err((
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                error_body("api_error", &message),
            ))
        }
        (other, _) => other,
    };
    let response = match outcome {
        Err((status, body)) => json_response(status, body),
        Ok(parsed) => {
            let id = state.token("msg_");
            let config = state.config.clone();
            let counters = state.counters_mut(req.region);
            counters.messages_ok += 1;
            if parsed.stream {
                counters.messages_streamed += 1;
                if config.stream_error_after_chunks.is_some() {
                    counters.stream_errors += 1;
                }
            }
            let reply = Reply {
                id,
                model: parsed.model.clone(),
                text: format!("{REPLY_PREFIX}{}", parsed.last_user_text),
                input_tokens: tokens_for(parsed.input_chars),
            };
            if parsed.stream {
                let echoed = config.echo_token_in_errors.then_some(presented.as_str());
                stream_response(
                    &reply,
                    echoed,
                    config.stream_error_after_chunks,
                    Duration::from_millis(config.stream_event_delay_ms),
                )
            } else {
                json_response(StatusCode::OK, reply.message(true))
            }
        }
    };
    record.status = response.status().as_u16();
    state.record_messages_request(record);
    response
}

struct Reply {
    id: String,
    model: String,
    text: String,
    input_tokens: u64,
}

impl Reply {
    fn output_tokens(&self) -> u64 {
        tokens_for(self.text.chars().count())
    }

    /// The message object; `complete` is false for the empty shell of `message_start`.
    fn message(&self, complete: bool) -> Value {
        let (content, stop_reason, output_tokens) = if complete {
            (
                json!([{"type": "text", "text": self.text}]),
                json!("end_turn"),
                self.output_tokens(),
            )
        } else {
            (json!([]), Value::Null, 1)
        };
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": output_tokens},
        })
    }
}

/// Cuts `text` into at most `parts` pieces of similar length, on character boundaries.
fn split_text(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(parts).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn sse(event: &str, data: &Value) -> Step {
    Step::Data(Bytes::from(format!("event: {event}\ndata: {data}\n\n")))
}

fn stream_response(
    reply: &Reply,
    echoed: Option<&str>,
    error_after: Option<u32>,
    delay: Duration,
) -> Response {
    let mut events = vec![
        sse(
            "message_start",
            &json!({"type": "message_start", "message": reply.message(false)}),
        ),
        sse(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        sse("ping", &json!({"type": "ping"})),
    ];
    for (i, chunk) in split_text(&reply.text, STREAM_CHUNKS)
        .into_iter()
        .enumerate()
    {
        if error_after.is_some_and(|n| i as u64 >= u64::from(n)) {
            break;
        }
        events.push(sse(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}}),
        ));
    }
    if error_after.is_some() {
        events.push(sse(
            "error",
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": match echoed {
                Some(t) => format!("Overloaded (token {t})"),
                None => "Overloaded".to_string(),
            }}}),
        ));
    } else {
        events.push(sse(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ));
        events.push(sse(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": reply.output_tokens()},
            }),
        ));
        events.push(sse("message_stop", &json!({"type": "message_stop"})));
    }

    let steps = events.into_iter().flat_map(|event| {
        let pause = (!delay.is_zero()).then_some(Step::Delay(delay));
        std::iter::once(event).chain(pause)
    });
    let mut response = Response::new(Body::from_stream(ScriptedStream::new(steps)));
    set_header(&mut response, header::CONTENT_TYPE, "text/event-stream");
    set_header(&mut response, header::CACHE_CONTROL, "no-cache");
    response
}
