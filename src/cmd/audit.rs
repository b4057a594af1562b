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
            return ExitCode::from(super::exit::ACCOUNT_UNREADABLE);
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
    let output = match format {
        AuditFormat::Text => audit::text(&findings),
        AuditFormat::Json => audit::json_lines(&findings),
    };
    // A reader that stops early (`| head`) is not an error; the status still says what was found.
    let mut stdout = std::io::stdout().lock();
    if let Err(e) =
        std::io::Write::write_all(&mut stdout, output.as_bytes()).and_then(|()| std::io::Write::flush(&mut stdout))
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the findings: {e}");
        }
    }
    ExitCode::from(audit::exit_status(&findings, fail_on))
}
