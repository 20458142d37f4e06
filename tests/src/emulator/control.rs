//! The `/_emulator/` control endpoints, so scripts and browsers can drive the binary.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::http::{html_escape, html_response, json_response, method_not_allowed, parse_form, Req};
use super::state::{Region, Shared};
use super::{EmulatorConfig, Fault};

fn bad_request(message: impl Into<String>) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"ok": false, "error": message.into()}),
    )
}

/// The request's fields, from a JSON object or a form (`curl -d '{…}'` labels JSON as a form, so
/// the body's first character decides).
fn fields(req: &Req) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(&req.body).map_err(|_| "body is not UTF-8".to_string())?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        Ok(Map::new())
    } else if trimmed.starts_with('{') || (req.is_json() && !req.is_form()) {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("body must be a JSON object".into()),
            Err(e) => Err(format!("body is not valid JSON: {e}")),
        }
    } else {
        let form = parse_form(text.as_bytes())?;
        let mut map = Map::new();
        for key in [
            "user_code",
            "path",
            "fault",
            "count",
            "region",
            "access_ttl_ms",
            "key",
        ] {
            if let Some(v) = form.get(key) {
                map.insert(key.to_string(), Value::String(v.to_string()));
            }
        }
        Ok(map)
    }
}

fn str_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// An integer given as a JSON number or, from a form, as a string.
fn int_field(map: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{key} must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{key} must be an integer")),
        Some(_) => Err(format!("{key} must be an integer")),
    }
}

fn region_field(map: &Map<String, Value>, default: Region) -> Result<Region, String> {
    match str_field(map, "region") {
        None => Ok(default),
        Some(r) => Region::parse(r).ok_or_else(|| format!("unknown region {r:?} (global or cn)")),
    }
}

pub(crate) fn handle(shared: &Shared, req: &Req) -> Response {
    let op = req
        .path
        .trim_start_matches("/_emulator")
        .trim_start_matches('/');
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    match op {
        "counters" if get => {
            let mut c = shared.lock().counters();
            c.in_flight = shared.in_flight.load(std::sync::atomic::Ordering::SeqCst);
            json_response(StatusCode::OK, json!(c))
        }
        "pending" if get => pending(shared, req),
        "approve" | "deny" if post => decide(shared, req, op == "approve"),
        "config" if get => json_response(StatusCode::OK, json!(shared.lock().config)),
        "config" if post => patch_config(shared, req),
        "fault" if post => fault(shared, req),
        "expire-access-tokens" if post => {
            let expired = shared.lock().expire_all_access_tokens();
            json_response(StatusCode::OK, json!({"ok": true, "expired": expired}))
        }
        "issue-tokens" if post => issue_tokens(shared, req),
        "api-keys" if post => match fields(req).map(|m| str_field(&m, "key").map(str::to_string)) {
            Ok(Some(key)) => {
                shared.lock().api_keys.insert(key);
                json_response(StatusCode::OK, json!({"ok": true}))
            }
            Ok(None) => bad_request("missing field: key"),
            Err(e) => bad_request(e),
        },
        "counters" | "pending" => method_not_allowed("GET"),
        "config" => method_not_allowed("GET, POST"),
        "approve" | "deny" | "fault" | "expire-access-tokens" | "issue-tokens" | "api-keys" => {
            method_not_allowed("POST")
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"ok": false, "error": format!("unknown control endpoint {:?}", req.full_path)}),
        ),
    }
}

/// Root prefix: both regions; `/cn` prefix: cn; `?region=` overrides.
fn pending(shared: &Shared, req: &Req) -> Response {
    let region = match req.query_param("region") {
        Some(r) => match Region::parse(&r) {
            Some(region) => Some(region),
            None => return bad_request(format!("unknown region {r:?} (global or cn)")),
        },
        None => (req.region == Region::Cn).then_some(Region::Cn),
    };
    json_response(StatusCode::OK, json!(shared.lock().pending_codes(region)))
}

fn decide(shared: &Shared, req: &Req, approve: bool) -> Response {
    let user_code = match fields(req) {
        Ok(map) => str_field(&map, "user_code")
            .map(str::to_string)
            .or_else(|| req.query_param("user_code")),
        Err(e) => return bad_request(e),
    };
    let Some(user_code) = user_code else {
        return bad_request("missing field: user_code");
    };
    let done = {
        let mut state = shared.lock();
        if approve {
            state.approve(&user_code)
        } else {
            state.deny(&user_code)
        }
    };
    let verb = if approve { "approved" } else { "denied" };
    let status = if done {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    if req.wants_html() {
        let code = html_escape(&user_code);
        let text = if done {
            format!("Code {code} {verb}. You can close this tab and return to the terminal.")
        } else {
            format!("Code {code} is unknown, expired or already decided.")
        };
        return html_response(
            status,
            format!("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>MiniMax emulator</title></head><body><p id=\"result\">{text}</p></body></html>\n"),
        );
    }
    if done {
        json_response(
            status,
            json!({"ok": true, "user_code": user_code, "result": verb}),
        )
    } else {
        json_response(
            status,
            json!({"ok": false, "user_code": user_code, "error": "unknown, expired or already decided user code"}),
        )
    }
}

/// Applies a partial config by merging it into the current one, so every field keeps its
/// serde name and type checks without a second, hand-kept list of fields.
fn patch_config(shared: &Shared, req: &Req) -> Response {
    let patch = match fields(req) {
        Ok(map) => map,
        Err(e) => return bad_request(e),
    };
    if patch.contains_key("port") {
        return bad_request("port cannot be changed at run time");
    }
    let mut state = shared.lock();
    let mut merged = match serde_json::to_value(&state.config) {
        Ok(Value::Object(map)) => map,
        _ => return bad_request("the current configuration cannot be serialized"),
    };
    for (key, value) in patch {
        if !merged.contains_key(&key) {
            return bad_request(format!("unknown config field {key:?}"));
        }
        merged.insert(key, value);
    }
    match serde_json::from_value::<EmulatorConfig>(Value::Object(merged)) {
        Ok(config) => {
            state.config = config;
            json_response(StatusCode::OK, json!(state.config))
        }
        Err(e) => bad_request(format!("invalid config: {e}")),
    }
}

fn fault(shared: &Shared, req: &Req) -> Response {
    let map = match fields(req) {
        Ok(map) => map,
        Err(e) => return bad_request(e),
    };
    let Some(path) = str_field(&map, "path") else {
        return bad_request("missing field: path");
    };
    let Some(spec) = str_field(&map, "fault") else {
        return bad_request("missing field: fault");
    };
    let fault: Fault = match spec.parse() {
        Ok(fault) => fault,
        Err(e) => return bad_request(e),
    };
    let count = match int_field(&map, "count") {
        Ok(None) => 1,
        Ok(Some(n)) => match u32::try_from(n) {
            Ok(n) => n,
            Err(_) => return bad_request("count must be between 0 and 4294967295"),
        },
        Err(e) => return bad_request(e),
    };
    shared.lock().inject(path, fault, count);
    json_response(
        StatusCode::OK,
        json!({"ok": true, "path": path, "fault": fault.to_string(), "count": count}),
    )
}

fn issue_tokens(shared: &Shared, req: &Req) -> Response {
    let map = match fields(req) {
        Ok(map) => map,
        Err(e) => return bad_request(e),
    };
    let region = match region_field(&map, req.region) {
        Ok(region) => region,
        Err(e) => return bad_request(e),
    };
    let mut state = shared.lock();
    let ttl = match int_field(&map, "access_ttl_ms") {
        Ok(ttl) => ttl.unwrap_or(state.config.access_ttl_ms),
        Err(e) => return bad_request(e),
    };
    let (access, refresh) = state.mint_pair(region, ttl);
    json_response(
        StatusCode::OK,
        json!({"access_token": access, "refresh_token": refresh, "region": region.as_str()}),
    )
}
