//! Prometheus metrics: every name and label in one place, and the recorder.
//!
//! Code records through the `metrics` facade; without an installed recorder
//! (tests, the offline commands) recording costs next to nothing.

use metrics::{describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::notification::Kind;
use crate::notification::bounce::BounceClass;
use crate::route::Router;

/// Messages received from SQS, by `source`.
pub const RECEIVED: &str = "sesroute_messages_received_total";
/// Messages by `source` and `outcome`: delivered, retry, reject, ignored, error, refused, unrouted.
pub const OUTCOMES: &str = "sesroute_messages_total";
/// Notifications matched, by `route`.
pub const ROUTE_MATCHES: &str = "sesroute_route_matches_total";
/// Notifications handled (delivered, or dead-lettered where a sink refused),
/// once per matching route, by `route`, `kind` and, for bounces only,
/// `bounce_class`: the numerators and denominators of bounce and complaint
/// rates per route (see `deploy/prometheus/`).
pub const NOTIFICATIONS: &str = "sesroute_notifications_total";
/// The affected recipients of those notifications (bounced, complained,
/// delivered, delayed; for sends, every destination), with the same labels:
/// SES's own rates count recipients.
pub const RECIPIENTS: &str = "sesroute_notification_recipients_total";
/// Deliveries by `sink` and `result`: ok, retryable, permanent.
pub const DELIVERIES: &str = "sesroute_sink_deliveries_total";
/// Webhook answers that refuse every delivery (401, 403, 404, 410, redirects), by `sink` and `status`.
pub const REFUSALS: &str = "sesroute_sink_refusals_total";
/// Time a sink took to take (or refuse) a delivery, by `sink`.
pub const DELIVERY_SECONDS: &str = "sesroute_sink_delivery_seconds";
/// Messages being processed now, by `source`.
pub const IN_FLIGHT: &str = "sesroute_messages_in_flight";
/// Notifications waiting for their batch to be sent (an email digest, an archive object), by `sink`.
pub const HELD: &str = "sesroute_sink_held_notifications";
/// Age of the oldest message in the latest receive (from SQS `SentTimestamp`), by `source`.
pub const OLDEST_AGE_SECONDS: &str = "sesroute_oldest_message_age_seconds";
/// Failed AWS calls, by `service` and `operation`.
pub const AWS_ERRORS: &str = "sesroute_aws_errors_total";
/// Config reloads by `result`: ok, error.
pub const RELOADS: &str = "sesroute_config_reloads_total";
/// Panics caught, by `task`: message (one message's pipeline) or receive (a receive loop, restarted).
pub const PANICS: &str = "sesroute_panics_total";
/// Bodies that failed signature verification (or an allow-list), by `source`,
/// `mode` (log, require) and `reason`: not-signed, bad-version, bad-cert-url,
/// certificate, bad-signature, topic-not-allowed, account-not-allowed,
/// cert-unavailable.
pub const SIGNATURE_FAILURES: &str = "sesroute_signature_failures_total";
/// Always 1, with the `version` label.
pub const BUILD_INFO: &str = "sesroute_build_info";

/// The labels of [`NOTIFICATIONS`] and [`RECIPIENTS`]: `bounce_class` on bounces only.
pub fn rate_labels(route: &str, kind: Kind, class: Option<BounceClass>) -> Vec<(&'static str, String)> {
    let mut labels = vec![("route", route.to_owned()), ("kind", kind.as_str().to_owned())];
    if let Some(class) = class {
        labels.push(("bounce_class", class.as_str().to_owned()));
    }
    labels
}

/// Sets the rate counters every route can have to 0 (adding 0 to those that
/// exist), so that the first bounce or complaint after a start or reload is
/// a rise from 0 that `increase()` sees, not a new series it cannot.
pub fn register_routes(router: &Router) {
    let bounces = BounceClass::ALL.map(|class| (Kind::Bounce, Some(class)));
    let others = [Kind::Complaint, Kind::Delivery, Kind::Send].map(|kind| (kind, None));
    for route in router.routes() {
        for (kind, class) in bounces.iter().chain(&others) {
            let labels = rate_labels(&route.name, *kind, *class);
            metrics::counter!(NOTIFICATIONS, &labels).increment(0);
            metrics::counter!(RECIPIENTS, &labels).increment(0);
        }
    }
}

/// Installs the Prometheus recorder and describes every metric.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(DELIVERY_SECONDS.to_owned()),
            &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe_counter!(RECEIVED, "Messages received from SQS, by source.");
    describe_counter!(
        OUTCOMES,
        "Messages by source and outcome (delivered, retry, reject, ignored, error, refused, unrouted)."
    );
    describe_counter!(ROUTE_MATCHES, "Notifications matched, by route.");
    describe_counter!(
        NOTIFICATIONS,
        "Notifications handled, once per matching route, by route, kind and (bounces only) bounce_class."
    );
    describe_counter!(
        RECIPIENTS,
        "Affected recipients of the notifications handled, by route, kind and (bounces only) bounce_class."
    );
    describe_counter!(DELIVERIES, "Sink deliveries by sink and result (ok, retryable, permanent).");
    describe_counter!(
        REFUSALS,
        "Webhook answers refusing every delivery (401, 403, 404, 410, 3xx), by sink and status."
    );
    describe_histogram!(DELIVERY_SECONDS, metrics::Unit::Seconds, "Time a sink took to take a delivery, by sink.");
    describe_gauge!(IN_FLIGHT, "Messages being processed now, by source.");
    describe_gauge!(HELD, "Notifications waiting for their batch (an email digest, an archive object), by sink.");
    describe_gauge!(OLDEST_AGE_SECONDS, metrics::Unit::Seconds, "Age of the oldest message in the latest receive.");
    describe_counter!(AWS_ERRORS, "Failed AWS calls, by service and operation.");
    describe_counter!(RELOADS, "Config reloads by result (ok, error).");
    describe_counter!(PANICS, "Panics caught, by task (message, receive).");
    describe_counter!(
        SIGNATURE_FAILURES,
        "Bodies that failed SNS signature verification or an allow-list, by source, mode and reason."
    );
    describe_gauge!(BUILD_INFO, "Build information; always 1.");
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

#[cfg(test)]
mod tests {
    /// Every `sesroute_` metric the shipped Prometheus rules use is one the
    /// daemon exports, with the labels they select on.
    #[test]
    fn the_alert_rules_use_only_metrics_and_labels_the_daemon_exports() {
        let rules = include_str!("../deploy/prometheus/sesroute-rules.yaml");
        let exported = [super::NOTIFICATIONS, super::RECIPIENTS];
        let mut used = 0;
        for (at, _) in rules.match_indices("sesroute_") {
            let name: String = rules[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let preceded = rules[..at].chars().next_back();
            if preceded.is_some_and(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_') {
                continue; // a recorded series (route:sesroute_...), not an exported one
            }
            assert!(exported.contains(&name.as_str()), "the rules use {name}, which sesroute does not export");
            used += 1;
        }
        assert!(used >= 5, "the rules read the exported counters");
        for label in ["route", "kind", "bounce_class"] {
            assert!(rules.contains(&format!("by ({label}")) || rules.contains(&format!("{label}=")), "{label}");
        }
    }
}
