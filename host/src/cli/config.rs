//! `hermes config get|set|path`.

use std::process::ExitCode;

use super::Ctx;
use crate::config::{yaml, Settings};
use crate::error::{Error, Result};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Print a value (dotted key, e.g. model.default); exit 1 when unset.
    Get {
        /// Dotted key.
        key: String,
    },
    /// Set a value (parsed as YAML: `true`, `3`, or text); a provider setting is checked
    /// against what the provider declares (exit 2 when refused).
    Set {
        /// Dotted key.
        key: String,
        /// Value.
        value: String,
    },
    /// Print the path of config.yaml.
    Path,
}

pub fn run(ctx: &Ctx, cmd: Cmd) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    match cmd {
        Cmd::Path => {
            ctx.out.result(&paths.config_yaml().display().to_string());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Get { key } => {
            let s = Settings::load(&paths)?;
            match s.get(&key) {
                None => {
                    ctx.out.info(&format!("{key} is not set"));
                    Ok(ExitCode::FAILURE)
                }
                Some(v) => {
                    let text = match v {
                        yaml::Value::String(s) => s.clone(),
                        other => yaml::to_string(other)
                            .map_err(|e| crate::config::ConfigError::Encode(e.to_string()))?
                            .trim_end()
                            .to_string(),
                    };
                    ctx.out.result(&text);
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Cmd::Set { key, value } => {
            check_setting(ctx, &key, &value)?;
            let mut s = Settings::load(&paths)?;
            s.set(&key, crate::config::parse_value(&value))?;
            s.save()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Refuse a provider setting the provider does not accept (`providers.minimax-oauth.region
/// mars`); warn about a key hermes does not read (kept: the plugin may read it).
fn check_setting(ctx: &Ctx, key: &str, value: &str) -> Result<()> {
    use crate::config::{check_provider_setting, Declared, SettingProblem};
    use crate::plugins::runtime::{PluginSet, Scope};
    let parts: Vec<&str> = key.split('.').collect();
    if parts == ["model", "default"] {
        return check_model(ctx, value);
    }
    let ["providers", id, setting] = parts.as_slice() else {
        return Ok(());
    };
    let paths = ctx.env.paths();
    let provider = PluginSet::load(&paths, Scope::Provider(id))
        .ok()
        .and_then(|set| set.registry.resolve(id).map(|e| e.provider.clone()));
    let Some(d) = provider else {
        ctx.out.warn(&format!(
            "no installed provider is called {:?}; the setting is saved unchecked",
            crate::text::line(id, 64)
        ));
        return Ok(());
    };
    match check_provider_setting(&Declared::from(&d), setting, value) {
        None => Ok(()),
        Some(SettingProblem::Invalid { why, help }) => Err(Error::usage(why, help)),
        Some(SettingProblem::Unknown) => {
            ctx.out.warn(&format!(
                "{key} is not a setting hermes reads; saved for the plugin (settings hermes reads: {})",
                crate::config::PROVIDER_KEYS.join(", ")
            ));
            Ok(())
        }
    }
}

/// Refuse a default model that the chosen provider (`model.provider`), or when none is chosen
/// any installed provider, does not declare: the rule `hermes model` warns with, which stays
/// the way to save a model the catalog does not list.
fn check_model(ctx: &Ctx, value: &str) -> Result<()> {
    use crate::plugins::runtime::PluginSet;
    let paths = ctx.env.paths();
    let Ok(set) = PluginSet::described(&paths) else {
        return Ok(());
    };
    let provider = Settings::load(&paths)?.model_provider();
    match crate::catalog::unknown_model(&set.registry, provider.as_deref(), value) {
        None => Ok(()),
        Some(why) => Err(Error::usage(
            why,
            "choose one with `hermes model`; `hermes model --provider <id> <model>` saves a model the catalog does not list",
        )),
    }
}
