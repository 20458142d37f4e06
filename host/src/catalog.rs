//! The model catalog, from plugin descriptors: which models a provider offers, and how a model
//! name written with a provider prefix is read.

use crate::plugins::registry::Registry;
use crate::plugins::ProviderDesc;

/// `minimax-oauth/MiniMax-M2.7`, `minimax-portal/MiniMax-M2.7` and `minimax-oauth:MiniMax-M2.7`
/// all mean `MiniMax-M2.7` for provider `minimax-oauth`: a `prefix/` or `prefix:` is removed
/// when the prefix resolves (through aliases) to `provider`. Any other name is left alone —
/// model ids may themselves contain `/` or `:`.
pub fn normalize(registry: &Registry, provider: &str, name: &str) -> String {
    let name = name.trim();
    for sep in ['/', ':'] {
        if let Some((prefix, rest)) = name.split_once(sep) {
            let same = registry
                .resolve(prefix)
                .is_some_and(|e| e.provider.id == provider);
            if same && !rest.is_empty() {
                return rest.to_string();
            }
        }
    }
    name.to_string()
}

/// The provider a prefixed model name points at, if its prefix names one.
pub fn provider_of<'a>(registry: &'a Registry, name: &str) -> Option<&'a str> {
    ['/', ':'].iter().find_map(|sep| {
        let (prefix, rest) = name.trim().split_once(*sep)?;
        (!rest.is_empty()).then_some(())?;
        registry.resolve(prefix).map(|e| e.provider.id.as_str())
    })
}

/// The catalog's spelling of a model (case-insensitive match), or `None` when unknown.
pub fn known<'a>(provider: &'a ProviderDesc, model: &str) -> Option<&'a str> {
    provider.model(model).map(|m| m.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::descriptor::{ModelDesc, RegionDesc};
    use crate::plugins::registry::PluginProviders;

    fn registry() -> (Registry, Vec<ProviderDesc>) {
        let p = |id: &str, aliases: &[&str]| ProviderDesc {
            id: id.into(),
            display_name: id.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            flow: "device_code".into(),
            api_mode: "anthropic_messages".into(),
            regions: vec![RegionDesc {
                label: String::new(),
                name: "global".into(),
                portal_base_url: String::new(),
                inference_base_url: String::new(),
            }],
            models: vec![ModelDesc {
                id: "MiniMax-M2.7".into(),
                context_window: 200_000,
                max_output: 131_072,
            }],
            aux_model: None,
            docs_url: String::new(),
            allowed_hosts: vec![],
            url_overrides: vec![],
            refresh_skew_ms: 60_000,
            credential_env: vec![],
        };
        let a = vec![p("minimax-oauth", &["minimax-portal", "minimax_oauth"])];
        let b = vec![p("other", &[])];
        let reg = Registry::build([
            PluginProviders {
                plugin_id: "minimax-oauth",
                providers: &a,
            },
            PluginProviders {
                plugin_id: "other",
                providers: &b,
            },
        ]);
        (reg, a)
    }

    #[test]
    fn prefixes_that_resolve_to_the_provider_are_removed() {
        let (r, _) = registry();
        for name in [
            "minimax-oauth/MiniMax-M2.7",
            "minimax-portal/MiniMax-M2.7",
            "minimax-oauth:MiniMax-M2.7",
            "MINIMAX_OAUTH/MiniMax-M2.7",
            "MiniMax-M2.7",
        ] {
            assert_eq!(
                normalize(&r, "minimax-oauth", name),
                "MiniMax-M2.7",
                "{name}"
            );
        }
    }

    #[test]
    fn other_prefixes_are_left_alone() {
        let (r, _) = registry();
        assert_eq!(
            normalize(&r, "minimax-oauth", "other/MiniMax-M2.7"),
            "other/MiniMax-M2.7"
        );
        assert_eq!(
            normalize(&r, "minimax-oauth", "openai/gpt-x"),
            "openai/gpt-x"
        );
        assert_eq!(
            normalize(&r, "minimax-oauth", "minimax-oauth/"),
            "minimax-oauth/"
        );
        assert_eq!(
            provider_of(&r, "minimax-portal:MiniMax-M2.7"),
            Some("minimax-oauth")
        );
        assert_eq!(provider_of(&r, "MiniMax-M2.7"), None);
    }

    #[test]
    fn known_models_match_case_insensitively() {
        let (_, ps) = registry();
        assert_eq!(known(&ps[0], "minimax-m2.7"), Some("MiniMax-M2.7"));
        assert_eq!(known(&ps[0], "MiniMax-M9"), None);
    }
}
