//! `hermes doctor`.

use std::process::ExitCode;

use serde_json::json;

use super::Ctx;
use crate::doctor::{self, Context, Severity};
use crate::error::Result;
use crate::plugins::runtime::{PluginSet, Scope};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON (see docs/cli.md for the schema).
    #[arg(long)]
    json: bool,
    /// Only this provider (id or alias).
    #[arg(long)]
    provider: Option<String>,
    /// Re-hash every plugin library, even those unchanged since they were verified.
    #[arg(long)]
    deep: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    let scope = args.provider.as_deref().map_or(Scope::All, Scope::Provider);
    let set = PluginSet::load(&paths, scope)?;
    let provider = match &args.provider {
        Some(p) => Some(set.resolve(p)?.provider.id.clone()),
        None => None,
    };
    let auth = doctor::read_auth(&paths);
    let findings = doctor::run(&Context {
        paths: &paths,
        env: &ctx.env,
        set: &set,
        auth: &auth,
        provider: provider.as_deref(),
        out: &ctx.out,
        deep: args.deep,
    });
    let healthy = doctor::healthy(&findings);
    if args.json {
        ctx.out.json(&json!({
            "version": 1,
            "healthy": healthy,
            "hermes_home": paths.home,
            "findings": findings,
        }));
    } else {
        for f in &findings {
            let mark = match f.severity {
                Severity::Ok => ctx.out.ok_mark(),
                Severity::Info => "·".to_string(),
                Severity::Warning => ctx.out.warn_mark(),
                Severity::Error => ctx.out.bad_mark(),
            };
            match &f.fix {
                Some(fix) => ctx.out.result(&format!("{mark} {}  (fix: {fix})", f.message)),
                None => ctx.out.result(&format!("{mark} {}", f.message)),
            }
        }
        if healthy {
            ctx.out.info("no problems found");
        } else {
            let n = findings.iter().filter(|f| f.severity >= Severity::Warning).count();
            ctx.out.info(&format!("{n} finding(s) need action"));
        }
    }
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
