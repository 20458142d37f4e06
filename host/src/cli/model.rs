//! `hermes model`: choose the default provider and model.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use crate::config::yaml::Value;
use serde_json::json;

use super::Ctx;
use crate::auth::Store;
use crate::catalog;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::plugins::runtime::PluginSet;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider id or alias.
    #[arg(long)]
    provider: Option<String>,
    /// Model; a `provider/` or `provider:` prefix is allowed.
    model: Option<String>,
    /// Print the provider's auxiliary model (a small, fast model for side tasks).
    #[arg(long)]
    aux: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    let mut settings = Settings::load(&paths)?;
    let set = PluginSet::described(&paths)?;
    if let (None, Some(m)) = (&args.provider, args.model.as_deref()) {
        refuse_unknown_prefix(&set, m)?;
    }
    let target = match (
        &args.provider,
        args.model
            .as_deref()
            .and_then(|m| catalog::provider_of(&set.registry, m)),
    ) {
        (Some(p), _) => Some(set.resolve(p)?.provider.id.clone()),
        (None, Some(p)) => Some(p.to_string()),
        (None, None) => settings
            .model_provider()
            .and_then(|p| set.registry.resolve(&p).map(|e| e.provider.id.clone())),
    };

    if args.aux {
        let Some(id) = target else {
            return Err(Error::usage("no provider chosen", "pass --provider"));
        };
        let d = &set.resolve(&id)?.provider;
        let Some(aux) = &d.aux_model else {
            return Err(Error::msg(format!(
                "{} declares no auxiliary model",
                d.display_name
            )));
        };
        if args.json {
            ctx.out.json(&json!({"provider": d.id, "aux_model": aux}));
        } else {
            ctx.out.result(aux);
        }
        return Ok(ExitCode::SUCCESS);
    }

    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let (provider, model) = match (target, args.model.as_deref()) {
        (Some(p), Some(m)) => (p.clone(), catalog::normalize(&set.registry, &p, m)),
        (None, Some(m)) => {
            return Err(Error::usage(
                format!("which provider serves {m}?"),
                "pass --provider, or write it as provider/model",
            ));
        }
        (p, None) if interactive => {
            let only = args.provider.as_ref().and(p.as_deref());
            match pick(ctx, &set, only)? {
                Some(choice) => choice,
                None => return Ok(ExitCode::SUCCESS),
            }
        }
        (_, None) => {
            // Not interactive: show the current choice.
            let (p, m) = (settings.model_provider(), settings.model_default());
            if args.json {
                ctx.out.json(&json!({"provider": p, "model": m}));
            } else {
                match (p, m) {
                    (Some(p), Some(m)) => ctx.out.result(&format!("{p}/{m}")),
                    _ => ctx.out.info(
                        "no default model; choose one with `hermes model <provider>/<model>`",
                    ),
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let d = set.resolve(&provider)?.provider.clone();
    let model = match catalog::known(&d, &model) {
        Some(canonical) => canonical.to_string(),
        None => {
            if let Some(why) = catalog::unknown_model(&set.registry, Some(&d.id), &model) {
                ctx.out.warn(&format!("{why}; saving it anyway"));
            }
            model
        }
    };
    settings.set("model.provider", Value::String(d.id.clone()))?;
    settings.set("model.default", Value::String(model.clone()))?;
    settings.save()?;
    if args.json {
        ctx.out.json(&json!({"provider": d.id, "model": model}));
    } else {
        ctx.out.result(&format!("default model: {}/{model}", d.id));
    }
    Ok(ExitCode::SUCCESS)
}

/// A `prefix/model` whose prefix names no installed provider is a mistake, not a model id for
/// the default provider: refuse it and say which providers exist. (A model id that itself
/// contains `/` is given with `--provider`.)
fn refuse_unknown_prefix(set: &PluginSet, model: &str) -> Result<()> {
    let Some((prefix, rest)) = model.trim().split_once(['/', ':']) else {
        return Ok(());
    };
    if rest.is_empty() || catalog::provider_of(&set.registry, model).is_some() {
        return Ok(());
    }
    let ids: Vec<&str> = set
        .registry
        .entries()
        .iter()
        .map(|e| e.provider.id.as_str())
        .collect();
    Err(Error::usage(
        format!(
            "no installed provider is called {:?} (installed: {})",
            crate::text::line(prefix, 60),
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        ),
        "write the model as <provider>/<model>, or pass --provider for a model id that contains `/`",
    ))
}

/// The interactive picker over installed providers and their models. Signs in first when the
/// chosen provider has no login.
fn pick(ctx: &Ctx, set: &PluginSet, only: Option<&str>) -> Result<Option<(String, String)>> {
    let mut choices: Vec<(String, String)> = Vec::new();
    let mut stderr = std::io::stderr();
    for e in set.registry.entries() {
        if only.is_some_and(|o| o != e.provider.id) {
            continue;
        }
        let _ = writeln!(stderr, "{} ({})", e.provider.display_name, e.provider.id);
        for m in &e.provider.models {
            choices.push((e.provider.id.clone(), m.id.clone()));
            let _ = writeln!(
                stderr,
                "  {:>2}. {:<28} context {} tokens",
                choices.len(),
                m.id,
                m.context_window
            );
        }
    }
    if choices.is_empty() {
        return Err(
            Error::msg("no installed provider declares a model").with_help(
                crate::plugins::index::install_hint(ctx.env.plugin_index.as_deref()),
            ),
        );
    }
    // Ask until a listed number comes; an empty line or the end of input chooses nothing.
    let (p, m) = loop {
        let _ = write!(stderr, "choose a model [1-{}]: ", choices.len());
        let _ = stderr.flush();
        let mut line = String::new();
        let read = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("cannot read the choice", e))?;
        if read == 0 || line.trim().is_empty() {
            ctx.out.info("nothing chosen");
            return Ok(None);
        }
        let picked = line
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| choices.get(i));
        match picked {
            Some(c) => break c.clone(),
            None => ctx.out.info(&format!(
                "{:?} is not one of the numbers above; type 1 to {}, or press Enter to cancel",
                crate::text::line(line.trim(), 40),
                choices.len()
            )),
        }
    };
    let file = Store::new(&ctx.env.paths()).read()?;
    if !file.entries(&p).iter().any(|e| e.usable()) {
        ctx.out
            .info(&format!("{p} has no login yet; signing in first"));
        super::auth::add_default(ctx, &p)?;
    }
    Ok(Some((p, m)))
}
