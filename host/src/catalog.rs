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

/// Why `model` is not a model hermes knows, naming the models that are; `None` when it is
/// known. With `provider` (an installed provider's id or alias) the model is looked up in that
/// provider's catalog (a `provider/` prefix naming it is allowed); without, in every installed
/// provider's. `None` too when no installed provider declares any model: nothing to check
/// against.
pub fn unknown_model(registry: &Registry, provider: Option<&str>, model: &str) -> Option<String> {
    let list = |models: &mut dyn Iterator<Item = &str>| models.collect::<Vec<_>>().join(", ");
    let shown = crate::text::line(model.trim(), 64);
    if let Some(e) = provider.and_then(|p| registry.resolve(p)) {
        let d = &e.provider;
        if d.models.is_empty() || known(d, &normalize(registry, &d.id, model)).is_some() {
            return None;
        }
        return Some(format!(
            "{shown} is not among {}'s known models ({})",
            d.display_name,
            list(&mut d.models.iter().map(|m| m.id.as_str()))
        ));
    }
    let entries = registry.entries();
    if entries.iter().all(|e| e.provider.models.is_empty())
        || entries
            .iter()
            .any(|e| known(&e.provider, &normalize(registry, &e.provider.id, model)).is_some())
    {
        return None;
    }
    let all: Vec<String> = entries
        .iter()
        .flat_map(|e| {
            let id = &e.provider.id;
            e.provider
                .models
                .iter()
                .map(move |m| format!("{id}/{}", m.id))
        })
        .collect();
    Some(format!(
        "no installed provider declares the model {shown} (known models: {})",
        all.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::descriptor::ModelDesc;
    use crate::plugins::registry::PluginProviders;

    fn registry() -> (Registry, Vec<ProviderDesc>) {
        let p = |id: &str, aliases: &[&str]| ProviderDesc {
            models: vec![ModelDesc {
                id: "MiniMax-M2.7".into(),
                context_window: 200_000,
                max_output: 131_072,
            }],
            ..ProviderDesc::for_test(id, aliases)
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

    #[test]
    fn unknown_models_are_named_with_the_known_ones() {
        let (r, _) = registry();
        assert_eq!(
            unknown_model(&r, Some("minimax-portal"), "minimax-m2.7"),
            None
        );
        assert_eq!(
            unknown_model(&r, Some("minimax-oauth"), "minimax-oauth/MiniMax-M2.7"),
            None
        );
        assert_eq!(
            unknown_model(&r, Some("minimax-oauth"), "MiniMax-M9").as_deref(),
            Some("MiniMax-M9 is not among minimax-oauth's known models (MiniMax-M2.7)")
        );
        assert_eq!(unknown_model(&r, None, "MiniMax-M2.7"), None);
        assert_eq!(
            unknown_model(&r, None, "gpt-4").as_deref(),
            Some("no installed provider declares the model gpt-4 (known models: minimax-oauth/MiniMax-M2.7, other/MiniMax-M2.7)")
        );
        let empty = Registry::build([]);
        assert_eq!(unknown_model(&empty, None, "gpt-4"), None);
    }
}
