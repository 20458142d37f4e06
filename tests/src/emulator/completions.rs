//! `GET /v1/models` and `POST /v1/chat/completions`: the OpenAI chat completions API with a
//! deterministic reply, for providers whose api mode is `chat_completions`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::http::{json_response, mask, set_header, Req};
use super::messages::REPLY_PREFIX;
use super::net::{ScriptedStream, Step};
use super::state::Shared;
use super::MODELS;

/// How many content chunks a streamed reply is cut into.
const STREAM_CHUNKS: usize = 4;

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "code": code}})
}

fn bearer(req: &Req) -> Option<&str> {
    let (scheme, token) = req.header("authorization")?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the presented Bearer is an added API key or a live access token of the region.
fn authorized(shared: &Shared, req: &Req) -> (bool, String) {
    let token = bearer(req).unwrap_or("").to_string();
    let state = shared.lock();
    let ok = !token.is_empty()
        && (state.api_keys.contains(&token) || state.access_valid(req.region, &token));
    (ok, token)
}

fn unauthorized(token: &str, echo: bool) -> Response {
    let message = if echo && !token.is_empty() {
        format!("Incorrect API key provided: {token}")
    } else {
        "Incorrect API key provided".to_string()
    };
    json_response(
        StatusCode::UNAUTHORIZED,
        error_body(&message, "invalid_request_error", Some("invalid_api_key")),
    )
}

pub(crate) fn models(shared: &Shared, req: &Req, note: &mut String) -> Response {
    shared.lock().counters_mut(req.region).models_requests += 1;
    let (ok, token) = authorized(shared, req);
    note.push_str(&format!("bearer={}", mask(&token)));
    if !ok {
        let echo = shared.lock().config.echo_token_in_errors;
        return unauthorized(&token, echo);
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"id": m, "object": "model", "owned_by": "emulator"}))
        .collect();
    json_response(StatusCode::OK, json!({"object": "list", "data": data}))
}

struct Parsed {
    model: String,
    stream: bool,
    include_usage: bool,
    last_user_text: String,
    input_chars: usize,
}

fn validate(body: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("We could not parse the JSON body of your request: {e}"))?;
    let model = v["model"]
        .as_str()
        .filter(|m| !m.is_empty())
        .ok_or("you must provide a model parameter")?
        .to_string();
    let messages = v["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("messages: a non-empty list is required")?;
    let mut last_user_text = String::new();
    let mut input_chars = 0;
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        if !matches!(role, "system" | "developer" | "user" | "assistant") {
            return Err(format!("messages[{i}].role: invalid role {role:?}"));
        }
        if role == "system" && i != 0 {
            return Err(format!("messages[{i}]: the system message must come first"));
        }
        let text = m["content"]
            .as_str()
            .ok_or(format!("messages[{i}].content must be a string"))?;
        input_chars += text.chars().count();
        if role == "user" {
            last_user_text = text.to_string();
        }
    }
    if let Some(n) = v.get("max_tokens").filter(|n| !n.is_null()) {
        if n.as_u64().is_none_or(|n| n == 0) {
            return Err("max_tokens must be a positive integer".into());
        }
    }
    let stream = v["stream"].as_bool().unwrap_or(false);
    Ok(Parsed {
        model,
        stream,
        include_usage: stream && v["stream_options"]["include_usage"] == true,
        last_user_text,
        input_chars,
    })
}

fn tokens_for(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

pub(crate) fn handle(shared: &Shared, req: &Req, note: &mut String) -> Response {
    shared.lock().counters_mut(req.region).completions_requests += 1;
    let (ok, token) = authorized(shared, req);
    note.push_str(&format!("bearer={}", mask(&token)));
    let config = shared.lock().config.clone();
    if !ok {
        shared
            .lock()
            .counters_mut(req.region)
            .completions_unauthorized += 1;
        return unauthorized(&token, config.echo_token_in_errors);
    }
    if let Some(status) = config.inference_error_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        let message = if config.echo_token_in_errors {
            format!("request refused for key {token}")
        } else {
            "request refused".to_string()
        };
        return json_response(status, error_body(&message, "server_error", None));
    }
    let parsed = match validate(&req.body) {
        Ok(p) => p,
        Err(m) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                error_body(&m, "invalid_request_error", None),
            )
        }
    };
    let id = {
        let mut state = shared.lock();
        let c = state.counters_mut(req.region);
        c.completions_ok += 1;
        if parsed.stream {
            c.completions_streamed += 1;
        }
        state.token("chatcmpl-")
    };
    let text = format!("{REPLY_PREFIX}{}", parsed.last_user_text);
    let usage = json!({
        "prompt_tokens": tokens_for(parsed.input_chars),
        "completion_tokens": tokens_for(text.chars().count()),
        "total_tokens": tokens_for(parsed.input_chars) + tokens_for(text.chars().count()),
    });
    if !parsed.stream {
        return json_response(
            StatusCode::OK,
            json!({
                "id": id, "object": "chat.completion", "created": 0, "model": parsed.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            }),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        data(&json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": parsed.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }))
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(STREAM_CHUNKS).max(1);
    for (i, piece) in chars.chunks(size).enumerate() {
        if config
            .stream_error_after_chunks
            .is_some_and(|n| i as u64 >= u64::from(n))
        {
            break;
        }
        let piece: String = piece.iter().collect();
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    if config.stream_error_after_chunks.is_some() {
        shared.lock().counters_mut(req.region).stream_errors += 1;
        let message = if config.echo_token_in_errors {
            format!("The server is overloaded (key {token})")
        } else {
            "The server is overloaded".to_string()
        };
        events.push(data(&error_body(&message, "server_error", None)));
    } else {
        events.push(chunk(json!({}), json!("stop")));
        if parsed.include_usage {
            events.push(data(&json!({
                "id": id, "object": "chat.completion.chunk", "created": 0, "model": parsed.model,
                "choices": [], "usage": usage,
            })));
        }
        events.push(Step::Data(Bytes::from_static(b"data: [DONE]\n\n")));
    }
    let delay = Duration::from_millis(config.stream_event_delay_ms);
    let steps = events.into_iter().flat_map(|event| {
        let pause = (!delay.is_zero()).then_some(Step::Delay(delay));
        std::iter::once(event).chain(pause)
    });
    let mut response = Response::new(Body::from_stream(ScriptedStream::new(steps)));
    set_header(&mut response, header::CONTENT_TYPE, "text/event-stream");
    set_header(&mut response, header::CACHE_CONTROL, "no-cache");
    response
}

fn data(v: &Value) -> Step {
    Step::Data(Bytes::from(format!("data: {v}\n\n")))
}
