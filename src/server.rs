//! The HTTP listener for orchestrators and Prometheus: `/healthz` (the
//! process is alive), `/readyz` (config loaded and every source polled
//! successfully of late), `/metrics` (Prometheus text format).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

/// What `/readyz` knows: the sources expected and when each was last polled
/// without error.
#[derive(Debug, Default)]
pub struct Health {
    inner: Mutex<Readiness>,
}

#[derive(Debug, Default)]
struct Readiness {
    /// Source name and how long a successful poll counts as recent.
    expected: Vec<(String, Duration)>,
    last_polled: HashMap<String, Instant>,
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

    /// The sources not polled successfully within their window; empty when ready.
    pub fn not_ready(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.expected.is_empty() {
            return vec!["no source polled yet".to_owned()];
        }
        inner
            .expected
            .iter()
            .filter(|(name, window)| inner.last_polled.get(name).is_none_or(|at| at.elapsed() > *window))
            .map(|(name, _)| name.clone())
            .collect()
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
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|State(state): State<AppState>| async move { state.metrics.render() }))
        .with_state(AppState { health, metrics });
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await });
    Ok((address, async move { serve.await }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let waiting = state.health.not_ready();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: not polled recently: {}\n", waiting.join(", ")))
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
        assert_eq!(health.not_ready(), ["a", "b"]);
        health.polled("a");
        assert_eq!(health.not_ready(), ["b"]);
        health.polled("b");
        assert!(health.not_ready().is_empty());
        health.expect([("a".to_owned(), Duration::ZERO)]);
        assert_eq!(health.not_ready(), ["a"], "a poll older than the window does not count");
    }
}
