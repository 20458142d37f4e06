//! Plugin descriptors in host-native form, and their validation.

use hermes_plugin_api::{api_mode, flow, PluginInfo, ProviderInfo};
use serde::{Deserialize, Serialize};

/// Longest id, alias, region or model name accepted.
pub const MAX_NAME: usize = 64;
/// Longest free text (display name, description, URL) accepted.
pub const MAX_TEXT: usize = 1024;
/// Most models, regions or aliases a provider may declare.
pub const MAX_ITEMS: usize = 512;

/// A provider's region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionDesc {
    /// Name.
    pub name: String,
    /// Portal base URL.
    pub portal_base_url: String,
    /// Inference base URL.
    pub inference_base_url: String,
}

/// A model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDesc {
    /// Id.
    pub id: String,
    /// Context window, tokens.
    pub context_window: u64,
    /// Max output, tokens.
    pub max_output: u64,
}

/// A URL override env var.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlOverrideDesc {
    /// Variable name.
    pub env: String,
    /// `portal` or `inference`.
    pub target: String,
}

/// A provider as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDesc {
    /// Canonical id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Aliases (lower-case).
    pub aliases: Vec<String>,
    /// Flow kind.
    pub flow: String,
    /// Api mode.
    pub api_mode: String,
    /// Regions; the first is the default.
    pub regions: Vec<RegionDesc>,
    /// Models.
    pub models: Vec<ModelDesc>,
    /// Aux model.
    pub aux_model: Option<String>,
    /// Docs URL.
    pub docs_url: String,
    /// Hosts the plugin may reach.
    pub allowed_hosts: Vec<String>,
    /// URL override env vars.
    pub url_overrides: Vec<UrlOverrideDesc>,
    /// Refresh skew, ms.
    pub refresh_skew_ms: u64,
}

/// A plugin as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDesc {
    /// Plugin id.
    pub id: String,
    /// Plugin version.
    pub version: String,
    /// One line.
    pub description: String,
    /// Providers.
    pub providers: Vec<ProviderDesc>,
}

impl From<&ProviderInfo> for ProviderDesc {
    fn from(p: &ProviderInfo) -> Self {
        ProviderDesc {
            id: p.id.to_string(),
            display_name: p.display_name.to_string(),
            aliases: p.aliases.iter().map(|a| a.as_str().to_ascii_lowercase()).collect(),
            flow: p.flow.to_string(),
            api_mode: p.api_mode.to_string(),
            regions: p
                .regions
                .iter()
                .map(|r| RegionDesc {
                    name: r.name.to_string(),
                    portal_base_url: r.portal_base_url.to_string(),
                    inference_base_url: r.inference_base_url.to_string(),
                })
                .collect(),
            models: p
                .models
                .iter()
                .map(|m| ModelDesc {
                    id: m.id.to_string(),
                    context_window: m.context_window,
                    max_output: m.max_output,
                })
                .collect(),
            aux_model: Some(p.aux_model.to_string()).filter(|s| !s.is_empty()),
            docs_url: p.docs_url.to_string(),
            allowed_hosts: p.allowed_hosts.iter().map(|h| h.as_str().to_ascii_lowercase()).collect(),
            url_overrides: p
                .url_overrides
                .iter()
                .map(|o| UrlOverrideDesc {
                    env: o.env.to_string(),
                    target: o.target.to_string(),
                })
                .collect(),
            refresh_skew_ms: p.refresh_skew_ms,
        }
    }
}

impl From<&PluginInfo> for PluginDesc {
    fn from(p: &PluginInfo) -> Self {
        PluginDesc {
            id: p.id.to_string(),
            version: p.version.to_string(),
            description: p.description.to_string(),
            providers: p.providers.iter().map(ProviderDesc::from).collect(),
        }
    }
}

impl ProviderDesc {
    /// The region with this name (case-insensitive), or the default for `None`.
    pub fn region(&self, name: Option<&str>) -> Option<&RegionDesc> {
        match name {
            None => self.regions.first(),
            Some(n) => self.regions.iter().find(|r| r.name.eq_ignore_ascii_case(n)),
        }
    }
    /// The model with this id (case-insensitive).
    pub fn model(&self, id: &str) -> Option<&ModelDesc> {
        self.models.iter().find(|m| m.id.eq_ignore_ascii_case(id))
    }
    /// The command that signs in to this provider.
    pub fn login_command(&self) -> String {
        format!("hermes auth add {}", self.id)
    }
}

/// Whether `s` is a valid canonical id: lower-case ASCII letters, digits and `-`, starting
/// with a letter or digit.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// Whether `s` is a valid alias: like an id, `_` also allowed.
pub fn valid_alias(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

fn valid_url(u: &str) -> bool {
    u.len() <= MAX_TEXT
        && (u.starts_with("https://")
            || u.starts_with("http://127.0.0.1")
            || u.starts_with("http://localhost")
            || u.starts_with("http://[::1]"))
}

/// Problems with a descriptor, one line each. Empty when valid.
pub fn validate(p: &PluginDesc) -> Vec<String> {
    let mut problems = Vec::new();
    if !valid_id(&p.id) {
        problems.push(format!(
            "plugin id {:?} is not valid (lower-case letters, digits and '-', at most {MAX_NAME})",
            clip(&p.id)
        ));
    }
    if semver::Version::parse(&p.version).is_err() {
        problems.push(format!("plugin version {:?} is not semver", clip(&p.version)));
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
    for pr in &p.providers {
        let id = clip(&pr.id);
        if !valid_id(&pr.id) {
            problems.push(format!("provider id {id:?} is not valid"));
        }
        if pr.display_name.is_empty() || pr.display_name.len() > MAX_TEXT {
            problems.push(format!("provider {id}: display name is empty or too long"));
        }
        if pr.aliases.len() > MAX_ITEMS || pr.models.len() > MAX_ITEMS || pr.regions.len() > MAX_ITEMS {
            problems.push(format!("provider {id}: more than {MAX_ITEMS} aliases, models or regions"));
        }
        for a in &pr.aliases {
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
        for r in &pr.regions {
            if r.name.is_empty() || r.name.len() > MAX_NAME {
                problems.push(format!("provider {id}: a region has an empty or overlong name"));
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
        for m in &pr.models {
            if m.id.is_empty() || m.id.len() > MAX_TEXT {
                problems.push(format!("provider {id}: a model has an empty or overlong id"));
            }
        }
        if let Some(aux) = &pr.aux_model {
            if pr.model(aux).is_none() {
                problems.push(format!("provider {id}: aux model {:?} is not among its models", clip(aux)));
            }
        }
        for h in &pr.allowed_hosts {
            if h.is_empty() || h.len() > 253 || h.contains(['/', ':', ' ', '*']) {
                problems.push(format!("provider {id}: allowed host {:?} is not a host name", clip(h)));
            }
        }
        for o in &pr.url_overrides {
            if o.env.is_empty() || !o.env.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                problems.push(format!("provider {id}: override variable {:?} is not valid", clip(&o.env)));
            }
            if o.target != "portal" && o.target != "inference" {
                problems.push(format!("provider {id}: override target {:?} is not portal or inference", clip(&o.target)));
            }
        }
    }
    problems
}

/// At most 64 characters of untrusted text, for messages.
pub fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PluginDesc {
        PluginDesc {
            id: "demo".into(),
            version: "1.2.3".into(),
            description: "d".into(),
            providers: vec![ProviderDesc {
                id: "demo".into(),
                display_name: "Demo".into(),
                aliases: vec!["demo_alias".into()],
                flow: "device_code".into(),
                api_mode: "anthropic_messages".into(),
                regions: vec![RegionDesc {
                    name: "global".into(),
                    portal_base_url: "https://example.com".into(),
                    inference_base_url: "https://example.com/v1".into(),
                }],
                models: vec![ModelDesc { id: "m".into(), context_window: 1, max_output: 1 }],
                aux_model: Some("m".into()),
                docs_url: String::new(),
                allowed_hosts: vec!["example.com".into()],
                url_overrides: vec![],
                refresh_skew_ms: 60_000,
            }],
        }
    }

    #[test]
    fn a_good_descriptor_has_no_problems() {
        assert_eq!(validate(&sample()), Vec::<String>::new());
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut p = sample();
        p.id = "Bad Id".into();
        p.providers[0].flow = "telepathy".into();
        p.providers[0].regions[0].portal_base_url = "http://example.com".into();
        p.providers[0].aux_model = Some("nope".into());
        p.providers[0].aliases.push("a/b".into());
        let problems = validate(&p).join("\n");
        for needle in ["plugin id", "unknown flow kind", "is not https", "aux model", "alias \"a/b\""] {
            assert!(problems.contains(needle), "missing {needle:?} in {problems}");
        }
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
}
