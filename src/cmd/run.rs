//! `sesroute run`: the daemon, until SIGTERM or SIGINT.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::LogFormat;
use crate::config::{self, Config};
use crate::metrics::RELOADS;
use crate::runtime::Routing;
use crate::server::Health;
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
    runtime.block_on(serve(config_path, Arc::new(config)))
}

async fn serve(config_path: &Path, config: Arc<Config>) -> ExitCode {
    let metrics = match crate::metrics::install() {
        Ok(handle) => handle,
        Err(e) => {
            error!(error = %e, "cannot install the metrics recorder");
            return ExitCode::FAILURE;
        }
    };
    let aws = aws_sdk_config(&config.aws).await;
    let sinks = match Sinks::open(&config, &aws).await {
        Ok(sinks) => sinks,
        Err(e) => {
            error!(error = %e, "cannot open a sink");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let health = Arc::new(Health::default());
    let server = match crate::server::bind(config.listen, health.clone(), metrics, shutdown.clone()).await {
        Ok((address, server)) => {
            info!(listen = %address, "serving /healthz, /readyz and /metrics");
            tokio::spawn(server)
        }
        Err(e) => {
            error!(listen = %config.listen, error = %e, "cannot listen for health and metrics");
            return ExitCode::FAILURE;
        }
    };
    let (reload_tx, reloads) = tokio::sync::mpsc::channel(1);
    tokio::spawn(signals(shutdown.clone()));
    tokio::spawn(reload_on_sighup(config_path.to_owned(), config.clone(), aws.clone(), reload_tx));
    info!(version = env!("CARGO_PKG_VERSION"), sources = config.sources.len(), sinks = config.sinks.len(), "started");
    let routing = Routing { config, sinks };
    crate::runtime::run(routing, aws_sdk_sqs::Client::new(&aws), health, reloads, shutdown).await;
    let _ = server.await;
    ExitCode::SUCCESS
}

/// On every SIGHUP: load and validate the config again and open its sinks;
/// on success hand the new routing to the daemon, else keep the old one and
/// log why. AWS settings need a restart.
async fn reload_on_sighup(
    path: PathBuf,
    mut current: Arc<Config>,
    aws: aws_config::SdkConfig,
    reloads: tokio::sync::mpsc::Sender<Routing>,
) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(e) => {
            error!(error = %e, "cannot listen for SIGHUP: live reload is off");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        info!(config = %path.display(), "SIGHUP: reloading the config");
        let config = match config::load(&path) {
            Ok(config) => Arc::new(config),
            Err(e) => {
                metrics::counter!(RELOADS, "result" => "error").increment(1);
                for line in e.to_string().lines() {
                    error!(error = %line, "reload failed: the running config stays");
                }
                continue;
            }
        };
        if config.aws != current.aws || config.listen != current.listen {
            warn!("[aws] and [server] changes take effect at the next restart");
        }
        let sinks = match Sinks::open(&config, &aws).await {
            Ok(sinks) => sinks,
            Err(e) => {
                metrics::counter!(RELOADS, "result" => "error").increment(1);
                error!(error = %e, "reload failed: the running config stays");
                continue;
            }
        };
        for warning in &config.warnings {
            warn!(warning = %warning, "config");
        }
        metrics::counter!(RELOADS, "result" => "ok").increment(1);
        current = config.clone();
        if reloads.send(Routing { config, sinks }).await.is_err() {
            return;
        }
    }
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
