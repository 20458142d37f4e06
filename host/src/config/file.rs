//! `HERMES_HOME/config.yaml`: `model.provider`, `model.default` and per-provider settings under
//! `providers.<id>` (`region`, `portal_base_url`, `inference_base_url`, `account`).
//!
//! The file is kept as a YAML tree so that keys this version does not know survive a rewrite.
//! A malformed file is an error that names the line and column; it is never overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::yaml::{self, Mapping, Value};

use super::{ConfigError, Paths};
use crate::error::Result;
use crate::fsutil;

/// The most levels a key given to `hermes config set` may have. Every key hermes reads has
/// at most four (`providers.<id>.<setting>`); a deeper tree only makes later reads fail.
pub const MAX_KEY_DEPTH: usize = 8;

/// The parsed configuration file.
#[derive(Clone, Debug)]
pub struct Settings {
    path: PathBuf,
    root: Value,
}

impl Settings {
    /// Read `config.yaml` (an absent file is an empty configuration).
    pub fn load(paths: &Paths) -> Result<Settings> {
        let path = paths.config_yaml();
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::empty(&path)),
            Err(source) => Err(ConfigError::Unreadable { path, source }.into()),
        }
    }

    /// An empty configuration that would be saved at `path`.
    pub fn empty(path: &Path) -> Settings {
        Settings {
            path: path.to_path_buf(),
            root: Value::Mapping(Mapping::new()),
        }
    }

    /// Parse `text` as the file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Settings> {
        if text.trim().is_empty() {
            return Ok(Settings::empty(path));
        }
        let root = yaml::from_str(text).map_err(|e| {
            let (at, why) = yaml::describe(&e);
            ConfigError::InvalidYaml {
                path: path.to_path_buf(),
                at,
                why,
            }
        })?;
        match root {
            Value::Mapping(_) => Ok(Settings {
                path: path.to_path_buf(),
                root,
            }),
            Value::Null => Ok(Settings::empty(path)),
            _ => Err(ConfigError::NotMapping {
                path: path.to_path_buf(),
            }
            .into()),
        }
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value at a dotted key (`model.default`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        key.split('.')
            .try_fold(&self.root, |v, part| v.as_mapping()?.get(part))
    }

    /// A scalar at a dotted key, as text.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key)?.scalar_text()
    }

    /// Set a dotted key, creating the mappings on the way.
    pub fn set(&mut self, key: &str, value: Value) -> Result<()> {
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::InvalidKey { key: key.into() }.into());
        }
        if parts.len() > MAX_KEY_DEPTH {
            return Err(ConfigError::KeyTooDeep {
                levels: parts.len(),
            }
            .into());
        }
        let mut cur = &mut self.root;
        for (i, part) in parts.iter().enumerate() {
            let Some(map) = cur.as_mapping_mut() else {
                let so_far = parts[..i].join(".");
                return Err(ConfigError::NotAMappingAt {
                    key: so_far,
                    path: self.path.clone(),
                }
                .into());
            };
            if i == parts.len() - 1 {
                map.insert(part, value);
                return Ok(());
            }
            cur = map.get_or_insert_with(part, || Value::Mapping(Mapping::new()));
        }
        Ok(())
    }

    /// Write the file atomically (0600).
    pub fn save(&self) -> Result<()> {
        let text = yaml::to_string(&self.root).map_err(|e| ConfigError::Encode(e.to_string()))?;
        if let Some(dir) = self.path.parent() {
            fsutil::create_private_dir(dir).map_err(|source| ConfigError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        fsutil::write_atomic(&self.path, text.as_bytes(), 0o600).map_err(|source| {
            ConfigError::Write {
                path: self.path.clone(),
                source,
            }
            .into()
        })
    }

    /// The scalar settings of one provider (`providers.<id>.*`), as text.
    pub fn provider_values(&self, provider: &str) -> BTreeMap<String, String> {
        let Some(Value::Mapping(m)) = self.get(&format!("providers.{provider}")) else {
            return BTreeMap::new();
        };
        m.iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.scalar_text()?)))
            .collect()
    }

    /// The ids under `providers` that hold settings.
    pub fn provider_ids(&self) -> Vec<String> {
        match self.get("providers") {
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, _)| k.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What a provider's plugin may read through `config_get`: its scalar settings, plus each
    /// URL override it declares (`(env var, target)`) filled from `<target>_base_url` — the
    /// environment variable itself, when set, wins over this later.
    pub fn values_for(
        &self,
        provider: &str,
        overrides: &[(String, String)],
    ) -> BTreeMap<String, String> {
        let mut values = self.provider_values(provider);
        for (env, target) in overrides {
            let configured = values.get(&format!("{target}_base_url")).or_else(|| {
                // `base_url` is the inference base URL by another name.
                (target == "inference")
                    .then(|| values.get("base_url"))
                    .flatten()
            });
            if let Some(v) = configured.cloned() {
                values.insert(env.clone(), v);
            }
        }
        values
    }

    pub fn model_provider(&self) -> Option<String> {
        self.get_str("model.provider").filter(|s| !s.is_empty())
    }

    pub fn model_default(&self) -> Option<String> {
        self.get_str("model.default").filter(|s| !s.is_empty())
    }
}

/// Parse a command-line value as YAML (`true`, `3`, `[a, b]`), falling back to a string.
pub fn parse_value(text: &str) -> Value {
    yaml::from_str(text)
        .ok()
        .filter(|v| *v != Value::Null || text.trim() == "null")
        .unwrap_or_else(|| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings> {
        Settings::parse(Path::new("/x/config.yaml"), text)
    }

    #[test]
    fn unknown_keys_survive_a_rewrite() {
        let mut s =
            parse("model:\n  provider: a\n  api_mode: chat_completions\nui:\n  theme: dark\n")
                .unwrap();
        s.set("model.default", Value::String("m".into())).unwrap();
        let text = yaml::to_string(&s.root).unwrap();
        assert!(text.contains("theme: dark"), "{text}");
        assert!(text.contains("api_mode: chat_completions"), "{text}");
        assert_eq!(s.get_str("model.default").as_deref(), Some("m"));
        assert_eq!(s.model_provider().as_deref(), Some("a"));
    }

    #[test]
    fn malformed_yaml_names_line_and_column() {
        let e = parse("model:\n  provider: [unclosed\n").unwrap_err();
        assert!(
            matches!(&e, crate::Error::Config(ConfigError::InvalidYaml { at, .. })
                if at.starts_with(" at line ") && at.contains(" column ")),
            "{e:?}"
        );
        assert!(e.message().contains("is not valid YAML at line"), "{e}");
        let e = parse("- a\n- b\n").unwrap_err();
        assert!(
            matches!(e, crate::Error::Config(ConfigError::NotMapping { .. })),
            "{e:?}"
        );
    }

    #[test]
    fn provider_values_are_scalars_only() {
        let s =
            parse("providers:\n  p:\n    region: cn\n    port: 3\n    nested: {a: 1}\n").unwrap();
        let v = s.provider_values("p");
        assert_eq!(v.get("region").map(String::as_str), Some("cn"));
        assert_eq!(v.get("port").map(String::as_str), Some("3"));
        assert!(!v.contains_key("nested"));
    }

    #[test]
    fn configured_base_urls_fill_the_declared_overrides() {
        let overrides = [("ACME_BASE_URL".to_string(), "inference".to_string())];
        let s = parse("providers:\n  acme:\n    base_url: http://h:1/v1\n").unwrap();
        let v = s.values_for("acme", &overrides);
        assert_eq!(
            v.get("ACME_BASE_URL").map(String::as_str),
            Some("http://h:1/v1")
        );
        let s = parse("providers:\n  acme:\n    base_url: http://h:1/v1\n    inference_base_url: http://i:2\n").unwrap();
        let v = s.values_for("acme", &overrides);
        assert_eq!(
            v.get("ACME_BASE_URL").map(String::as_str),
            Some("http://i:2")
        );
        let portal = [("ACME_PORTAL".to_string(), "portal".to_string())];
        assert!(!s.values_for("acme", &portal).contains_key("ACME_PORTAL"));
    }

    #[test]
    fn set_refuses_to_descend_into_a_scalar() {
        let mut s = parse("model: fixed\n").unwrap();
        assert!(s.set("model.default", Value::Null).is_err());
        assert!(s.set("a..b", Value::Null).is_err());
    }

    #[test]
    fn values_parse_like_yaml() {
        assert_eq!(parse_value("true"), Value::Bool(true));
        assert_eq!(
            parse_value("MiniMax-M2.7"),
            Value::String("MiniMax-M2.7".into())
        );
        assert_eq!(parse_value("a: b: c"), Value::String("a: b: c".into()));
    }
}
