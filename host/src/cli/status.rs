//! `hermes status`: one line per provider.

use std::process::ExitCode;

use super::Ctx;
use crate::auth::{pool, Store};
use crate::error::Result;
use crate::plugins::runtime::Scope;
use crate::plugins::supervise;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    let (set, found) = supervise::diagnose(&ctx.env, Scope::All)?;
    let file = Store::new(&paths).read()?;
    let settings = crate::config::Settings::load(&paths)?;
    let default = settings
        .model_provider()
        .and_then(|p| set.registry.resolve(&p).map(|e| e.provider.id.clone()));
    ctx.out.result(&format!(
        "hermes {}  home {}",
        env!("CARGO_PKG_VERSION"),
        paths.home.display()
    ));
    if set.registry.entries().is_empty() {
        ctx.out
            .result("no providers installed (try `hermes plugins install minimax-oauth`)");
    }
    for f in found.failures.values() {
        if f.call == supervise::call::DESCRIBE {
            ctx.out.result(&format!("{} {f}", ctx.out.bad_mark()));
        }
    }
    for entry in set.registry.entries() {
        let d = &entry.provider;
        let logins = file.entries(&d.id);
        let (account, why) = super::chat::account_choice(ctx, &settings, &d.id, None);
        let chosen = pool::select(&logins, account.as_deref());
        let report = match found
            .status(&entry.plugin_id, &d.id, chosen.map(|e| e.id.as_str()))
            .into_report(&entry.plugin_id, &d.id)
        {
            Ok(r) => r,
            Err(line) => {
                ctx.out.result(&format!(
                    "{} {}  {line}",
                    ctx.out.bad_mark(),
                    d.display_name
                ));
                continue;
            }
        };
        let mark = if report.logged_in() {
            ctx.out.ok_mark()
        } else {
            ctx.out.bad_mark()
        };
        let login = match chosen {
            Some(e) => {
                let why = match (account.is_some(), logins.len()) {
                    (true, _) => why.to_string(),
                    (false, 1) => "the only login".to_string(),
                    (false, n) => format!("first usable of {n} by priority"),
                };
                format!("  [login {} ({}): {why}]", e.name(), e.id)
            }
            None => String::new(),
        };
        let star = if default.as_deref() == Some(d.id.as_str()) {
            " (default)"
        } else {
            ""
        };
        ctx.out.result(&format!(
            "{mark} {}{star}  {}{login}",
            d.display_name, report.summary
        ));
    }
    Ok(ExitCode::SUCCESS)
}
