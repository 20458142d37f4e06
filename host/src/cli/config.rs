//! `hermes config get|set|path`.

use std::process::ExitCode;

use super::Ctx;
use crate::config::{yaml, Settings};
use crate::error::Result;

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Print a value (dotted key, e.g. model.default); exit 1 when unset.
    Get {
        /// Dotted key.
        key: String,
    },
    /// Set a value (parsed as YAML: `true`, `3`, or text).
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
            let mut s = Settings::load(&paths)?;
            s.set(&key, crate::config::parse_value(&value))?;
            s.save()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
