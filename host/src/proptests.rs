//! Property tests over every parser of untrusted input in the host: server-sent events,
//! `auth.json`, `config.yaml`, `plugins.json` and plugin descriptors. Each runs a fixed number
//! of cases (see `CASES`); none may panic, and every failure must be a typed error.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::auth::pool::{self, Slot};
use crate::auth::AuthFile;
use crate::chat::sse::{Event, Parser};
use crate::config::Settings;
use crate::plugins::descriptor::{self, PluginDesc};
use crate::plugins::manifest::Manifest;
use crate::plugins::registry::{PluginProviders, Registry};
use hermes_plugin_api::{ModelInfo, PluginInfo, ProviderInfo, RegionInfo, UrlOverride};

const CASES: u32 = 2_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const KEYS: &[&str] = &[
    "version",
    "providers",
    "credential_pool",
    "suppressed_sources",
    "active_provider",
    "minimax-oauth",
    "access_token",
    "refresh_token",
    "expires_at",
    "expires_at_ms",
    "id",
    "label",
    "source",
    "priority",
    "oauth",
    "manual:minimax_oauth",
    "last_auth_error",
    "region",
    "plugins",
    "path",
    "sha256",
    "enabled",
];

/// Any JSON, biased towards the keys the parsers look at.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
        "(2026|1970|9999|0000)-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|\\+00:00|-99:99)"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![prop::sample::select(KEYS).prop_map(String::from), ".{0,8}"],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sse_never_panics_on_any_bytes_split_anywhere(bytes in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let mut p = Parser::new(256);
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort();
        for c in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            if p.push(&bytes[at..c.max(at)]).is_err() {
                return Ok(());
            }
            at = c.max(at);
        }
        let _ = p.finish();
    }

    #[test]
    fn sse_events_survive_any_split(events in prop::collection::vec(("[a-z_]{1,12}", "[ -~]{0,40}"), 1..8), cut in any::<usize>(), crlf in any::<bool>()) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let text: String = events.iter().map(|(e, d)| format!("event: {e}{nl}data: {d}{nl}{nl}")).collect();
        let cut = cut % (text.len() + 1);
        let mut p = Parser::default();
        let mut got = p.push(&text.as_bytes()[..cut]).unwrap();
        got.extend(p.push(&text.as_bytes()[cut..]).unwrap());
        got.extend(p.finish().unwrap());
        let want: Vec<Event> = events.iter().map(|(e, d)| Event { event: e.clone(), data: d.clone() }).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn auth_json_any_bytes_is_an_error_or_a_store(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(f) = AuthFile::parse(&bytes) {
            let _ = f.entries("minimax-oauth");
        }
    }

    #[test]
    fn auth_json_any_shape_reads_and_writes_without_panic(v in json()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let Ok(mut f) = AuthFile::parse(&bytes) else { return Ok(()) };
        for provider in ["minimax-oauth", "oauth", "providers"] {
            let entries = f.entries(provider);
            for e in &entries {
                let _ = f.credential(provider, &e.slot);
            }
            let _ = pool::select(&entries, None);
            let _ = pool::find(&entries, "1");
            let err = hermes_plugin_api::PluginError::relogin("refresh_failed", "dead");
            f.quarantine(provider, &Slot::Singleton, &err, 0);
            f.note_transient_failure(provider, &Slot::Pool("x".into()), &err, i64::MAX);
            let _ = f.update_credential(provider, &Slot::Singleton, &hermes_plugin_api::Credential::default());
            f.save_singleton(provider, &hermes_plugin_api::Credential { expires_at_ms: i64::MAX, ..Default::default() });
            let _ = f.add_account(provider, &hermes_plugin_api::Credential::default(), "x");
            f.remove_pool_source(provider, "oauth");
            f.set_suppressed(provider, "oauth", true);
        }
    }

    #[test]
    fn config_yaml_any_text_is_an_error_or_settings(text in "(.|\n){0,200}") {
        if let Ok(mut s) = Settings::parse(Path::new("/x/config.yaml"), &text) {
            let _ = s.model_provider();
            let _ = s.provider_values("minimax-oauth");
            let _ = s.set("model.default", crate::config::yaml::Value::Null);
        }
    }

    #[test]
    fn config_yaml_structured_noise(keys in prop::collection::vec("(model|providers|default|provider|[a-z]{1,5})", 1..5), value in "[ -~]{0,20}", depth in 0usize..4) {
        let mut text = String::new();
        for (i, k) in keys.iter().enumerate() {
            text.push_str(&format!("{}{}: {}\n", "  ".repeat(i.min(depth)), k, if i + 1 == keys.len() { value.as_str() } else { "" }));
        }
        let _ = Settings::parse(Path::new("/x/config.yaml"), &text).map(|s| s.provider_values("provider"));
    }

    #[test]
    fn plugins_json_any_shape_is_an_error_or_a_manifest(v in json(), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Manifest::parse(Path::new("/x/plugins.json"), &v.to_string());
        let _ = Manifest::parse(Path::new("/x/plugins.json"), &String::from_utf8_lossy(&raw));
    }

    #[test]
    fn descriptors_with_odd_strings_validate_and_register(
        ids in prop::collection::vec(".{0,80}", 1..4),
        aliases in prop::collection::vec(".{0,80}", 0..6),
        models in 0usize..=(2 * descriptor::MAX_ITEMS),
        text in ".{0,2000}",
    ) {
        let infos: Vec<ProviderInfo> = ids.iter().map(|id| {
            let flow: String = text.chars().take(12).collect();
            let mut p = ProviderInfo::new(id, &text, &flow, "anthropic_messages");
            p.aliases = aliases.iter().map(|a| a.as_str().into()).collect();
            p.regions = vec![RegionInfo { name: id.as_str().into(), portal_base_url: text.as_str().into(), inference_base_url: "https://x".into() }].into();
            p.models = (0..models).map(|i| ModelInfo { id: format!("m{i}").into(), context_window: u64::MAX, max_output: 0 }).collect();
            p.aux_model = text.as_str().into();
            p.docs_url = text.as_str().into();
            p.allowed_hosts = aliases.iter().map(|a| a.as_str().into()).collect();
            p.url_overrides = vec![UrlOverride { env: text.as_str().into(), target: id.as_str().into() }].into();
            p.refresh_skew_ms = u64::MAX;
            p.extension = serde_json::json!({ "credential_env": aliases }).to_string().into();
            p
        }).collect();
        let info = PluginInfo::new(&ids[0], &text, &text, infos);
        let problems = hermes_plugin_api::validate::plugin_info(&info);
        let desc = PluginDesc::from(&info);
        let providers = desc.providers.clone();
        if models > descriptor::MAX_ITEMS {
            prop_assert!(problems.iter().any(|p| p.contains("more than")));
        }
        let reg = Registry::build([
            PluginProviders { plugin_id: &desc.id, providers: &providers },
            PluginProviders { plugin_id: "second", providers: &providers },
        ]);
        for id in &ids {
            let _ = reg.resolve(id);
        }
        prop_assert!(reg.entries().len() <= ids.len());
    }
}
