//! `hermes status`: one line per provider.

use std::process::ExitCode;

use super::Ctx;
use crate::auth::{pool, Store};
use crate::error::Result;
use crate::plugins::runtime::{PluginSet, Scope};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    let set = PluginSet::load(&paths, Scope::All)?;
    let file = Store::new(&paths).read()?;
    let settings = crate::config::Settings::load(&paths)?;
    let default = settings
        .model_provider()
        .and_then(|p| set.registry.resolve(&p).map(|e| e.provider.id.clone()));
    let now = crate::timefmt::now_ms();
    ctx.out.result(&format!(
        "hermes {}  home {}",
        env!("CARGO_PKG_VERSION"),
        paths.home.display()
    ));
    if set.registry.entries().is_empty() {
        ctx.out
            .result("no providers installed (try `hermes plugins install minimax-oauth`)");
    }
    for entry in set.registry.entries() {
        let d = &entry.provider;
        let provider =
            crate::plugins::runtime::open_entry(&ctx.env, &settings, &set, entry, &ctx.out)?;
        let logins = file.entries(&d.id);
        let (account, why) = super::chat::account_choice(ctx, &settings, &d.id, None);
        let chosen = pool::select(&logins, account.as_deref());
        let report = provider
            .handle
            .status
            .status(chosen.map(|e| &e.credential).into(), now);
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
