//! `hermes status`: one line per provider.

use std::process::ExitCode;

use super::Ctx;
use crate::auth::{choice, Store};
use crate::error::Result;
use crate::plugins::runtime::Scope;
use crate::plugins::supervise;
use crate::text;

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
        ctx.out.result(&format!(
            "no providers installed; try: {}",
            crate::plugins::index::install_hint(ctx.env.plugin_index.as_deref())
        ));
    }
    for f in found.failures.values() {
        if f.call == supervise::call::DESCRIBE {
            ctx.out.result(&format!("{} {f}", ctx.out.bad_mark()));
        }
    }
    for entry in set.registry.entries() {
        let d = &entry.provider;
        let (picked, report) = match login_status(ctx, &settings, &file, &found, entry) {
            Ok(p) => p,
            // A configured account that names nothing: this provider's line says so, and the
            // others are still shown.
            Err(e) => {
                ctx.out.result(&format!(
                    "{} {}  {}",
                    ctx.out.bad_mark(),
                    d.display_name,
                    text::line(&e.message(), 300)
                ));
                continue;
            }
        };
        let report = match report {
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

/// The login `status` and `auth status` report on for `entry`, chosen as every command
/// chooses it (a fallback is said on stderr), and the plugin's status report for it (or the
/// line saying why there is none). An account setting that names no login is the error.
pub(super) fn login_status(
    ctx: &Ctx,
    settings: &crate::config::Settings,
    file: &crate::auth::AuthFile,
    found: &supervise::Findings,
    entry: &crate::plugins::registry::Entry,
) -> Result<(
    Option<choice::Chosen>,
    std::result::Result<hermes_plugin_api::StatusReport, String>,
)> {
    let d = &entry.provider;
    let logins = file.entries(&d.id);
    let account = choice::account_choice(&ctx.env, settings, &d.id, None);
    let picked = choice::choose(&d.display_name, &d.id, &logins, &account)?;
    if let Some(note) = picked.as_ref().and_then(|c| c.fallback.as_ref()) {
        ctx.out.warn(note);
    }
    let chosen = picked.as_ref().map(|c| c.entry.id.as_str());
    let report = found
        .status(&entry.plugin_id, &d.id, chosen)
        .into_report(&entry.plugin_id, &d.id);
    Ok((picked, report))
}
