//! The `wharf` binary: parse the command line and run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    match wharf::cli::run(wharf::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
