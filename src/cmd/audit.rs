//! `sesroute audit`: read the account, run the checks, print the findings.

use std::path::Path;
use std::process::ExitCode;

use crate::audit::{self, Level, read};
use crate::cli::AuditFormat;
use crate::config;

pub fn run(path: &Path, format: AuditFormat, fail_on: Level) -> ExitCode {
    let config = match config::load(path) {
        Ok(config) => config,
        Err(e) => return super::config_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(super::exit::FAILURE);
        }
    };
    let account = runtime.block_on(async {
        let sdk = crate::aws::sdk_config(&config.aws).await;
        read::account(&read::Clients::new(&sdk), &config).await
    });
    let account = match account {
        Ok(account) => account,
        Err(read::Unreadable(why)) => {
            eprintln!("error: the account cannot be read: {why}");
            return ExitCode::from(super::exit::ACCOUNT_UNREADABLE);
        }
    };
    let findings = audit::checks::run(&account);
    match format {
        AuditFormat::Text => print!("{}", audit::text(&findings)),
        AuditFormat::Json => print!("{}", audit::json_lines(&findings)),
    }
    ExitCode::from(audit::exit_status(&findings, fail_on))
}
