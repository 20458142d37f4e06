//! `hermes serve`: print the base URL, serve until Ctrl-C. The gateway is in [`crate::serve`].

use std::process::ExitCode;

use super::Ctx;
use crate::error::Result;
use crate::serve::{key, Gateway, Options, DEFAULT_PORT};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1; 0 picks any free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Print shell lines that point the Anthropic and OpenAI SDKs at the gateway, and exit.
    #[arg(long)]
    print_env: bool,
    /// Replace the gateway key (tools configured with the old one stop working).
    #[arg(long)]
    rotate_key: bool,
    /// Allow browser pages from this origin (CORS), e.g. http://localhost:5173.
    #[arg(long, value_name = "ORIGIN")]
    allow_origin: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    let key = key::load_or_create(&paths, args.rotate_key)?;
    if args.rotate_key {
        ctx.out
            .info("made a new gateway key; tools that used the old one need the new one");
    }
    if args.print_env {
        if args.port == 0 {
            return Err(crate::Error::usage(
                "--print-env needs the port tools will use, not 0",
                "pass the port you serve on, e.g. `hermes serve --print-env --port 8642`",
            ));
        }
        let base = format!("http://127.0.0.1:{}", args.port);
        // The one place the key is printed whole: these lines exist to configure tools with it.
        ctx.out.result(&format!(
            "export ANTHROPIC_BASE_URL={base}\nexport ANTHROPIC_API_KEY={k}\nexport OPENAI_BASE_URL={base}/v1\nexport OPENAI_API_KEY={k}",
            k = key.expose()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let opts = Options {
        port: args.port,
        allow_origin: args.allow_origin,
    };
    let gateway = Gateway::bind(&ctx.env, &ctx.out, &opts, key)?;
    // The first stdout line, flushed at once: scripts and tests read the address from it.
    ctx.out.result_raw(&format!("{}\n", gateway.base_url()));
    ctx.out.info(&format!(
        "hermes serve: listening on 127.0.0.1 only; the key is in {} (`hermes serve --print-env`); Ctrl-C to stop",
        paths.home.join("serve.key").display()
    ));
    gateway.run()?;
    ctx.out.info("gateway stopped");
    Ok(ExitCode::SUCCESS)
}
