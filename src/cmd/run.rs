//! `sesroute run`: the daemon, until SIGTERM or SIGINT.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::LogFormat;
use crate::config::{self, Config};
use crate::sink::Sinks;

pub fn run(config_path: &Path, log_format: LogFormat) -> ExitCode {
    let config = match config::load(config_path) {
        Ok(config) => config,
        Err(e) => return super::config_error(&e),
    };
    crate::telemetry::init(log_format);
    for warning in &config.warnings {
        warn!(warning = %warning, "config");
    }
    if config.sources.is_empty() {
        error!("no [[sources]] in the config: nothing to poll");
        return ExitCode::from(super::exit::INVALID_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(Arc::new(config)))
}

async fn serve(config: Arc<Config>) -> ExitCode {
    let aws = aws_sdk_config(&config.aws).await;
    let sinks = match Sinks::open(&config, &aws).await {
        Ok(sinks) => sinks,
        Err(e) => {
            error!(error = %e, "cannot open a sink");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    info!(version = env!("CARGO_PKG_VERSION"), sources = config.sources.len(), sinks = config.sinks.len(), "started");
    crate::runtime::run(config, sinks, aws_sdk_sqs::Client::new(&aws), shutdown).await;
    ExitCode::SUCCESS
}

/// The SDK configuration: the default credential chain, the config's region
/// and endpoint, and the SDK's standard retries (exponential backoff with jitter).
pub async fn aws_sdk_config(aws: &config::Aws) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
        // No call may hang a delivery forever; an attempt outlasts the longest
        // long poll (20 s) with room to spare.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .operation_attempt_timeout(std::time::Duration::from_secs(30))
                .operation_timeout(std::time::Duration::from_secs(90))
                .build(),
        );
    if let Some(region) = &aws.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &aws.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Fires `shutdown` on the first SIGTERM or SIGINT.
async fn signals(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!(signal = "SIGINT", "shutdown requested"),
        () = terminate => info!(signal = "SIGTERM", "shutdown requested"),
    }
    shutdown.cancel();
}
