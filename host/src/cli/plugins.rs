//! `hermes plugins …`.

mod scaffold;

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};

use super::Ctx;
use crate::error::{Error, Result};
use crate::plugins::install::{self, Change};
use crate::plugins::manifest;
use crate::plugins::runtime::{Installed, PluginSet};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Install a plugin by name (from the plugin index), path to a library, or URL.
    Install {
        /// Name, path or URL.
        target: String,
        /// Expected SHA-256 of the library (required for URLs without an index entry).
        #[arg(long)]
        sha256: Option<String>,
        /// Allow replacing a newer version with an older one.
        #[arg(long)]
        force: bool,
    },
    /// List installed plugins with their status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one plugin (by plugin id, provider id or alias).
    Info {
        /// Plugin or provider.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Uninstall a plugin (its logins in auth.json are kept).
    Remove {
        /// Plugin id.
        id: String,
    },
    /// Load a disabled plugin again.
    Enable {
        /// Plugin id.
        id: String,
    },
    /// Keep a plugin installed but do not load it.
    Disable {
        /// Plugin id.
        id: String,
    },
    /// Start a new provider plugin: a crate that `cargo build` turns into a loadable library.
    New {
        /// Plugin (and provider) id: lower-case letters, digits and '-'.
        name: String,
        /// The sign-in flow to start from.
        #[arg(long, value_enum, default_value = "api_key")]
        flow: scaffold::Flow,
        /// The inference API the provider speaks (the host appends `/v1/messages` or
        /// `/chat/completions` to its base URL).
        #[arg(long = "api", value_enum, default_value = "anthropic_messages")]
        api_mode: scaffold::Api,
        /// The crate directory to create (default: ./<name>).
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// A local hermes-plugin-sdk to build against (default: the one this hermes was built
        /// from, when present; else crates.io).
        #[arg(long = "sdk-path", alias = "api-path", value_name = "DIR")]
        sdk_path: Option<PathBuf>,
    },
    /// Run the conformance checks on a built plugin library (no network); exit 1 on a failure.
    Check {
        /// The library (e.g. target/debug/libmy_plugin.so).
        path: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Install {
            target,
            sha256,
            force,
        } => install_cmd(ctx, &target, sha256.as_deref(), force),
        Cmd::List { json } => list(ctx, json),
        Cmd::Info { name, json } => info(ctx, &name, json),
        Cmd::Remove { id } => remove(ctx, &id),
        Cmd::Enable { id } => set_enabled(ctx, &id, true),
        Cmd::Disable { id } => set_enabled(ctx, &id, false),
        Cmd::New {
            name,
            flow,
            api_mode,
            path,
            sdk_path,
        } => new(ctx, name, flow, api_mode, path, sdk_path),
        Cmd::Check { path, json } => check(ctx, &path, json),
    }
}

fn new(
    ctx: &Ctx,
    name: String,
    flow: scaffold::Flow,
    api_mode: scaffold::Api,
    path: Option<PathBuf>,
    sdk_path: Option<PathBuf>,
) -> Result<ExitCode> {
    let sdk = match sdk_path {
        Some(p) if p.join("Cargo.toml").is_file() => scaffold::SdkSource::Path(p),
        Some(p) => {
            return Err(Error::usage(
                format!(
                    "{} is not a hermes-plugin-sdk checkout (it has no Cargo.toml)",
                    p.display()
                ),
                "point --sdk-path at the plugin-sdk directory of a hermes checkout",
            ))
        }
        None => scaffold::default_sdk(),
    };
    let spec = scaffold::Spec {
        dir: path.unwrap_or_else(|| PathBuf::from(&name)),
        name,
        flow,
        api_mode,
        sdk,
    };
    let g = scaffold::generate(&spec)?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let dir = scaffold::shown(&g.dir, &cwd);
    ctx.out.result(&format!(
        "created plugin {} ({} sign-in, {} API) in {dir}",
        spec.name,
        flow.name(),
        api_mode.name()
    ));
    for f in &g.files {
        ctx.out.info(&format!("  {}", f.display()));
    }
    let target = match &g.workspace {
        Some(root) => {
            ctx.out.info(&format!(
                "it is inside the workspace at {}: add \"{}\" to `members` in its Cargo.toml",
                root.display(),
                scaffold::shown(&g.dir, root)
            ));
            root.join("target/debug").join(&g.library)
        }
        None => g.dir.join("target/debug").join(&g.library),
    };
    let lib = scaffold::shown(&target, &g.dir);
    ctx.out.info("next:");
    ctx.out.info(&format!("  cd {dir}"));
    ctx.out.info("  cargo build && cargo test");
    ctx.out.info(&format!("  hermes plugins check {lib}"));
    ctx.out.info(&format!("  hermes plugins install {lib}"));
    Ok(ExitCode::SUCCESS)
}

/// A warning for each provider whose api mode this hermes cannot chat in: the plugin may load
/// and sign in, but `hermes chat` refuses it.
fn chat_warnings(desc: &crate::plugins::PluginDesc) -> Vec<String> {
    desc.providers
        .iter()
        .filter(|p| crate::chat::dialect::for_mode(&p.api_mode).is_none())
        .map(|p| {
            format!(
                "provider {} declares api mode {:?}, which this hermes cannot chat in (it speaks {}): `hermes chat` will refuse it",
                p.id,
                crate::text::line(&p.api_mode, 64),
                crate::chat::dialect::spoken().join(", ")
            )
        })
        .collect()
}

fn check(ctx: &Ctx, path: &std::path::Path, as_json: bool) -> Result<ExitCode> {
    if !path.is_file() {
        return Err(Error::usage(
            format!("{} is not a file", path.display()),
            "give the path of a built plugin library, e.g. target/debug/libmy_plugin.so",
        ));
    }
    let report = install::probe_in_child(path)?;
    let failed = report.checks.iter().filter(|c| c.failed()).count();
    let warnings = report.desc.as_ref().map(chat_warnings).unwrap_or_default();
    if as_json {
        ctx.out.json(&json!({
            "version": 1,
            "path": path.display().to_string(),
            "ok": failed == 0,
            "plugin": report.desc.as_ref().map(|d| json!({"id": d.id, "version": d.version, "api_version": report.api_version})),
            "checks": report.checks,
            "warnings": warnings,
        }));
    } else {
        for w in &warnings {
            ctx.out.result(&format!("{} {w}", ctx.out.warn_mark()));
        }
        for c in &report.checks {
            let mark = match c.outcome.as_str() {
                "pass" => ctx.out.ok_mark(),
                "fail" => ctx.out.bad_mark(),
                _ => "-".to_string(),
            };
            ctx.out.result(&format!("{mark} {}", c.title));
            for f in &c.findings {
                ctx.out.result(&format!("    {f}"));
            }
            for w in &c.warnings {
                ctx.out.result(&format!("    {} {w}", ctx.out.warn_mark()));
            }
        }
        let what = match &report.desc {
            Some(d) => format!("plugin {} {}", d.id, d.version),
            None => path.display().to_string(),
        };
        let total = report.checks.len();
        let loaded = report.checks.first().is_some_and(|c| !c.failed());
        if !loaded {
            ctx.out.result(&format!(
                "{what}: does not load as a hermes plugin; the other checks were skipped"
            ));
        } else if failed == 0 {
            ctx.out
                .result(&format!("{what}: all {total} checks passed"));
        } else {
            ctx.out
                .result(&format!("{what}: {failed} of {total} checks failed"));
        }
        if let Some(d) = &report.detail {
            if ctx.out.verbose() > 0 {
                ctx.out.info(d);
            } else {
                ctx.out.info("(run with -v for the full layout report)");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn install_cmd(ctx: &Ctx, target: &str, sha256: Option<&str>, force: bool) -> Result<ExitCode> {
    let outcome = install::install(&ctx.env, target, sha256, force)?;
    for w in &outcome.warnings {
        ctx.out.warn(w);
    }
    match outcome.change {
        Change::New(r) => ctx.out.result(&format!(
            "installed {} {} (providers: {})",
            r.id,
            r.version,
            r.providers.join(", ")
        )),
        Change::Replaced { old, new } if old.version == new.version => ctx.out.result(&format!(
            "reinstalled {} {} (the library changed)",
            new.id, new.version
        )),
        Change::Replaced { old, new } => ctx.out.result(&format!(
            "replaced {} {} with {}",
            new.id, old.version, new.version
        )),
        Change::Unchanged(r) => ctx.out.result(&format!(
            "{} {} is already installed; nothing to do",
            r.id, r.version
        )),
    }
    Ok(ExitCode::SUCCESS)
}

fn plugin_json(i: &Installed, set: &PluginSet) -> Value {
    let r = &i.record;
    let providers: Vec<Value> = match i.desc() {
        Some(p) => p
            .providers
            .iter()
            .map(|d| {
                let accepted = set.registry.resolve(&d.id).filter(|e| e.plugin_id == r.id);
                json!({
                    "id": d.id,
                    "display_name": d.display_name,
                    "aliases": accepted.map(|e| e.aliases.clone()).unwrap_or_default(),
                    "flow": d.flow,
                    "api_mode": d.api_mode,
                    "regions": d.regions,
                    "models": d.models,
                    "aux_model": d.aux_model,
                    "docs_url": d.docs_url,
                })
            })
            .collect(),
        None => r.providers.iter().map(|p| json!({"id": p})).collect(),
    };
    json!({
        "id": r.id,
        "version": r.version,
        "api_version": r.api_version,
        "status": i.status(),
        "reason": i.reason(),
        "enabled": r.enabled,
        "path": r.path,
        "sha256": r.sha256,
        "source": r.source,
        "installed_at": r.installed_at,
        "description": i.desc().map(|p| p.description.clone()),
        "loaded": i.is_loaded(),
        "providers": providers,
        "conflicts": set.registry.conflicts_of(&r.id).map(|c| c.message.clone()).collect::<Vec<_>>(),
    })
}

fn list(ctx: &Ctx, as_json: bool) -> Result<ExitCode> {
    let set = PluginSet::described(&ctx.env.paths())?;
    if as_json {
        let plugins: Vec<Value> = set.installed.iter().map(|i| plugin_json(i, &set)).collect();
        ctx.out.json(&json!({ "version": 1, "plugins": plugins }));
        return Ok(ExitCode::SUCCESS);
    }
    if set.installed.is_empty() {
        ctx.out.info(&format!(
            "no plugins installed; try: {}",
            crate::plugins::index::install_hint(ctx.env.plugin_index.as_deref())
        ));
        return Ok(ExitCode::SUCCESS);
    }
    ctx.out.result(&format!(
        "{:<20} {:<10} {:<6} {:<16} {}",
        "PLUGIN", "VERSION", "API", "STATUS", "PROVIDERS"
    ));
    for i in &set.installed {
        let r = &i.record;
        let providers: Vec<String> = set
            .registry
            .entries()
            .iter()
            .filter(|e| e.plugin_id == r.id)
            .map(|e| {
                if e.aliases.is_empty() {
                    e.provider.id.clone()
                } else {
                    format!("{} ({})", e.provider.id, e.aliases.join(", "))
                }
            })
            .collect();
        let providers = if providers.is_empty() {
            r.providers.join(", ")
        } else {
            providers.join(", ")
        };
        ctx.out.result(&format!(
            "{:<20} {:<10} {:<6} {:<16} {}",
            r.id,
            r.version,
            r.api_version,
            i.status(),
            providers
        ));
        if let Some(reason) = i.reason() {
            ctx.out.result(&format!("  {reason}"));
        }
        for c in set.registry.conflicts_of(&r.id) {
            ctx.out.result(&format!("  {}", c.message));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn info(ctx: &Ctx, name: &str, as_json: bool) -> Result<ExitCode> {
    let set = PluginSet::described(&ctx.env.paths())?;
    let plugin_id = match set.installed.iter().find(|i| i.record.id == name) {
        Some(i) => i.record.id.clone(),
        None => set.resolve(name)?.plugin_id.clone(),
    };
    let Some(i) = set.installed.iter().find(|i| i.record.id == plugin_id) else {
        return Err(crate::plugins::PluginsError::NotInstalled { id: plugin_id }.into());
    };
    let v = plugin_json(i, &set);
    if as_json {
        ctx.out.json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &i.record;
    ctx.out.result(&format!("{} {}", r.id, r.version));
    if let Some(d) = v["description"].as_str() {
        ctx.out.result(&format!("  {}", crate::text::line(d, 400)));
    }
    ctx.out.result(&format!(
        "  status:      {}{}",
        i.status(),
        i.reason().map(|r| format!(" ({r})")).unwrap_or_default()
    ));
    ctx.out.result(&format!("  plugin-api:  {}", r.api_version));
    ctx.out.result(&format!(
        "  library:     {}",
        r.library(&ctx.env.home).display()
    ));
    ctx.out.result(&format!("  sha256:      {}", r.sha256));
    ctx.out.result(&format!("  source:      {}", r.source));
    if let Some(p) = i.desc() {
        for d in &p.providers {
            ctx.out
                .result(&format!("  provider {} ({})", d.id, d.display_name));
            let aliases = set
                .registry
                .resolve(&d.id)
                .filter(|e| e.plugin_id == r.id)
                .map(|e| e.aliases.join(", "))
                .unwrap_or_default();
            ctx.out.result(&format!("    aliases:   {aliases}"));
            ctx.out.result(&format!("    flow:      {}", d.flow));
            ctx.out.result(&format!("    api mode:  {}", d.api_mode));
            for reg in &d.regions {
                ctx.out.result(&format!(
                    "    region {:<8} portal {}  inference {}",
                    reg.name, reg.portal_base_url, reg.inference_base_url
                ));
            }
            for m in &d.models {
                ctx.out.result(&format!(
                    "    model {:<24} context {}  max output {}",
                    m.id, m.context_window, m.max_output
                ));
            }
            if let Some(aux) = &d.aux_model {
                ctx.out.result(&format!("    aux model: {aux}"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(ctx: &Ctx, id: &str) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    // The record and its library go together under the plugins lock, so an install running
    // at the same time never ends with a record whose library was deleted.
    let removed = manifest::update(&paths, |m| {
        let Some(pos) = m.plugins.iter().position(|r| r.id == id) else {
            return Ok(None);
        };
        let r = m.plugins.remove(pos);
        let files = install::remove_library(&paths.home, &r, m);
        Ok(Some((r, files)))
    })?;
    match removed {
        Some((r, files)) => {
            ctx.out.result(&format!("removed {} {}", r.id, r.version));
            if let Err(why) = files {
                ctx.out.warn(&format!(
                    "its files were left alone: {why}; check that path and remove what you do not want yourself"
                ));
            }
            ctx.out.info(
                "logins in auth.json were kept; remove them with `hermes auth logout <provider>`",
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Err(crate::plugins::PluginsError::NotInstalled { id: id.into() }.into()),
    }
}

fn set_enabled(ctx: &Ctx, id: &str, enabled: bool) -> Result<ExitCode> {
    let found = manifest::update(&ctx.env.paths(), |m| {
        Ok(m.get_mut(id).map(|r| {
            let changed = r.enabled != enabled;
            r.enabled = enabled;
            changed
        }))
    })?;
    let word = if enabled { "enabled" } else { "disabled" };
    match found {
        Some(true) => ctx.out.result(&format!("{id} {word}")),
        Some(false) => ctx.out.result(&format!("{id} was already {word}")),
        None => return Err(crate::plugins::PluginsError::NotInstalled { id: id.into() }.into()),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::descriptor::{PluginDesc, ProviderDesc};

    #[test]
    fn check_warns_about_an_api_mode_chat_cannot_speak() {
        let provider = |id: &str, mode: &str| ProviderDesc {
            id: id.into(),
            display_name: id.into(),
            aliases: vec![],
            flow: "api_key".into(),
            api_mode: mode.into(),
            regions: vec![],
            models: vec![],
            aux_model: None,
            docs_url: String::new(),
            allowed_hosts: vec![],
            url_overrides: vec![],
            refresh_skew_ms: 0,
            credential_env: vec![],
        };
        let desc = PluginDesc {
            id: "p".into(),
            version: "1.0.0".into(),
            description: String::new(),
            providers: vec![
                provider("a", "anthropic_messages"),
                provider("b", "chat_completions"),
                provider("c", "responses\u{1b}[2J"),
            ],
        };
        let w = chat_warnings(&desc);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("provider c declares api mode \"responses [2J\""),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("it speaks anthropic_messages, chat_completions"),
            "{}",
            w[0]
        );
    }
}
