//! The `sesroute` binary: parse the command line, run the command, exit with its status.

use std::process::ExitCode;

use clap::Parser;
use sesroute::cli::{Cli, Command};
use sesroute::cmd;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run => cmd::run::run(&cli.config, cli.log_format),
        Command::Check => cmd::check::run(&cli.config),
        Command::Health { ready } => cmd::health::run(&cli.config, *ready),
        Command::Route { queue, files } => cmd::route::run(&cli.config, queue.as_deref(), files),
        Command::Audit { format, fail_on } => cmd::audit::run(&cli.config, *format, *fail_on),
    }
}
