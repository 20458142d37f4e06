//! `hermes status`: one line per provider.

use std::process::ExitCode;

use super::Ctx;
use crate::auth::{choice, Store};
use crate::error::Result;
use crate::plugins::runtime::{PluginSet, Scope};
use crate::text;

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
        let account = choice::account_choice(&ctx.env, &settings, &d.id, None);
        let picked = match choice::choose(&d.display_name, &d.id, &logins, &account) {
            Ok(p) => p,
            // A configured account that names nothing: this provider's line says so, and the
            // others are still shown.
            Err(e) => {
                ctx.out.result(&format!(
                    "{} {}  {}",
                    ctx.out.bad_mark(),
                    d.display_name,
                    text::line(e.message(), 300)
                ));
                continue;
            }
        };
        if let Some(note) = picked.as_ref().and_then(|c| c.fallback.as_ref()) {
            ctx.out.warn(note);
        }
        let chosen = picked.as_ref().map(|c| &c.entry);
        let report = provider
            .handle
            .status
            .status(chosen.map(|e| &e.credential).into(), now);
        let mark = if report.logged_in() {
            ctx.out.ok_mark()
        } else {
            ctx.out.bad_mark()
        };
        let login = match &picked {
            Some(c) => format!(
                "  [login {} ({}): {}]",
                text::line(c.entry.name(), 64),
                c.entry.id,
                c.reason
            ),
            None => String::new(),
        };
        let star = if default.as_deref() == Some(d.id.as_str()) {
            " (default)"
        } else {
            ""
        };
        ctx.out.result(&format!(
            "{mark} {}{star}  {}{login}",
            d.display_name,
            text::line(&report.summary, 200)
        ));
    }
    Ok(ExitCode::SUCCESS)
}
