//! `minimax-emulator`: serves the MiniMax emulator until SIGTERM or Ctrl-C.
//!
//! Prints exactly one line to stdout, `listening on http://127.0.0.1:PORT`, once it accepts
//! connections, so scripts can wait for it and read the port; everything else goes to stderr.

use std::io::Write as _;
use std::process::ExitCode;

use hermes_tests::emulator::{Emulator, EmulatorConfig};

const USAGE: &str = "\
usage: minimax-emulator [--port N] [--auto-approve] [--approve-after-polls N]
                        [--expiry-encoding unix_ms|unix_seconds|ttl_seconds]
                        [--access-ttl-ms N] [--interval-ms N] [--quiet]

Serves the MiniMax OAuth portal (global at /, cn at /cn) and /anthropic/v1/messages on
127.0.0.1. Drive it over HTTP with /_emulator/{counters,pending,approve,deny,config,fault,
expire-access-tokens,issue-tokens,api-keys}.";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<EmulatorConfig, String> {
    let mut config = EmulatorConfig {
        log_requests: true,
        ..EmulatorConfig::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--port" => config.port = parse_num(&value("--port")?, "--port")?,
            "--auto-approve" => config.auto_approve = true,
            "--approve-after-polls" => {
                config.approve_after_polls =
                    parse_num(&value("--approve-after-polls")?, "--approve-after-polls")?
            }
            "--expiry-encoding" => config.expiry_encoding = value("--expiry-encoding")?.parse()?,
            "--access-ttl-ms" => {
                config.access_ttl_ms = parse_num(&value("--access-ttl-ms")?, "--access-ttl-ms")?
            }
            "--interval-ms" => {
                config.interval_ms = parse_num(&value("--interval-ms")?, "--interval-ms")?
            }
            "--quiet" => config.log_requests = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(config)
}

fn parse_num<T: std::str::FromStr>(s: &str, flag: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{flag}: {s:?} is not a valid number"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let config = match parse_args(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("minimax-emulator: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let emulator = match Emulator::try_start(config) {
        Ok(emulator) => emulator,
        Err(err) => {
            eprintln!("minimax-emulator: cannot listen: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on {}", emulator.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("minimax-emulator: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(wait_for_signal());
    eprintln!("minimax-emulator: shutting down");
    drop(emulator);
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hermes_tests::emulator::ExpiryEncoding;

    fn parse(args: &[&str]) -> Result<EmulatorConfig, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_set_the_config() {
        let config = parse(&[
            "--port",
            "8123",
            "--auto-approve",
            "--expiry-encoding=ttl_seconds",
            "--access-ttl-ms",
            "30000",
            "--approve-after-polls=2",
            "--interval-ms",
            "500",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.port, 8123);
        assert!(config.auto_approve);
        assert_eq!(config.expiry_encoding, ExpiryEncoding::TtlSeconds);
        assert_eq!(config.access_ttl_ms, 30_000);
        assert_eq!(config.approve_after_polls, 2);
        assert_eq!(config.interval_ms, 500);
        assert!(config.log_requests);
        assert!(!parse(&["--quiet"]).map(|c| c.log_requests).unwrap_or(true));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "http"]).is_err());
        assert!(parse(&["--expiry-encoding", "seconds"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }
}
