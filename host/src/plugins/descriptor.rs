//! Plugin descriptors in host-native form, and their validation.
//!
//! The rules themselves live in plugin-api ([`hermes_plugin_api::sdk::validate`]), so that a
//! plugin author's conformance tests and this host apply one implementation.

use abi_stable::std_types::{RString, RVec};
use hermes_plugin_api::sdk::validate as rules;
use hermes_plugin_api::{ModelInfo, PluginInfo, ProviderInfo, RegionInfo, UrlOverride};
use serde::{Deserialize, Serialize};

pub use hermes_plugin_api::sdk::validate::{
    clip, valid_alias, valid_id, MAX_ITEMS, MAX_NAME, MAX_TEXT,
};

/// A provider's region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionDesc {
    /// Name.
    pub name: String,
    /// The name people read (`China` for `cn`), from the provider's `region_names`
    /// extension; empty when it gives none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Portal base URL.
    pub portal_base_url: String,
    /// Inference base URL.
    pub inference_base_url: String,
}

impl RegionDesc {
    /// The id with the name people read beside it: `cn (China)`, or the id alone.
    pub fn shown(&self) -> String {
        if self.label.is_empty() || self.label.eq_ignore_ascii_case(&self.name) {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.label)
        }
    }
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
    /// Env vars carrying a credential, declared in the descriptor's `credential_env`
    /// extension; handed to the plugin through `config_get` like URL overrides.
    #[serde(default)]
    pub credential_env: Vec<String>,
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
            aliases: p
                .aliases
                .iter()
                .map(|a| a.as_str().to_ascii_lowercase())
                .collect(),
            flow: p.flow.to_string(),
            api_mode: p.api_mode.to_string(),
            regions: p
                .regions
                .iter()
                .map(|r| RegionDesc {
                    name: r.name.to_string(),
                    label: rules::region_names(p)
                        .remove(r.name.as_str())
                        .map(|l| clip(&l))
                        .unwrap_or_default(),
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
            allowed_hosts: p
                .allowed_hosts
                .iter()
                .map(|h| h.as_str().to_ascii_lowercase())
                .collect(),
            url_overrides: p
                .url_overrides
                .iter()
                .map(|o| UrlOverrideDesc {
                    env: o.env.to_string(),
                    target: o.target.to_string(),
                })
                .collect(),
            refresh_skew_ms: p.refresh_skew_ms,
            credential_env: rules::credential_env(p),
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
    /// Region ids with their names for people: `global, cn (China)` (a name that only differs in case is left out).
    pub fn region_list(&self) -> String {
        self.regions
            .iter()
            .map(RegionDesc::shown)
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// The model with this id (case-insensitive).
    pub fn model(&self, id: &str) -> Option<&ModelDesc> {
        self.models.iter().find(|m| m.id.eq_ignore_ascii_case(id))
    }
    /// The command that signs in to this provider, as its flow needs it: an API key is piped
    /// in (`--api-key-stdin < key.txt`), every other flow runs as is.
    pub fn login_command(&self) -> String {
        if self.flow == hermes_plugin_api::flow::API_KEY {
            format!("hermes auth add {} --api-key-stdin < key.txt", self.id)
        } else {
            format!("hermes auth add {}", self.id)
        }
    }

    /// What people call the main login (pool source `oauth`, kept for the Python hermes
    /// layout): `api-key` for an API-key provider, `oauth` otherwise.
    pub fn main_login_name(&self) -> &'static str {
        if self.flow == hermes_plugin_api::flow::API_KEY {
            "api-key"
        } else {
            "oauth"
        }
    }
}

impl From<&ProviderDesc> for ProviderInfo {
    fn from(p: &ProviderDesc) -> Self {
        ProviderInfo {
            aliases: p
                .aliases
                .iter()
                .map(|a| RString::from(a.as_str()))
                .collect(),
            regions: p
                .regions
                .iter()
                .map(|r| RegionInfo {
                    name: r.name.as_str().into(),
                    portal_base_url: r.portal_base_url.as_str().into(),
                    inference_base_url: r.inference_base_url.as_str().into(),
                })
                .collect(),
            models: p
                .models
                .iter()
                .map(|m| ModelInfo {
                    id: m.id.as_str().into(),
                    context_window: m.context_window,
                    max_output: m.max_output,
                })
                .collect(),
            aux_model: p.aux_model.as_deref().unwrap_or("").into(),
            docs_url: p.docs_url.as_str().into(),
            allowed_hosts: p
                .allowed_hosts
                .iter()
                .map(|h| RString::from(h.as_str()))
                .collect(),
            url_overrides: p
                .url_overrides
                .iter()
                .map(|o| UrlOverride {
                    env: o.env.as_str().into(),
                    target: o.target.as_str().into(),
                })
                .collect(),
            refresh_skew_ms: p.refresh_skew_ms,
            extension: {
                let mut ext = serde_json::Map::new();
                if !p.credential_env.is_empty() {
                    ext.insert(
                        rules::CREDENTIAL_ENV_KEY.into(),
                        serde_json::json!(p.credential_env),
                    );
                }
                let names: serde_json::Map<String, serde_json::Value> = p
                    .regions
                    .iter()
                    .filter(|r| !r.label.is_empty())
                    .map(|r| (r.name.clone(), serde_json::json!(r.label)))
                    .collect();
                if !names.is_empty() {
                    ext.insert(rules::REGION_NAMES_KEY.into(), names.into());
                }
                if ext.is_empty() {
                    RString::new()
                } else {
                    serde_json::Value::Object(ext).to_string().into()
                }
            },
            ..ProviderInfo::new(&p.id, &p.display_name, &p.flow, &p.api_mode)
        }
    }
}

impl From<&PluginDesc> for PluginInfo {
    fn from(p: &PluginDesc) -> Self {
        let providers: RVec<ProviderInfo> = p.providers.iter().map(ProviderInfo::from).collect();
        PluginInfo {
            providers,
            ..PluginInfo::new(&p.id, &p.version, &p.description, Vec::new())
        }
    }
}

/// Problems with a descriptor, one line each. Empty when valid.
pub fn validate(p: &PluginDesc) -> Vec<String> {
    rules::plugin_info(&PluginInfo::from(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_shown_with_the_names_the_provider_gives_them() {
        let mut info =
            hermes_plugin_api::ProviderInfo::new("p", "P", "device_code", "anthropic_messages");
        for name in ["global", "cn", "eu"] {
            info.regions.push(hermes_plugin_api::RegionInfo {
                name: name.into(),
                portal_base_url: "https://x.example".into(),
                inference_base_url: "https://x.example".into(),
            });
        }
        info.extension = r#"{"region_names": {"global": "Global", "cn": "China"}}"#.into();
        let d = ProviderDesc::from(&info);
        assert_eq!(d.region_list(), "global, cn (China), eu");
        // The names survive the way back to the ABI form.
        let back = ProviderInfo::from(&d);
        assert_eq!(
            ProviderDesc::from(&back).region_list(),
            "global, cn (China), eu"
        );
    }

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
                    label: String::new(),
                    name: "global".into(),
                    portal_base_url: "https://example.com".into(),
                    inference_base_url: "https://example.com/v1".into(),
                }],
                models: vec![ModelDesc {
                    id: "m".into(),
                    context_window: 1,
                    max_output: 1,
                }],
                aux_model: Some("m".into()),
                docs_url: String::new(),
                allowed_hosts: vec!["example.com".into()],
                url_overrides: vec![],
                refresh_skew_ms: 60_000,
                credential_env: vec!["DEMO_API_KEY".into()],
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
        for needle in [
            "plugin id",
            "unknown flow kind",
            "is not https",
            "aux model",
            "alias \"a/b\"",
        ] {
            assert!(
                problems.contains(needle),
                "missing {needle:?} in {problems}"
            );
        }
    }

    #[test]
    fn the_shared_rules_agree_with_semver() {
        for v in [
            "0.1.0",
            "1.0.0-rc.1",
            "1.0.0+b.7",
            "01.0.0",
            "1.0",
            "1.0.0-",
            "1.0.0-01",
            "v1.0.0",
            "1.2.3.4",
        ] {
            assert_eq!(
                rules::is_semver(v),
                semver::Version::parse(v).is_ok(),
                "{v}"
            );
        }
    }

    #[test]
    fn a_descriptor_survives_the_round_trip_through_plugin_info() {
        let d = sample();
        assert_eq!(PluginDesc::from(&PluginInfo::from(&d)), d);
    }

    #[test]
    fn the_sign_in_command_follows_the_flow() {
        let mut d = sample().providers.remove(0);
        assert_eq!(d.login_command(), "hermes auth add demo");
        assert_eq!(d.main_login_name(), "oauth");
        d.flow = "api_key".into();
        assert_eq!(
            d.login_command(),
            "hermes auth add demo --api-key-stdin < key.txt"
        );
        assert_eq!(d.main_login_name(), "api-key");
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
