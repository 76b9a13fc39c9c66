//! The `memora` binary: parses the command line, dispatches, maps errors to exit codes.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = memora::cli::Cli::parse();
    match memora::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
