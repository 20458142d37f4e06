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
    let now = crate::timefmt::now_ms();
    ctx.out.result(&format!("hermes {}  home {}", env!("CARGO_PKG_VERSION"), paths.home.display()));
    if set.registry.entries().is_empty() {
        ctx.out.result("no providers installed (try `hermes plugins install minimax-oauth`)");
    }
    for entry in set.registry.entries() {
        let d = &entry.provider;
        let provider = crate::plugins::runtime::open_entry(&ctx.env, &set, entry, &ctx.out)?;
        let logins = file.entries(&d.id);
        let chosen = pool::select(&logins, ctx.env.account.as_deref());
        let report = provider.handle.status.status(chosen.map(|e| &e.credential).into(), now);
        let mark = if report.logged_in() { ctx.out.ok_mark() } else { ctx.out.bad_mark() };
        let login = match (chosen, logins.len()) {
            (Some(e), n) if n > 1 => {
                let why = if ctx.env.account.is_some() { "HERMES_ACCOUNT" } else { "first usable by priority" };
                format!("  [login {} of {n}: {}, {why}]", e.name(), e.id)
            }
            _ => String::new(),
        };
        ctx.out.result(&format!("{mark} {:<18} {}{login}", d.display_name, report.summary));
    }
    Ok(ExitCode::SUCCESS)
}
