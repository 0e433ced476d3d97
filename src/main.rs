//! The `paperboy` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = paperboy::cli::Cli::parse();
    paperboy::cli::run(cli)
}
