//! Plugin descriptors in host-native form, and their validation.
//!
//! The rules themselves live in plugin-api ([`hermes_plugin_api::validate`]), so that a
//! plugin author's conformance tests and this host apply one implementation.

use hermes_plugin_api::validate as rules;
use hermes_plugin_api::{PluginInfo, ProviderInfo};
use serde::{Deserialize, Serialize};

pub use hermes_plugin_api::validate::{clip, valid_alias, valid_id, MAX_ITEMS, MAX_NAME, MAX_TEXT};

/// A provider's region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionDesc {
    pub name: String,
    pub portal_base_url: String,
    pub inference_base_url: String,
    /// What people call it ("China" for `cn`), from the descriptor's `region_labels`
    /// extension; empty when the provider names none.
    #[serde(default)]
    pub label: String,
}

impl RegionDesc {
    /// The id with the name people read beside it: `cn (China)`, or the id alone (also when
    /// the name only differs from the id in case).
    pub fn shown(&self) -> String {
        hermes_plugin_sdk::region_shown(&self.name, &self.label)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDesc {
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
    pub display_name: String,
    /// Aliases (lower-case).
    pub aliases: Vec<String>,
    /// Flow kind.
    pub flow: String,
    pub api_mode: String,
    /// Regions; the first is the default.
    pub regions: Vec<RegionDesc>,
    pub models: Vec<ModelDesc>,
    pub aux_model: Option<String>,
    pub docs_url: String,
    /// Hosts the plugin may reach.
    pub allowed_hosts: Vec<String>,
    /// URL override env vars.
    pub url_overrides: Vec<UrlOverrideDesc>,
    pub refresh_skew_ms: u64,
    /// Env vars carrying a credential, declared in the descriptor's `credential_env`
    /// extension; handed to the plugin through `config_get` like URL overrides.
    #[serde(default)]
    pub credential_env: Vec<String>,
}

/// A plugin as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDesc {
    pub id: String,
    pub version: String,
    /// One line.
    pub description: String,
    pub providers: Vec<ProviderDesc>,
}

impl From<&ProviderInfo> for ProviderDesc {
    fn from(p: &ProviderInfo) -> Self {
        let labels = rules::region_labels(p);
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
                    portal_base_url: r.portal_base_url.to_string(),
                    inference_base_url: r.inference_base_url.to_string(),
                    label: labels
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&r.name))
                        .map(|(_, l)| crate::text::line(l, MAX_NAME))
                        .unwrap_or_default(),
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

#[cfg(test)]
impl ProviderDesc {
    /// A device-code provider with one region and nothing else, for tests.
    pub(crate) fn for_test(id: &str, aliases: &[&str]) -> ProviderDesc {
        ProviderDesc {
            id: id.into(),
            display_name: id.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            flow: "device_code".into(),
            api_mode: "anthropic_messages".into(),
            regions: vec![RegionDesc {
                name: "global".into(),
                portal_base_url: String::new(),
                inference_base_url: String::new(),
                label: String::new(),
            }],
            models: vec![],
            aux_model: None,
            docs_url: String::new(),
            allowed_hosts: vec![],
            url_overrides: vec![],
            refresh_skew_ms: 60_000,
            credential_env: vec![],
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
        info.extension = r#"{"region_labels": {"global": "Global", "cn": "China"}}"#.into();
        let d = ProviderDesc::from(&info);
        assert_eq!(d.region_list(), "global, cn (China), eu");
    }

    fn sample() -> PluginInfo {
        let mut p = ProviderInfo::new("demo", "Demo", "device_code", "anthropic_messages");
        p.aliases = vec!["Demo_Alias".into()].into();
        p.regions = vec![hermes_plugin_api::RegionInfo {
            name: "global".into(),
            portal_base_url: "https://example.com".into(),
            inference_base_url: "https://example.com/v1".into(),
        }]
        .into();
        p.models = vec![hermes_plugin_api::ModelInfo {
            id: "m".into(),
            context_window: 1,
            max_output: 1,
        }]
        .into();
        p.aux_model = "m".into();
        p.allowed_hosts = vec!["Example.com".into()].into();
        p.extension = r#"{"credential_env":["DEMO_API_KEY"]}"#.into();
        PluginInfo::new("demo", "1.2.3", "d", vec![p])
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
    fn the_host_form_keeps_every_field_and_lowers_aliases_and_hosts() {
        let d = PluginDesc::from(&sample());
        let p = &d.providers[0];
        assert_eq!((d.id.as_str(), d.version.as_str()), ("demo", "1.2.3"));
        assert_eq!(p.aliases, ["demo_alias"]);
        assert_eq!(p.allowed_hosts, ["example.com"]);
        assert_eq!(
            p.region(None).unwrap().inference_base_url,
            "https://example.com/v1"
        );
        assert_eq!(p.model("M").unwrap().context_window, 1);
        assert_eq!(p.aux_model.as_deref(), Some("m"));
        assert_eq!(p.credential_env, ["DEMO_API_KEY"]);
        assert_eq!(p.refresh_skew_ms, 60_000);
    }

    #[test]
    fn the_sign_in_command_follows_the_flow() {
        let mut d = PluginDesc::from(&sample()).providers.remove(0);
        assert_eq!(d.login_command(), "hermes auth add demo");
        assert_eq!(d.main_login_name(), "oauth");
        d.flow = "api_key".into();
        assert_eq!(
            d.login_command(),
            "hermes auth add demo --api-key-stdin < key.txt"
        );
        assert_eq!(d.main_login_name(), "api-key");
    }
}
