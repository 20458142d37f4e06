//! Benchmarks that print figures: plugin load time, `hermes doctor` wall time and peak RSS
//! with 1 and 50 plugins, `hermes --version`, and (see `hermes_tests::bench`) the credential
//! paths. Run through `bench/run`, which builds the release binaries first.

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
    let mut table = Table::default();
    bench::plugins(&dir, &mut table);
    bench::tokens(&dir, &mut table);
    table.print();
}
