//! The commands: each puts the stages together for one use and reports an exit status.

pub mod audit;
pub mod check;
pub mod health;
pub mod route;
pub mod run;

use std::process::ExitCode;

/// Exit statuses shared by the commands.
pub mod exit {
    /// Something could not be read or written (an unreadable input file).
    pub const FAILURE: u8 = 1;
    /// The config is invalid.
    pub const INVALID_CONFIG: u8 = 2;
    /// `audit`: the account cannot be read at all.
    pub const ACCOUNT_UNREADABLE: u8 = 3;
    /// `run` stopped at once on a second SIGTERM or SIGINT (128 + SIGINT).
    pub const INTERRUPTED: i32 = 130;
}

/// Prints a config error the way every command does, and gives its exit status.
pub fn config_error(error: &crate::config::ConfigError) -> ExitCode {
    for line in error.to_string().lines() {
        eprintln!("error: {line}");
    }
    ExitCode::from(exit::INVALID_CONFIG)
}
