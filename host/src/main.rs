//! The `hermes` binary: parse arguments, run, map the result to an exit code.

fn main() -> std::process::ExitCode {
    hermes::cli::main()
}
