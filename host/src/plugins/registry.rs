//! The provider registry: canonical ids and aliases across every loaded plugin.
//!
//! Rules: canonical ids are unique (a plugin whose id, or one of whose provider ids, is
//! already taken is refused); aliases are case-insensitive; an alias may not shadow a canonical
//! id or another plugin's alias. A conflict names both plugins and refuses the later alias; the
//! earlier installation always wins, so installing a plugin never changes what existing names
//! mean.

use std::collections::HashMap;

use serde::Serialize;

use super::descriptor::ProviderDesc;

/// A provider in the registry.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The plugin that provides it.
    pub plugin_id: String,
    /// Its descriptor.
    pub provider: ProviderDesc,
    /// The aliases that were accepted.
    pub aliases: Vec<String>,
}

/// A refusal, naming both parties.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The plugin whose name was refused.
    pub plugin: String,
    /// The plugin that holds the name.
    pub holder: String,
    /// The contested name.
    pub name: String,
    /// One line.
    pub message: String,
    /// Whether the whole plugin (or provider) was refused, not just an alias.
    pub refused_plugin: bool,
}

/// Every provider by canonical id and alias.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    entries: Vec<Entry>,
    names: HashMap<String, usize>,
    conflicts: Vec<Conflict>,
}

/// What the registry is built from: plugin id and its providers, in install order.
pub struct PluginProviders<'a> {
    /// Plugin id.
    pub plugin_id: &'a str,
    /// Its providers.
    pub providers: &'a [ProviderDesc],
}

impl Registry {
    /// Build the registry from plugins in install order.
    pub fn build<'a>(plugins: impl IntoIterator<Item = PluginProviders<'a>>) -> Registry {
        let mut reg = Registry::default();
        let mut plugin_ids: HashMap<String, String> = HashMap::new();
        let mut accepted: Vec<(&'a str, &'a [ProviderDesc])> = Vec::new();
        // Pass 1: plugin ids and canonical provider ids, first come first served.
        for p in plugins {
            if let Some(holder) = plugin_ids.get(p.plugin_id) {
                reg.conflicts.push(Conflict {
                    plugin: p.plugin_id.to_string(),
                    holder: holder.clone(),
                    name: p.plugin_id.to_string(),
                    message: format!(
                        "plugin id {} is used by two installed plugins; the second was not loaded",
                        p.plugin_id
                    ),
                    refused_plugin: true,
                });
                continue;
            }
            plugin_ids.insert(p.plugin_id.to_string(), p.plugin_id.to_string());
            accepted.push((p.plugin_id, p.providers));
        }
        for (plugin_id, providers) in &accepted {
            for prov in providers.iter() {
                let key = prov.id.to_ascii_lowercase();
                if let Some(&i) = reg.names.get(&key) {
                    let holder = reg.entries[i].plugin_id.clone();
                    reg.conflicts.push(Conflict {
                        plugin: plugin_id.to_string(),
                        holder: holder.clone(),
                        name: prov.id.clone(),
                        message: format!(
                            "plugin {plugin_id} declares provider {}, which plugin {holder} already provides; {plugin_id}'s provider was refused",
                            prov.id
                        ),
                        refused_plugin: true,
                    });
                    continue;
                }
                reg.names.insert(key, reg.entries.len());
                reg.entries.push(Entry {
                    plugin_id: plugin_id.to_string(),
                    provider: prov.clone(),
                    aliases: Vec::new(),
                });
            }
        }
        // Pass 2: aliases, which may shadow neither a canonical id nor an earlier alias.
        for i in 0..reg.entries.len() {
            let aliases = reg.entries[i].provider.aliases.clone();
            for alias in aliases {
                let key = alias.to_ascii_lowercase();
                match reg.names.get(&key) {
                    Some(&j) if j == i => {}
                    Some(&j) => {
                        let holder = reg.entries[j].plugin_id.clone();
                        let plugin = reg.entries[i].plugin_id.clone();
                        let what = if reg.entries[j].provider.id.eq_ignore_ascii_case(&key) {
                            format!("the provider id of {holder}")
                        } else {
                            format!(
                                "already an alias of {} (plugin {holder})",
                                reg.entries[j].provider.id
                            )
                        };
                        reg.conflicts.push(Conflict {
                            plugin: plugin.clone(),
                            holder,
                            name: key.clone(),
                            message: format!(
                                "alias {key} of {} (plugin {plugin}) is {what}; the alias was refused",
                                reg.entries[i].provider.id
                            ),
                            refused_plugin: false,
                        });
                    }
                    None => {
                        reg.names.insert(key.clone(), i);
                        reg.entries[i].aliases.push(key);
                    }
                }
            }
        }
        reg
    }

    /// The provider named `name` (canonical id or alias, any case).
    pub fn resolve(&self, name: &str) -> Option<&Entry> {
        self.names
            .get(&name.trim().to_ascii_lowercase())
            .map(|&i| &self.entries[i])
    }

    /// Every accepted provider, in install order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every refusal.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Refusals that concern `plugin_id`.
    pub fn conflicts_of<'a>(
        &'a self,
        plugin_id: &'a str,
    ) -> impl Iterator<Item = &'a Conflict> + 'a {
        self.conflicts.iter().filter(move |c| c.plugin == plugin_id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::descriptor::RegionDesc;
    use super::*;

    fn prov(id: &str, aliases: &[&str]) -> ProviderDesc {
        ProviderDesc {
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
            models: vec![],
            aux_model: None,
            docs_url: String::new(),
            allowed_hosts: vec![],
            url_overrides: vec![],
            refresh_skew_ms: 60_000,
            credential_env: vec![],
        }
    }

    fn build(list: &[(&str, Vec<ProviderDesc>)]) -> Registry {
        Registry::build(list.iter().map(|(id, p)| PluginProviders {
            plugin_id: id,
            providers: p,
        }))
    }

    #[test]
    fn aliases_resolve_case_insensitively() {
        let r = build(&[(
            "minimax-oauth",
            vec![prov("minimax-oauth", &["minimax-portal", "MiniMax_OAuth"])],
        )]);
        assert_eq!(
            r.resolve("MINIMAX-PORTAL").unwrap().provider.id,
            "minimax-oauth"
        );
        assert_eq!(
            r.resolve("minimax_oauth").unwrap().provider.id,
            "minimax-oauth"
        );
        assert!(r.resolve("minimax").is_none());
        assert!(r.conflicts().is_empty());
    }

    #[test]
    fn an_alias_may_not_shadow_a_later_canonical_id() {
        let r = build(&[("a", vec![prov("a", &["b"])]), ("b", vec![prov("b", &[])])]);
        assert_eq!(r.resolve("b").unwrap().plugin_id, "b");
        let c = &r.conflicts()[0];
        assert_eq!(
            (c.plugin.as_str(), c.holder.as_str(), c.refused_plugin),
            ("a", "b", false)
        );
        assert!(c.message.contains("the provider id of b"), "{}", c.message);
    }

    #[test]
    fn the_later_alias_is_refused_and_both_plugins_named() {
        let r = build(&[
            ("first", vec![prov("first", &["shared"])]),
            ("second", vec![prov("second", &["Shared", "own"])]),
        ]);
        assert_eq!(r.resolve("shared").unwrap().plugin_id, "first");
        assert_eq!(r.resolve("own").unwrap().plugin_id, "second");
        let msgs: Vec<_> = r.conflicts().iter().map(|c| c.message.clone()).collect();
        assert_eq!(msgs, vec!["alias shared of second (plugin second) is already an alias of first (plugin first); the alias was refused"]);
    }

    #[test]
    fn duplicate_ids_refuse_the_second() {
        let r = build(&[
            ("one", vec![prov("p", &[])]),
            ("one", vec![prov("q", &[])]),
            ("two", vec![prov("p", &["z"])]),
        ]);
        assert!(r.resolve("q").is_none());
        assert!(r.resolve("z").is_none());
        assert_eq!(r.resolve("p").unwrap().plugin_id, "one");
        assert_eq!(r.conflicts().len(), 2);
        assert!(r.conflicts().iter().all(|c| c.refused_plugin));
    }
}
