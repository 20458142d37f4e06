//! Benchmarks that print figures: plugin load time, `hermes doctor` wall time and peak RSS
//! with 1 and 50 plugins, `hermes --version`, and (see `hermes_tests::bench`) the credential
//! paths and the `hermes serve` gateway. Run through `bench/run`, which builds the release
//! binaries first; `bench/run gateway` (or `plugins`, `tokens`) runs one section.

use std::path::Path;

use hermes_tests::bench::{self, Table};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__measure") {
        bench::measure_main(&args[1..]);
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("binary directory");
    // `hermes-bench [plugins] [tokens] [gateway]`: only those sections; none: all of them.
    let wants = |section: &str| args.is_empty() || args.iter().any(|a| a == section);
    let mut table = Table::default();
    if wants("plugins") {
        bench::plugins(&dir, &mut table);
    }
    if wants("tokens") {
        bench::tokens(&dir, &mut table);
    }
    if wants("gateway") {
        hermes_tests::gateway_bench::gateway(&dir, &mut table);
    }
    table.print();
}
