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
use crate::telemetry::Log;

pub fn run(config_path: &Path, log_format: LogFormat) -> ExitCode {
    let config = match config::load(config_path) {
        Ok(config) => config,
        Err(e) => return super::config_error(&e),
    };
    let log = Arc::new(crate::telemetry::init(log_format));
    let status = daemon(config_path, config, &log);
    log.flush();
    status
}

fn daemon(config_path: &Path, config: Config, log: &Arc<Log>) -> ExitCode {
    // A panic's message may quote the data it choked on (an address): the
    // log gets where it happened, never what it says.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(ToString::to_string).unwrap_or_default();
        error!(location = %at, "panic");
    }));
    for warning in &config.warnings {
        warn!(warning = %warning, "config");
    }
    if config.sources.is_empty() {
        error!("no [[sources]] in the config: nothing to poll");
        return ExitCode::from(super::exit::INVALID_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(WORKER_STACK).enable_all().build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config_path, Arc::new(config), Arc::clone(log)))
}

/// Stack size of the runtime's worker threads, where bodies are parsed.
///
/// The parser recurses once per level of nesting, up to
/// [`crate::notification::depth::MAX_DEPTH`]. Optimised, a level takes a few
/// hundred bytes; unoptimised (test builds) about 64 KiB, so tokio's default
/// of 2 MiB would overflow at about 30 levels there.
pub const WORKER_STACK: usize = 8 * 1024 * 1024;

async fn serve(config_path: &Path, config: Arc<Config>, log: Arc<Log>) -> ExitCode {
    let metrics = match crate::metrics::install() {
        Ok(handle) => handle,
        Err(e) => {
            error!(error = %e, "cannot install the metrics recorder");
            return ExitCode::FAILURE;
        }
    };
    let aws = crate::aws::sdk_config(&config.aws).await;
    let sinks = open_sinks(&config, &aws).await;
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
    let fetcher = match crate::signature::Fetcher::new() {
        Ok(fetcher) => Arc::new(fetcher),
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let (reload_tx, reloads) = tokio::sync::mpsc::channel(1);
    tokio::spawn(signals(shutdown.clone(), log));
    tokio::spawn(reload_on_sighup(config_path.to_owned(), config.clone(), aws.clone(), fetcher.clone(), reload_tx));
    info!(version = env!("CARGO_PKG_VERSION"), sources = config.sources.len(), sinks = config.sinks.len(), "started");
    let certs = certificates(&config, &fetcher);
    crate::metrics::register_routes(&config.router);
    let routing = Routing { config, sinks, certs };
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
    fetcher: Arc<crate::signature::Fetcher>,
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
        let sinks = open_sinks(&config, &aws).await;
        for warning in &config.warnings {
            warn!(warning = %warning, "config");
        }
        metrics::counter!(RELOADS, "result" => "ok").increment(1);
        current = config.clone();
        let certs = certificates(&config, &fetcher);
        crate::metrics::register_routes(&config.router);
        if reloads.send(Routing { config, sinks, certs }).await.is_err() {
            return;
        }
    }
}

/// The `[sns]` certificates: pinned files read now (one that cannot be read
/// is logged, and messages that need it wait in SQS), and the fetcher when
/// `fetch_certs` is on. Fetched certificates stay cached across reloads.
fn certificates(config: &Config, fetcher: &Arc<crate::signature::Fetcher>) -> crate::signature::Certificates {
    let pinned = config
        .sns
        .signing_certs
        .iter()
        .map(|(url, path)| {
            let cert = crate::signature::Certificate::read(path).map(Arc::new);
            if let Err(e) = &cert {
                error!(error = %format!("sns.signing_certs.{url:?}: {e}"), "cannot read a pinned signing certificate: messages signed with it wait in SQS");
            }
            (url.clone(), cert)
        })
        .collect();
    crate::signature::Certificates::new(pinned, config.sns.fetch_certs.then(|| fetcher.clone()))
}

/// Opens the config's sinks. One that cannot be opened does not stop the
/// others: it is opened again on each delivery, its messages wait in SQS,
/// and `/readyz` names it meanwhile.
async fn open_sinks(config: &Config, aws: &aws_config::SdkConfig) -> Sinks {
    let (sinks, unopened) = Sinks::open(config, aws).await;
    for (name, reason) in unopened {
        error!(
            sink = %name,
            error = %format!("sinks.{name}: {reason}"),
            "cannot open the sink: its messages stay in SQS until it opens (tried again on each delivery)"
        );
    }
    sinks
}

/// Fires `shutdown` on the first SIGTERM or SIGINT; a second one ends the
/// process at once (what was not deleted comes back when its visibility
/// timeout ends).
async fn signals(shutdown: CancellationToken, log: Arc<Log>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut terminate, mut interrupt) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(e), _) | (_, Err(e)) => {
            error!(error = %e, "cannot listen for SIGTERM and SIGINT");
            return;
        }
    };
    let mut next = async || {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    };
    let first = next().await;
    info!(signal = first, "shutdown requested (a second signal stops at once)");
    shutdown.cancel();
    let second = next().await;
    warn!(
        signal = second,
        "second signal: stopping now; unfinished messages come back when their visibility timeout ends"
    );
    log.flush();
    std::process::exit(super::exit::INTERRUPTED);
}
