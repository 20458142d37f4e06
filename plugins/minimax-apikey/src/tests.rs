//! The plugin through its FFI objects, as the host drives it, over the testkit's fake host.

use hermes_plugin_sdk::prelude::*;
use hermes_plugin_sdk::root_module;
use hermes_plugin_sdk::testkit::{Conformance, FakeHost};
use hermes_plugin_sdk::ProviderHandle;

use super::*;

const KEY: &str = "sk-cp-test-0123456789abcdef";

fn open(id: &str, fake: &FakeHost) -> ProviderHandle {
    (root_module::<MiniMaxApiKey>().provider())(id.into(), fake.host_box()).unwrap()
}

/// `hermes auth add <id> --api-key-stdin` as the host runs it: start with the key in the
/// options, then poll once.
fn sign_in(
    handle: &ProviderHandle,
    region: &str,
    options: &str,
) -> Result<PollOutcome, PluginError> {
    let flow = handle.auth_flow.as_ref().unwrap();
    let ch = flow.start(region.into(), options.into()).into_result()?;
    assert!(
        ch.verification_uri.is_empty(),
        "an api_key challenge shows no URL"
    );
    assert!(
        ch.user_code.is_empty(),
        "an api_key challenge shows no code"
    );
    flow.poll(ch.session.as_rstr()).into_result()
}

fn key_options(key: &str) -> String {
    format!("{{\"api_key\": \"{key}\"}}")
}

#[test]
fn conforms_to_the_hermes_plugin_rules() {
    Conformance::<MiniMaxApiKey>::new()
        .debug_of("Spec", |_| format!("{GLOBAL:?}"))
        .assert();
}

#[test]
fn describes_minimax_and_minimax_cn_with_their_regions_and_aliases() {
    let info = (root_module::<MiniMaxApiKey>().describe())().unwrap();
    assert_eq!(info.id.as_str(), "minimax-apikey");
    let ids: Vec<&str> = info.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["minimax", "minimax-cn"]);
    let (global, cn) = (&info.providers[0], &info.providers[1]);
    assert!(global.aliases.is_empty());
    assert_eq!(
        cn.aliases.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        ["minimax-china", "minimax_cn"]
    );
    for (p, region, url) in [
        (global, "global", "https://api.minimax.io/anthropic"),
        (cn, "cn", "https://api.minimaxi.com/anthropic"),
    ] {
        assert_eq!(p.flow.as_str(), flow::API_KEY);
        assert_eq!(p.api_mode.as_str(), api_mode::ANTHROPIC_MESSAGES);
        assert_eq!(p.regions.len(), 1);
        assert_eq!(p.regions[0].name.as_str(), region);
        assert_eq!(p.regions[0].inference_base_url.as_str(), url);
        assert_eq!(p.aux_model.as_str(), AUX_MODEL);
    }
    assert_eq!(
        hermes_plugin_sdk::validate::credential_env(global),
        ["MINIMAX_API_KEY"],
        "the key variable is declared for the host"
    );
    assert_eq!(
        hermes_plugin_sdk::validate::region_labels(cn),
        [("cn".to_string(), "China".to_string())],
        "the region is named for people"
    );
    assert!(hermes_plugin_sdk::validate::plugin_info(&info).is_empty());
}

#[test]
fn a_piped_key_is_approved_on_the_first_poll() {
    let fake = FakeHost::default();
    let out = sign_in(
        &open("minimax", &fake),
        "",
        &key_options(&format!("  {KEY}\\n")),
    )
    .unwrap();
    assert_eq!(out.status, poll_status::APPROVED);
    let c = out.credential.unwrap();
    assert_eq!(
        c.access_token.as_str(),
        KEY,
        "the key, trimmed, is the access token"
    );
    assert_eq!(
        (c.expires_at_ms, c.refresh_token.as_str()),
        (0, ""),
        "keys do not expire or refresh"
    );
    assert_eq!(c.region.as_str(), "global");
    assert!(
        fake.requests().is_empty(),
        "signing in with a key makes no request"
    );
    assert!(fake.logs().iter().all(|(_, l)| !l.contains(KEY)));
}

#[test]
fn aliases_open_minimax_cn_and_its_key_is_for_the_cn_region() {
    let fake = FakeHost::default();
    for id in ["minimax-cn", "minimax-china", "MINIMAX_CN"] {
        let out = sign_in(&open(id, &fake), "cn", &key_options(KEY)).unwrap();
        let c = out.credential.unwrap();
        assert_eq!(
            (c.region.as_str(), c.base_url.as_str()),
            ("cn", "https://api.minimaxi.com/anthropic"),
            "{id}"
        );
    }
}

#[test]
fn the_other_region_is_refused_with_the_provider_that_serves_it() {
    let fake = FakeHost::default();
    let err = sign_in(&open("minimax", &fake), "cn", &key_options(KEY)).unwrap_err();
    assert_eq!(err.kind, kind::INVALID_INPUT);
    assert_eq!(
        err.message.as_str(),
        "MiniMax serves region global only, not \"cn\"; for region cn use provider minimax-cn"
    );
}

#[test]
fn no_key_says_how_to_give_one_and_a_bad_key_is_not_echoed() {
    let fake = FakeHost::default();
    let handle = open("minimax", &fake);
    let err = sign_in(&handle, "", "{}").unwrap_err();
    assert_eq!(err.code.as_str(), "no_api_key");
    assert_eq!(
        err.message.as_str(),
        "no API key given: pipe one in with `hermes auth add minimax --api-key-stdin`, or set MINIMAX_API_KEY"
    );
    let err = sign_in(&handle, "", &key_options("sk-one sk-two")).unwrap_err();
    assert_eq!(err.kind, kind::INVALID_INPUT);
    assert!(!err.message.contains("sk-one"), "{}", err.message);
}

#[test]
fn the_declared_variable_supplies_the_key_when_none_is_piped() {
    let fake = FakeHost::default();
    fake.set_config("MINIMAX_CN_API_KEY", KEY);
    let out = sign_in(&open("minimax-cn", &fake), "", "").unwrap();
    assert_eq!(out.credential.unwrap().access_token.as_str(), KEY);
    // A piped key wins over the variable.
    let out = sign_in(
        &open("minimax-cn", &fake),
        "",
        &key_options("sk-piped-0123456789"),
    )
    .unwrap();
    assert_eq!(
        out.credential.unwrap().access_token.as_str(),
        "sk-piped-0123456789"
    );
}

#[test]
fn the_runtime_sends_the_key_as_x_api_key_to_the_anthropic_endpoint() {
    let fake = FakeHost::default();
    let handle = open("minimax", &fake);
    let cred = sign_in(&handle, "", &key_options(KEY))
        .unwrap()
        .credential
        .unwrap();
    let rt = handle.runtime.as_ref().unwrap();
    assert!(!rt.needs_refresh(&cred, i64::MAX));
    let r = rt.runtime(&cred).unwrap();
    assert_eq!(r.auth_scheme, auth_scheme::X_API_KEY);
    assert_eq!(r.secret.as_str(), KEY);
    assert_eq!(r.base_url.as_str(), "https://api.minimax.io/anthropic");
    assert_eq!(r.extra_headers[0].0.as_str(), "anthropic-version");
    assert!(!format!("{r:?}").contains(KEY));

    let cn = open("minimax-cn", &fake);
    let r = cn.runtime.as_ref().unwrap().runtime(&cred).unwrap();
    assert_eq!(r.base_url.as_str(), "https://api.minimaxi.com/anthropic");
}

#[test]
fn the_url_override_points_the_runtime_elsewhere() {
    let fake = FakeHost::default();
    fake.set_config("MINIMAX_BASE_URL", "http://127.0.0.1:9999/anthropic/");
    let handle = open("minimax", &fake);
    let cred = Credential {
        access_token: KEY.into(),
        ..Default::default()
    };
    let r = handle.runtime.as_ref().unwrap().runtime(&cred).unwrap();
    assert_eq!(r.base_url.as_str(), "http://127.0.0.1:9999/anthropic");
}

#[test]
fn a_rejected_key_is_terminal_but_keeps_the_login() {
    let fake = FakeHost::default();
    let handle = open("minimax", &fake);
    let err = handle
        .runtime
        .as_ref()
        .unwrap()
        .refresh(&Credential {
            access_token: KEY.into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.kind, kind::TERMINAL);
    assert!(!err.relogin_required, "a 401 must not wipe the stored key");
    assert!(err
        .message
        .contains("hermes auth add minimax --api-key-stdin"));
    let err = handle
        .runtime
        .as_ref()
        .unwrap()
        .runtime(&Credential::default())
        .unwrap_err();
    assert!(err.relogin_required && err.code.as_str() == "not_logged_in");
}

#[test]
fn status_shows_a_masked_key_and_makes_no_request() {
    let fake = FakeHost::default();
    let handle = open("minimax-cn", &fake);
    let cred = Credential {
        access_token: KEY.into(),
        ..Default::default()
    };
    let r = handle.status.status(ROption::RSome(&cred), 0);
    assert_eq!(r.state, status_state::VALID);
    assert_eq!(
        r.summary.as_str(),
        "logged in with API key sk-…cdef, region cn (China)"
    );
    assert_eq!(r.region.as_str(), "cn");
    let r = handle.status.status(ROption::RNone, 0);
    assert_eq!(r.state, status_state::NOT_LOGGED_IN);
    assert_eq!(
        r.problems[0].as_str(),
        "no API key: run `hermes auth add minimax-cn --api-key-stdin` (or set MINIMAX_CN_API_KEY)"
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn an_unknown_provider_id_is_refused() {
    let fake = FakeHost::default();
    match (root_module::<MiniMaxApiKey>().provider())("minimax-oauth".into(), fake.host_box()) {
        RResult::RErr(e) => assert_eq!(e.code.as_str(), "unknown_provider"),
        RResult::ROk(_) => panic!("minimax-oauth belongs to another plugin"),
    }
}
