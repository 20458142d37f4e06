//! `hermes doctor`.

use std::process::ExitCode;

use super::Ctx;
use crate::doctor::{Report, Severity};
use crate::error::Result;

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
    let report = Report::collect(&ctx.env, &ctx.out, args.provider.as_deref(), args.deep)?;
    let (findings, healthy) = (&report.findings, report.healthy);
    if args.json {
        ctx.out.json(&report.to_json());
    } else {
        for f in findings {
            let mark = match f.severity {
                Severity::Ok => ctx.out.ok_mark(),
                Severity::Info => "·".to_string(),
                Severity::Warning => ctx.out.warn_mark(),
                Severity::Error => ctx.out.bad_mark(),
            };
            // Findings quote plugins, servers and auth.json: terminal-safe here, in one place.
            // Spacing is kept: the message aligns its parts with two spaces.
            let message = crate::text::text(&f.message).replace(['\n', '\t'], " ");
            match &f.fix {
                Some(fix) => ctx.out.result(&format!(
                    "{mark} {message}  (fix: {})",
                    crate::text::line(fix, 400)
                )),
                None => ctx.out.result(&format!("{mark} {message}")),
            }
        }
        if healthy {
            ctx.out.info("no problems found");
        } else {
            let n = findings
                .iter()
                .filter(|f| f.severity >= Severity::Warning)
                .count();
            ctx.out.info(&if n == 1 {
                "1 finding needs action".to_string()
            } else {
                format!("{n} findings need action")
            });
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
