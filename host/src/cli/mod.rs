//! The command line: one module per command group.

mod auth;
mod browser;
mod chat;
mod config;
mod dashboard;
mod doctor;
mod model;
mod plugins;
mod serve;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Env;
use crate::error::Result;
use crate::output::Output;

/// hermes: sign in to LLM providers through plugins, and use them.
#[derive(Debug, Parser)]
#[command(name = "hermes", version, about, propagate_version = true)]
struct Cli {
    /// More detail on stderr (-v details, -vv every HTTP request and plugin logs, -vvv all).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less prose on stderr (`-q` belongs to `chat`'s prompt).
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install, list and manage provider plugins.
    #[command(subcommand)]
    Plugins(plugins::Cmd),
    /// Sign in, list logins, print tokens for scripts.
    #[command(subcommand)]
    Auth(auth::Cmd),
    /// Check every plugin and provider (no network); exit 1 when something needs action.
    Doctor(doctor::Args),
    /// A short summary of providers and logins.
    Status(status::Args),
    /// Send a message to a provider and stream the answer.
    Chat(chat::Args),
    /// Choose the default provider and model (a picker on a terminal).
    Model(model::Args),
    /// Read and change config.yaml.
    #[command(subcommand)]
    Config(config::Cmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// A web page on 127.0.0.1 to see providers, sign in and sign out.
    Dashboard(dashboard::Args),
    /// A gateway on 127.0.0.1 through which Anthropic- and OpenAI-compatible tools use your logins.
    Serve(serve::Args),
}

/// What every command gets.
pub struct Ctx {
    pub env: Env,
    pub out: Output,
}

/// Run the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    crate::output::protect_stdio();
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(std::ffi::OsStr::new(crate::plugins::probe::PROBE_ARG)) {
        return match args.next() {
            Some(path) => ExitCode::from(crate::plugins::probe::child(std::path::Path::new(&path))),
            None => ExitCode::from(2),
        };
    }
    if args_is(crate::plugins::supervise::WORKER_ARG) {
        let ids: Vec<String> = std::env::args().skip(2).collect();
        return match Env::from_process() {
            Ok(env) => ExitCode::from(crate::plugins::supervise::worker(&env, &ids)),
            Err(_) => ExitCode::from(2),
        };
    }
    if args_is(crate::auth::worker::WORKER_ARG) {
        return ExitCode::from(auth::refresh_worker());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help, version and usage errors go through the output layer: clap would write
            // them to fd 1, which hermes pointed at /dev/null above.
            let text = e.render().to_string();
            let out = Output::plain(0);
            if e.use_stderr() {
                out.notice(text.trim_end());
            } else {
                out.result(text.trim_end());
            }
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let env = match Env::from_process() {
        Ok(e) => e,
        Err(e) => {
            Output::plain(0).error(&e);
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let out = Output::new(&env, cli.verbose, cli.quiet);
    configure(&env, &out);
    // Token refreshes run in a worker process that outlives a kill of this one: this very
    // binary, even if it was replaced on disk since it started (a long `hermes serve`).
    if let Ok(exe) = crate::fsutil::own_binary() {
        crate::auth::worker::enable(exe);
    }
    let ctx = Ctx {
        env,
        out: out.clone(),
    };
    match run(&ctx, cli.command) {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// What every process of the binary sets up from its environment before it runs a command.
pub fn configure(env: &Env, out: &Output) {
    crate::net::set_proxies(env.proxies.clone());
    crate::plugins::deadline::configure(env.plugin_timeout);
    crate::net::set_request_log(out);
}

/// Whether the first argument is the private entry `name`.
fn args_is(name: &str) -> bool {
    std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(name))
}

fn run(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Plugins(c) => plugins::run(ctx, c),
        Command::Auth(c) => auth::run(ctx, c),
        Command::Doctor(a) => doctor::run(ctx, a),
        Command::Status(a) => status::run(ctx, a),
        Command::Chat(a) => chat::run(ctx, a),
        Command::Model(a) => model::run(ctx, a),
        Command::Config(c) => config::run(ctx, c),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hermes", &mut out);
            ctx.out.result_raw(&String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Dashboard(a) => dashboard::run(ctx, a),
        Command::Serve(a) => serve::run(ctx, a),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
