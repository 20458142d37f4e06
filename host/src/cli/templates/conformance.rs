//! The hermes conformance checks and a few behaviour tests, run by `cargo test`.
//!
//! The checks are the ones `hermes plugins check` and `hermes plugins install` run on the built
//! library: descriptor rules, no network in status, no panics on hostile input, error kinds,
//! and no secret in logs, messages or `Debug` output.

use example_provider::ExampleProvider;
use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::root_module;
use hermes_plugin_sdk::testkit::{conformance, FakeHost};

#[test]
fn conforms_to_the_hermes_plugin_rules() {
    conformance::<ExampleProvider>();
}

#[test]
fn describes_one_provider_with_the_anthropic_messages_api() {
    let info = (root_module::<ExampleProvider>().describe())().unwrap();
    assert_eq!(info.id.as_str(), "example-provider");
    assert_eq!(
        info.providers[0].api_mode.as_str(),
        api_mode::ANTHROPIC_MESSAGES
    );
}

#[test]
fn a_fresh_provider_is_not_logged_in_and_says_how_to_fix_it() {
    let fake = FakeHost::default();
    let handle =
        (root_module::<ExampleProvider>().provider())("example-provider".into(), fake.host_box())
            .unwrap();
    let report = handle
        .status
        .status(ROption::RNone, fake.sdk_host().now_ms());
    assert_eq!(report.state, status_state::NOT_LOGGED_IN);
    assert!(report.problems[0].contains("hermes auth add example-provider"));
    assert!(fake.requests().is_empty(), "status makes no network call");
}
