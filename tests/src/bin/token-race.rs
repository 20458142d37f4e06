//! A worker for the refresh race test: starts `THREADS` threads (argv[1]) that each resolve a
//! token of `minimax-oauth` through the host library — each thread with its own token source,
//! so they race on the store lock exactly as separate processes do — and prints one token per
//! line. All threads wait until the wall-clock millisecond in `RACE_START_AT_MS` so that every
//! worker process starts at the same moment.

use std::sync::Arc;

use hermes::auth::{Store, TokenSource};
use hermes::config::Env;
use hermes::output::Output;
use hermes::plugins::runtime::{PluginSet, Scope};

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4);
    let env = Env::from_process().expect("environment");
    let out = Output::plain(0);
    let set = PluginSet::load(&env.paths(), Scope::Provider("minimax-oauth")).expect("plugins");
    let settings = hermes::config::Settings::load(&env.paths()).expect("settings");
    let entry = set.resolve("minimax-oauth").expect("provider");
    let time = env.time();
    let provider = set
        .open(entry, &env, &settings, &out, time)
        .expect("open provider");
    let start_at: i64 = std::env::var("RACE_START_AT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let provider = Arc::clone(&provider);
            let env = env.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                let source = TokenSource::new(Store::new(&env.paths()), provider, None, "", out);
                let wait = start_at - hermes::timefmt::now_ms();
                if wait > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(wait as u64));
                }
                source.token().map(|r| r.token.expose().to_string())
            })
        })
        .collect();
    let mut failed = false;
    for h in handles {
        match h.join().expect("thread") {
            Ok(t) => println!("{t}"),
            Err(e) => {
                eprintln!("error: {}", e.message());
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
