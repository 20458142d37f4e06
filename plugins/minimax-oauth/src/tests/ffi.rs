//! The plugin as the host sees it: through the root module and the `_TO` trait objects.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::root_module;
use hermes_plugin_sdk::testkit::Reply;
use serde_json::json;

use crate::testutil::*;
use crate::MiniMaxPlugin;

#[test]
fn root_module_describes_the_plugin() {
    let module = root_module::<MiniMaxPlugin>();
    assert_eq!(
        (module.api_version())().as_str(),
        hermes_plugin_sdk::API_VERSION
    );
    let info = (module.describe())().unwrap();
    assert_eq!(info.id.as_str(), "minimax-oauth");
    assert_eq!(info.providers[0].id.as_str(), "minimax-oauth");
    assert_eq!(info.providers[0].flow.as_str(), flow::DEVICE_CODE);
}

#[test]
fn regress_pooled_credentials_api_mode_is_anthropic_messages() {
    // Pooled MiniMax credentials once ran with a stale `chat_completions` mode and hit
    // `/anthropic/chat/completions`; the descriptor is the only source of the mode.
    let info = (root_module::<MiniMaxPlugin>().describe())().unwrap();
    assert_eq!(
        info.providers[0].api_mode.as_str(),
        api_mode::ANTHROPIC_MESSAGES
    );
}

#[test]
fn regress_auth_status_minimax_oauth_resolves_provider() {
    // `auth status minimax-oauth` once fell through to "unknown provider".
    let module = root_module::<MiniMaxPlugin>();
    let f = fake();
    for id in [
        "minimax-oauth",
        "minimax-portal",
        "minimax-global",
        "minimax_oauth",
    ] {
        let handle = (module.provider())(id.into(), f.host_box()).unwrap();
        let r = handle.status.status(ROption::RNone, NOW);
        assert_eq!(r.state, status_state::NOT_LOGGED_IN, "{id}");
        assert!(handle.auth_flow.is_some() && handle.runtime.is_some() && handle.removal.is_some());
    }
    match (module.provider())("anthropic".into(), f.host_box()) {
        RResult::RErr(err) => assert_eq!(err.code.as_str(), "unknown_provider"),
        RResult::ROk(_) => panic!("an unknown provider id must be refused"),
    }
}

#[test]
fn capabilities_work_through_the_ffi_objects() {
    let module = root_module::<MiniMaxPlugin>();
    let f = fake();
    let handle = (module.provider())("minimax-oauth".into(), f.host_box()).unwrap();

    let cred = stored(NOW + 13 * 60_000);
    let r = handle.status.status(ROption::RSome(&cred), NOW);
    assert_eq!(r.state, status_state::VALID);
    assert_eq!(
        r.summary.as_str(),
        "logged in, region global, token valid 13 min"
    );
    assert!(f.requests().is_empty(), "status makes no network call");

    let flow = handle.auth_flow.as_ref().unwrap();
    f.on_request(|rec| {
        if rec.url.ends_with("/oauth/code") {
            code_reply(rec, &json!({}))
        } else {
            Reply::json(200, &token_body(&json!({})))
        }
    });
    let ch = flow.start("".into(), "".into()).unwrap();
    let out = flow.poll(ch.session.as_rstr()).unwrap();
    assert_eq!(out.status, poll_status::APPROVED);
    let new = out.credential.unwrap();

    let rt = handle.runtime.as_ref().unwrap();
    assert!(!rt.needs_refresh(&new, NOW));
    assert!(rt.needs_refresh(&new, TOKEN_EXPIRY - 60_000));
    let runtime = rt.runtime(&new).unwrap();
    assert_eq!(runtime.secret.as_str(), NEW_ACCESS);
    let refreshed = rt.refresh(&new).unwrap();
    assert_eq!(refreshed.refresh_token.as_str(), NEW_REFRESH);

    let plan = handle.removal.as_ref().unwrap().removal("oauth".into());
    assert!(plan.clear_provider_state && plan.suppress_source);

    let err = flow.start("mars".into(), "".into()).unwrap_err();
    assert_eq!(err.code.as_str(), "unknown_region");
}

#[test]
fn conforms_to_the_hermes_plugin_rules() {
    // The stored provider block holds copies of both tokens, so its Debug form is checked too.
    hermes_plugin_sdk::testkit::Conformance::<MiniMaxPlugin>::new()
        .debug_of("ProviderState", |secret| {
            let block = json!({"access_token": secret, "refresh_token": secret, "region": "cn"});
            format!(
                "{:?}",
                crate::state::ProviderState::parse(&block.to_string())
            )
        })
        .assert();
}
