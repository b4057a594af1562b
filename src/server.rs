//! The HTTP listener for orchestrators and Prometheus: `/healthz` (every
//! long-lived task alive and making progress), `/readyz` (every source
//! polled successfully of late and every sink open), `/metrics` (Prometheus
//! text format).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::sink::Sinks;

/// What `/healthz` and `/readyz` know: the long-lived tasks and when each
/// last showed progress, the sources expected and when each was last polled
/// without error, and the sinks in use.
#[derive(Debug, Default)]
pub struct Health {
    inner: Mutex<Readiness>,
}

#[derive(Debug, Default)]
struct Readiness {
    /// Source name and how long a successful poll counts as recent.
    expected: Vec<(String, Duration)>,
    last_polled: HashMap<String, Instant>,
    tasks: HashMap<String, Task>,
    sinks: Option<Sinks>,
}

/// A long-lived task as `/healthz` sees it.
#[derive(Debug)]
struct Task {
    /// Until when it must show progress again; `None` while it waits on
    /// others (for free in-flight slots), which is not its own fault.
    due: Option<Instant>,
    dead: bool,
}

impl Health {
    /// Sets the sources that must be polled for the daemon to be ready.
    pub fn expect(&self, sources: impl IntoIterator<Item = (String, Duration)>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.expected = sources.into_iter().collect();
    }

    /// Notes a successful poll of `source`.
    pub fn polled(&self, source: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = inner.last_polled.get_mut(source) {
            *at = Instant::now();
        } else {
            inner.last_polled.insert(source.to_owned(), Instant::now());
        }
    }

    /// Sets the sinks in use (at start and on every reload), for `/readyz`.
    pub fn sinks(&self, sinks: Sinks) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).sinks = Some(sinks);
    }

    /// Notes that the task `name` made progress and must show more within
    /// `within` (`None`: it waits on others now, and may for long).
    pub fn beat(&self, name: &str, within: Option<Duration>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let due = within.map(|within| Instant::now() + within);
        match inner.tasks.get_mut(name) {
            Some(task) => *task = Task { due, dead: false },
            None => {
                inner.tasks.insert(name.to_owned(), Task { due, dead: false });
            }
        }
    }

    /// Notes that the task `name` ended when it should not have.
    pub fn died(&self, name: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.tasks.insert(name.to_owned(), Task { due: None, dead: true });
    }

    /// Forgets the task `name`, stopped on purpose.
    pub fn retire(&self, name: &str) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).tasks.remove(name);
    }

    /// The tasks that are dead or overdue, with which; empty when healthy.
    pub fn unhealthy(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let mut unhealthy: Vec<String> = inner
            .tasks
            .iter()
            .filter_map(|(name, task)| match task {
                Task { dead: true, .. } => Some(format!("{name}: dead")),
                Task { due: Some(due), .. } if *due < now => Some(format!("{name}: no progress")),
                _ => None,
            })
            .collect();
        let sinks = inner.sinks.iter().flat_map(Sinks::dead).map(|name| format!("sink {name}: its batcher is dead"));
        unhealthy.extend(sinks);
        unhealthy.sort();
        unhealthy
    }

    /// What keeps the daemon from being ready: sources not polled
    /// successfully within their window, sinks that cannot open; empty when ready.
    pub fn not_ready(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let none = inner.expected.is_empty().then(|| "no source polled yet".to_owned());
        let sources = inner
            .expected
            .iter()
            .filter(|(name, window)| inner.last_polled.get(name).is_none_or(|at| at.elapsed() > *window))
            .map(|(name, _)| format!("source {name}: not polled recently"));
        let sinks = inner.sinks.iter().flat_map(Sinks::unopened).map(|(name, reason)| format!("sink {name}: {reason}"));
        none.into_iter().chain(sources).chain(sinks).collect()
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: PrometheusHandle,
}

/// Binds `listen`; returns the bound address (useful with port 0) and the
/// server future, which ends when `shutdown` fires.
pub async fn bind(
    listen: SocketAddr,
    health: Arc<Health>,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|State(state): State<AppState>| async move { state.metrics.render() }))
        .with_state(AppState { health, metrics });
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await });
    Ok((address, async move { serve.await }))
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    let unhealthy = state.health.unhealthy();
    if unhealthy.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {}\n", unhealthy.join("; ")))
    }
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let waiting = state.health.not_ready();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", waiting.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_expected_source_was_polled_recently() {
        let health = Health::default();
        assert!(!health.not_ready().is_empty(), "nothing expected yet is not ready");
        health.expect([("a".to_owned(), Duration::from_secs(60)), ("b".to_owned(), Duration::from_secs(60))]);
        assert_eq!(health.not_ready(), ["source a: not polled recently", "source b: not polled recently"]);
        health.polled("a");
        assert_eq!(health.not_ready(), ["source b: not polled recently"]);
        health.polled("b");
        assert!(health.not_ready().is_empty());
        health.expect([("a".to_owned(), Duration::ZERO)]);
        assert_eq!(
            health.not_ready(),
            ["source a: not polled recently"],
            "a poll older than the window does not count"
        );
    }

    #[test]
    fn unhealthy_while_a_task_is_dead_or_overdue_not_while_it_waits_on_others() {
        let health = Health::default();
        health.beat("receive feedback#0", Some(Duration::from_secs(60)));
        health.beat("receive feedback#1", None);
        assert!(health.unhealthy().is_empty());
        health.beat("receive feedback#0", Some(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(health.unhealthy(), ["receive feedback#0: no progress"]);
        health.died("deletes feedback");
        assert_eq!(health.unhealthy(), ["deletes feedback: dead", "receive feedback#0: no progress"]);
        health.retire("receive feedback#0");
        health.beat("deletes feedback", Some(Duration::from_secs(60)));
        assert!(health.unhealthy().is_empty(), "a restarted task is healthy again");
    }
}
