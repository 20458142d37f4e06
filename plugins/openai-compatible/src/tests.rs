//! The plugin through its FFI objects, as the host drives it, over the testkit's fake host.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::root_module;
use hermes_plugin_sdk::testkit::{FakeHost, Reply};
use hermes_plugin_sdk::ProviderHandle;

use super::*;

const KEY: &str = "sk-oai-test-0123456789abcdef";

fn open(fake: &FakeHost) -> ProviderHandle {
    (root_module::<OpenAiCompatible>().provider())(PROVIDER_ID.into(), fake.host_box()).unwrap()
}

fn sign_in(handle: &ProviderHandle, options: &str) -> Result<PollOutcome, PluginError> {
    let flow = handle.auth_flow.as_ref().unwrap();
    let ch = flow.start("".into(), options.into()).into_result()?;
    flow.poll(ch.session.as_rstr()).into_result()
}

fn key_options(key: &str) -> String {
    format!("{{\"api_key\": \"{key}\"}}")
}

#[test]
fn conforms_to_the_hermes_plugin_rules() {
    hermes_plugin_sdk::testkit::conformance::<OpenAiCompatible>();
}

#[test]
fn the_descriptor_speaks_chat_completions_with_an_api_key() {
    let info = OpenAiCompatible::info();
    let p = &info.providers[0];
    assert_eq!(p.id.as_str(), "openai-compatible");
    assert_eq!(p.aliases[0].as_str(), "openai-compat");
    assert_eq!(p.flow.as_str(), flow::API_KEY);
    assert_eq!(p.api_mode.as_str(), api_mode::CHAT_COMPLETIONS);
    assert_eq!(p.allowed_hosts[0].as_str(), "api.openai.com");
    assert_eq!(p.url_overrides[0].env.as_str(), "OPENAI_BASE_URL");
}

#[test]
fn sign_in_checks_the_key_against_the_configured_base_url() {
    let fake = FakeHost::default();
    fake.set_config("base_url", "http://127.0.0.1:9/v1/");
    fake.set_config("OPENAI_BASE_URL", "http://127.0.0.1:8/ignored");
    fake.on_request(|_| Reply::json(200, r#"{"object":"list","data":[]}"#));
    let out = sign_in(&open(&fake), &key_options(KEY)).unwrap();
    assert_eq!(out.status, poll_status::APPROVED);
    let cred = out.credential.into_option().unwrap();
    assert_eq!(cred.access_token.as_str(), KEY);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(
        reqs[0].url, "http://127.0.0.1:9/v1/models",
        "config.yaml wins over the environment"
    );
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let rt = open(&fake)
        .runtime
        .as_ref()
        .unwrap()
        .runtime(&cred)
        .into_result()
        .unwrap();
    assert_eq!(rt.base_url.as_str(), "http://127.0.0.1:9/v1");
    assert_eq!(rt.auth_scheme, auth_scheme::BEARER);
}

#[test]
fn a_rejected_key_is_refused_before_anything_is_saved() {
    let fake = FakeHost::default();
    fake.on_request(|_| {
        Reply::json(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        )
    });
    let e = sign_in(&open(&fake), &key_options(KEY)).unwrap_err();
    assert_eq!(e.code.as_str(), "key_rejected");
    assert!(e.message.contains("nothing was saved"), "{}", e.message);
    assert!(!e.message.contains(KEY));
    assert_eq!(fake.requests()[0].url, "https://api.openai.com/v1/models");
}

#[test]
fn the_environment_supplies_url_and_key_when_config_does_not() {
    let fake = FakeHost::default();
    fake.set_config("OPENAI_BASE_URL", "http://localhost:11434/v1");
    fake.set_config("OPENAI_API_KEY", KEY);
    fake.on_request(|_| Reply::json(404, "not found"));
    let out = sign_in(&open(&fake), "").unwrap();
    assert_eq!(out.status, poll_status::APPROVED);
    assert_eq!(fake.requests()[0].url, "http://localhost:11434/v1/models");
    let e = sign_in(&open(&FakeHost::default()), "").unwrap_err();
    assert_eq!(e.code.as_str(), "no_api_key");
}

#[test]
fn a_server_failure_during_the_check_is_transient() {
    let fake = FakeHost::default();
    fake.on_request(|_| Reply::json(503, "busy"));
    let e = sign_in(&open(&fake), &key_options(KEY)).unwrap_err();
    assert_eq!(e.kind, kind::TRANSIENT);
    let fake = FakeHost::default();
    fake.on_request(|_| Reply::dropped());
    let e = sign_in(&open(&fake), &key_options(KEY)).unwrap_err();
    assert_eq!(e.kind, kind::TRANSIENT);
}
