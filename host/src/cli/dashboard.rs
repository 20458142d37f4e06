//! `hermes dashboard`: print the page's URL, open it when a person is watching, serve until
//! Ctrl-C. The server is in [`crate::dashboard`]. The browser is opened through a private
//! page under `HERMES_HOME` (removed when the dashboard stops), so the session token never
//! appears on a command line.

use std::process::ExitCode;

use super::Ctx;
use crate::dashboard::Dashboard;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1; 0 picks any free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Do not open a browser (the URL is printed either way).
    #[arg(long)]
    no_open: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let dashboard = Dashboard::bind(&ctx.env, &ctx.out, args.port)?;
    let url = dashboard.url();
    // The first stdout line, flushed at once: scripts and tests read the port and token from it.
    ctx.out.result_raw(&format!("{url}\n"));
    ctx.out
        .info("hermes dashboard: listening on 127.0.0.1 only; press Ctrl-C to stop");
    // Same rule as `auth add`: a browser only for a person at this machine's terminal, or
    // when HERMES_BROWSER names one. The URL holds the session token, so the opener gets a
    // private page that forwards to it, never the URL itself (command lines are public).
    let wanted = ctx.out.stdout_is_tty() && !ctx.env.ssh;
    let _page = if !args.no_open && (wanted || super::browser::explicit(&ctx.env)) {
        let paths = ctx.env.paths();
        paths.ensure_home()?;
        let page = super::browser::SecretPage::write(&paths.home, &url)?;
        ctx.out.log(
            1,
            &format!("opening the browser through {}", page.path().display()),
        );
        if page.open(&ctx.env) {
            ctx.out.info("Opening the dashboard in your browser…");
        }
        Some(page)
    } else {
        None
    };
    dashboard.run()?;
    ctx.out.info("dashboard stopped");
    Ok(ExitCode::SUCCESS)
}
