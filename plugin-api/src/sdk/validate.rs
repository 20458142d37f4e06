//! The descriptor rules: what makes a [`PluginInfo`] acceptable to a host.
//!
//! This is the one implementation of them. The host refuses to install or load a plugin for
//! which [`plugin_info`] reports anything, and the conformance checks ([`super::check`]) run the
//! same function, so an author sees the host's verdict in their own `cargo test`.
//!
//! Pure `std`: no feature needed.

use crate::{api_mode, flow, PluginInfo, ProviderInfo};

/// Longest id, alias, region or model name accepted.
pub const MAX_NAME: usize = 64;
/// Longest free text (display name, description, URL) accepted.
pub const MAX_TEXT: usize = 1024;
/// Most models, regions or aliases a provider may declare.
pub const MAX_ITEMS: usize = 512;

/// Whether `s` is a valid canonical id (plugin or provider): lower-case ASCII letters, digits
/// and `-`, starting with a letter or digit, at most [`MAX_NAME`] bytes.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// Whether `s` is a valid alias: like an id, with `_` and upper case also allowed (aliases are
/// matched case-insensitively).
pub fn valid_alias(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// Whether `u` is an acceptable base URL: https, or http to a loopback host.
pub fn valid_url(u: &str) -> bool {
    u.len() <= MAX_TEXT
        && (u.starts_with("https://")
            || u.starts_with("http://127.0.0.1")
            || u.starts_with("http://localhost")
            || u.starts_with("http://[::1]"))
}

/// Whether `s` is an acceptable environment variable name: `A-Z`, `0-9` and `_`.
pub fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `s` is a semantic version (semver 2.0: `MAJOR.MINOR.PATCH`, optional
/// `-pre.release` and `+build`, no leading zeros in numbers).
pub fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |n: &str| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    let ident =
        |i: &str| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p) && p.len() <= 20)
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|i| ident(i) && (!i.bytes().all(|b| b.is_ascii_digit()) || numeric(i)))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// At most 64 characters of untrusted text, without control characters, for messages.
pub fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Problems with a plugin descriptor, one line each. Empty when valid.
pub fn plugin_info(p: &PluginInfo) -> Vec<String> {
    let mut problems = Vec::new();
    if !valid_id(&p.id) {
        problems.push(format!(
            "plugin id {:?} is not valid (lower-case letters, digits and '-', at most {MAX_NAME})",
            clip(&p.id)
        ));
    }
    if !is_semver(&p.version) {
        problems.push(format!(
            "plugin version {:?} is not semver",
            clip(&p.version)
        ));
    }
    if p.description.len() > MAX_TEXT {
        problems.push("plugin description is longer than 1024 bytes".into());
    }
    if p.providers.is_empty() {
        problems.push("plugin declares no provider".into());
    }
    if p.providers.len() > MAX_ITEMS {
        problems.push(format!("plugin declares more than {MAX_ITEMS} providers"));
    }
    for (i, pr) in p.providers.iter().enumerate() {
        provider_info(pr, &mut problems);
        // Names the registry would refuse anyway, caught where the author can fix them.
        let earlier = &p.providers[..i];
        if earlier
            .iter()
            .any(|o| o.id.as_str().eq_ignore_ascii_case(&pr.id))
        {
            problems.push(format!("provider id {:?} is declared twice", clip(&pr.id)));
        }
        for a in pr.aliases.iter() {
            let clash = p.providers.iter().enumerate().any(|(j, o)| {
                j != i
                    && (o.id.as_str().eq_ignore_ascii_case(a)
                        || o.aliases.iter().any(|b| b.as_str().eq_ignore_ascii_case(a)))
            });
            if clash {
                problems.push(format!(
                    "provider {}: alias {:?} also names another provider of this plugin",
                    clip(&pr.id),
                    clip(a)
                ));
            }
        }
    }
    problems
}

fn provider_info(pr: &ProviderInfo, problems: &mut Vec<String>) {
    let id = clip(&pr.id);
    if !valid_id(&pr.id) {
        problems.push(format!("provider id {id:?} is not valid"));
    }
    if pr.display_name.is_empty() || pr.display_name.len() > MAX_TEXT {
        problems.push(format!("provider {id}: display name is empty or too long"));
    }
    if pr.aliases.len() > MAX_ITEMS || pr.models.len() > MAX_ITEMS || pr.regions.len() > MAX_ITEMS {
        problems.push(format!(
            "provider {id}: more than {MAX_ITEMS} aliases, models or regions"
        ));
    }
    for a in pr.aliases.iter() {
        if !valid_alias(a) {
            problems.push(format!("provider {id}: alias {:?} is not valid", clip(a)));
        }
    }
    if !flow::ALL.contains(&pr.flow.as_str()) {
        problems.push(format!(
            "provider {id}: unknown flow kind {:?} (this hermes knows {})",
            clip(&pr.flow),
            flow::ALL.join(", ")
        ));
    }
    if !api_mode::ALL.contains(&pr.api_mode.as_str()) {
        problems.push(format!(
            "provider {id}: unknown api mode {:?} (this hermes knows {})",
            clip(&pr.api_mode),
            api_mode::ALL.join(", ")
        ));
    }
    if pr.regions.is_empty() {
        problems.push(format!("provider {id}: declares no region"));
    }
    for r in pr.regions.iter() {
        if r.name.is_empty() || r.name.len() > MAX_NAME {
            problems.push(format!(
                "provider {id}: a region has an empty or overlong name"
            ));
        }
        for u in [&r.portal_base_url, &r.inference_base_url] {
            if !u.is_empty() && !valid_url(u) {
                problems.push(format!(
                    "provider {id}: region {}: URL {:?} is not https",
                    clip(&r.name),
                    clip(u)
                ));
            }
        }
    }
    for m in pr.models.iter() {
        if m.id.is_empty() || m.id.len() > MAX_TEXT {
            problems.push(format!(
                "provider {id}: a model has an empty or overlong id"
            ));
        }
    }
    if !pr.aux_model.is_empty()
        && !pr
            .models
            .iter()
            .any(|m| m.id.as_str().eq_ignore_ascii_case(&pr.aux_model))
    {
        problems.push(format!(
            "provider {id}: aux model {:?} is not among its models",
            clip(&pr.aux_model)
        ));
    }
    for h in pr.allowed_hosts.iter() {
        if h.is_empty() || h.len() > 253 || h.contains(['/', ':', ' ', '*']) {
            problems.push(format!(
                "provider {id}: allowed host {:?} is not a host name",
                clip(h)
            ));
        }
    }
    for o in pr.url_overrides.iter() {
        if !valid_env_name(&o.env) {
            problems.push(format!(
                "provider {id}: override variable {:?} is not valid",
                clip(&o.env)
            ));
        }
        if o.target.as_str() != "portal" && o.target.as_str() != "inference" {
            problems.push(format!(
                "provider {id}: override target {:?} is not portal or inference",
                clip(&o.target)
            ));
        }
    }
    if !pr.extension.trim().is_empty() {
        match serde_json::from_str::<serde_json::Value>(&pr.extension) {
            Ok(v) if v.is_object() => {
                for name in declared_env(&v) {
                    if !valid_env_name(&name) {
                        problems.push(format!(
                            "provider {id}: declared variable {:?} is not valid",
                            clip(&name)
                        ));
                    }
                }
            }
            _ => problems.push(format!("provider {id}: extension is not a JSON object")),
        }
    }
}

/// The key of [`ProviderInfo::extension`] under which a provider declares the environment
/// variables that carry a credential (`{"credential_env": ["MINIMAX_API_KEY"]}`). A host that
/// knows the key hands their values to the plugin through `config_get`, like URL overrides.
pub const CREDENTIAL_ENV_KEY: &str = "credential_env";

/// The key of [`ProviderInfo::extension`] under which a provider names its regions for people
/// (`{"region_names": {"global": "Global", "cn": "China"}}`); hosts show them beside the ids.
pub const REGION_NAMES_KEY: &str = "region_names";

/// The names a provider gives its regions (see [`REGION_NAMES_KEY`]), by region id; empty when
/// none or when the extension is not valid JSON.
pub fn region_names(pr: &ProviderInfo) -> std::collections::BTreeMap<String, String> {
    serde_json::from_str::<serde_json::Value>(&pr.extension)
        .ok()
        .and_then(|v| v.get(REGION_NAMES_KEY)?.as_object().cloned())
        .map(|m| {
            m.into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The credential variables a provider declares in its extension (see [`CREDENTIAL_ENV_KEY`]);
/// empty when none or when the extension is not valid JSON.
pub fn credential_env(pr: &ProviderInfo) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(&pr.extension)
        .map(|v| declared_env(&v))
        .unwrap_or_default()
}

fn declared_env(v: &serde_json::Value) -> Vec<String> {
    v.get(CREDENTIAL_ENV_KEY)
        .and_then(|l| l.as_array())
        .map(|l| {
            l.iter()
                .map(|n| n.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelInfo, RegionInfo};

    fn sample() -> PluginInfo {
        let mut p = ProviderInfo::new(
            "demo",
            "Demo",
            flow::DEVICE_CODE,
            api_mode::ANTHROPIC_MESSAGES,
        );
        p.aliases = vec!["demo_alias".into()].into();
        p.regions.push(RegionInfo {
            name: "global".into(),
            portal_base_url: "https://example.com".into(),
            inference_base_url: "https://example.com/v1".into(),
        });
        p.models.push(ModelInfo {
            id: "m".into(),
            context_window: 1,
            max_output: 1,
        });
        p.aux_model = "m".into();
        p.allowed_hosts.push("example.com".into());
        PluginInfo::new("demo", "1.2.3", "d", vec![p])
    }

    #[test]
    fn a_good_descriptor_has_no_problems() {
        assert_eq!(plugin_info(&sample()), Vec::<String>::new());
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut p = sample();
        p.id = "Bad Id".into();
        let pr = &mut p.providers[0];
        pr.flow = "telepathy".into();
        pr.regions[0].portal_base_url = "http://example.com".into();
        pr.aux_model = "nope".into();
        pr.aliases.push("a/b".into());
        pr.extension = "[1]".into();
        let problems = plugin_info(&p).join("\n");
        for needle in [
            "plugin id",
            "unknown flow kind",
            "is not https",
            "aux model",
            "alias \"a/b\"",
            "extension is not a JSON object",
        ] {
            assert!(
                problems.contains(needle),
                "missing {needle:?} in {problems}"
            );
        }
    }

    #[test]
    fn names_clashing_inside_one_plugin_are_problems() {
        let mut p = sample();
        let mut other = p.providers[0].clone();
        other.aliases = vec!["DEMO".into()].into();
        p.providers.push(other);
        let problems = plugin_info(&p).join("\n");
        assert!(
            problems.contains("provider id \"demo\" is declared twice"),
            "{problems}"
        );
        assert!(
            problems.contains("alias \"DEMO\" also names another provider"),
            "{problems}"
        );
    }

    #[test]
    fn declared_credential_variables_are_read_and_checked() {
        let mut p = sample();
        p.providers[0].extension = r#"{"credential_env": ["MINIMAX_API_KEY"], "future": 1}"#.into();
        assert!(plugin_info(&p).is_empty());
        assert_eq!(credential_env(&p.providers[0]), ["MINIMAX_API_KEY"]);
        p.providers[0].extension = r#"{"credential_env": ["lower", 3]}"#.into();
        let problems = plugin_info(&p).join("\n");
        assert!(
            problems.contains("declared variable \"lower\""),
            "{problems}"
        );
        assert!(problems.contains("declared variable \"\""), "{problems}");
    }

    #[test]
    fn ids_and_aliases() {
        assert!(valid_id("minimax-oauth"));
        assert!(!valid_id("minimax_oauth"));
        assert!(!valid_id("-x"));
        assert!(valid_alias("minimax_oauth"));
        assert!(!valid_alias(""));
        assert!(!valid_alias(&"a".repeat(65)));
    }

    #[test]
    fn semver_follows_the_spec() {
        for ok in [
            "0.1.0",
            "1.0.0",
            "10.20.30",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0+build.5",
            "1.0.0-rc-1+x",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "v1.0.0",
            "1.0.0-a..b",
            "1.x.0",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
