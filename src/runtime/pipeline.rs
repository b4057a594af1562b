//! One message, start to end: parse, route, deliver to every routed sink at
//! once, fold the sinks' results into the message's outcome, and act on it
//! in SQS (delete, or make it visible again later).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tracing::{Instrument, error, field, info, info_span, warn};

use super::{Delivered, Stats};
use crate::config::Config;
use crate::notification::{self, Parsed};
use crate::route::SinkId;
use crate::sink::{Item, Origin, SinkError, Sinks};
use crate::source::sqs::{Queue, Received};

/// Everything a pipeline task of one source needs.
#[derive(Debug)]
pub struct Context {
    pub config: Arc<Config>,
    pub sinks: Sinks,
    pub memory: Arc<Delivered>,
    pub stats: Arc<Stats>,
    pub queue: Queue,
    pub visibility_timeout: Duration,
    pub abort: tokio_util::sync::CancellationToken,
}

/// What becomes of the SQS message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Every sink has it (or it needs none): delete it. Names the sinks that
    /// have it, to remember should the delete fail and the message come back.
    Delete(Vec<SinkId>),
    /// Not done: leave it and let it come back after a backoff.
    Later,
}

/// The worst result among a message's sinks; only `Delivered` deletes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Delivered,
    Retry(String),
    Reject(String),
}

/// Processes one received message; never panics, never loses it.
pub async fn process(ctx: Arc<Context>, message: Received) {
    let span = info_span!(
        "message",
        queue = %ctx.queue.name,
        sqs_message_id = %message.message_id,
        receive_count = message.receive_count,
        message_id = field::Empty,
        kind = field::Empty,
        source = field::Empty,
        routes = field::Empty,
    );
    async {
        let action = tokio::select! {
            action = handle(&ctx, &message) => action,
            () = ctx.abort.cancelled() => {
                warn!("shutdown: left in the queue unfinished");
                return;
            }
        };
        match action {
            Action::Delete(delivered) => match ctx.queue.delete(message.receipt_handle.clone()).await {
                Ok(()) => ctx.memory.forget(&message.message_id),
                Err(e) => {
                    ctx.memory.remember(&message.message_id, &delivered);
                    warn!(error = %e, "delete failed: the message will be received again");
                }
            },
            Action::Later => {
                let delay = retry_delay(message.receive_count);
                if let Err(e) = ctx.queue.set_visibility(&message.receipt_handle, delay).await {
                    warn!(error = %e, "could not set the retry delay; the queue's visibility timeout applies");
                }
            }
        }
    }
    .instrument(span)
    .await;
}

/// How long a message that is not done stays invisible: doubles with every
/// receive, from 10 seconds up to 15 minutes.
fn retry_delay(receive_count: u32) -> Duration {
    Duration::from_secs(10).saturating_mul(1 << receive_count.saturating_sub(1).min(10)).min(Duration::from_secs(900))
}

async fn handle(ctx: &Context, message: &Received) -> Action {
    let origin = Origin { queue: &ctx.queue.name, sqs_message_id: &message.message_id };
    let mut scratch = String::new();
    let notification = match notification::parse(&message.body, &mut scratch) {
        Ok(Parsed::Notification(n)) => n,
        Ok(Parsed::Ignored(reason)) => {
            Stats::add(&ctx.stats.ignored);
            info!(reason = %reason, "ignored: not feedback");
            return Action::Delete(Vec::new());
        }
        Err(e) => {
            Stats::add(&ctx.stats.errors);
            error!(error = %e, body_bytes = message.body.len(), "cannot understand the message");
            return dead_letter(ctx, origin, &message.body, &e.to_string()).await;
        }
    };
    let span = tracing::Span::current();
    span.record("message_id", &*notification.message_id);
    span.record("kind", notification.kind.as_str());
    span.record("source", &*notification.source);

    let decision = ctx.config.router.route(&notification, Some(&ctx.queue.name));
    if decision.is_unrouted() {
        Stats::add(&ctx.stats.unrouted);
        warn!("unrouted: no route matches");
        return Action::Delete(Vec::new());
    }
    let routes: Vec<&str> = decision.routes.iter().map(|i| ctx.config.router.routes()[*i].name.as_str()).collect();
    span.record("routes", field::display(routes.join(",")));

    let item = Item::Notification { notification: &notification, routes: &routes };
    let already = ctx.memory.sinks(&message.message_id);
    let pending: Vec<SinkId> = decision.sinks.iter().copied().filter(|s| !already.contains(s)).collect();
    let results = with_heartbeat(ctx, message, deliver(ctx, origin, item, &pending)).await;

    let delivered: Vec<SinkId> = results.iter().filter(|(_, r)| r.is_ok()).map(|(s, _)| *s).collect();
    let outcome = results
        .into_iter()
        .map(|(_, result)| match result {
            Ok(()) => Outcome::Delivered,
            Err(SinkError::Retryable(e)) => Outcome::Retry(e),
            Err(SinkError::Permanent(e)) => Outcome::Reject(e),
        })
        .max()
        .unwrap_or(Outcome::Delivered);
    match outcome {
        Outcome::Delivered => {
            Stats::add(&ctx.stats.delivered);
            info!(sinks = pending.len(), "delivered");
            Action::Delete(decision.sinks)
        }
        Outcome::Retry(reason) => {
            Stats::add(&ctx.stats.retried);
            ctx.memory.remember(&message.message_id, &delivered);
            warn!(error = %reason, "not delivered everywhere: will retry");
            Action::Later
        }
        Outcome::Reject(reason) => {
            Stats::add(&ctx.stats.rejected);
            ctx.memory.remember(&message.message_id, &delivered);
            error!(error = %reason, "rejected by a sink");
            dead_letter(ctx, origin, &message.body, &reason).await
        }
    }
}

/// Delivers to each sink concurrently; one log line per failed delivery.
async fn deliver(
    ctx: &Context,
    origin: Origin<'_>,
    item: Item<'_>,
    sinks: &[SinkId],
) -> Vec<(SinkId, Result<(), SinkError>)> {
    join_all(sinks.iter().map(|id| async move {
        let (name, sink) = ctx.sinks.get(*id);
        let result = sink.deliver(origin, item).await;
        if let Err(e) = &result {
            warn!(sink = %name, error = %e, "delivery failed");
        }
        (*id, result)
    }))
    .await
}

/// Hands a body that cannot be delivered to the dead-letter sink, if there is
/// one; without one the message stays in its queue for the queue's redrive policy.
async fn dead_letter(ctx: &Context, origin: Origin<'_>, body: &str, reason: &str) -> Action {
    let Some(id) = ctx.config.dead_letter else {
        warn!("no dead_letter sink: left in the queue for its redrive policy");
        return Action::Later;
    };
    let (name, sink) = ctx.sinks.get(id);
    match sink.deliver(origin, Item::DeadLetter { body, reason }).await {
        Ok(()) => {
            Stats::add(&ctx.stats.dead_lettered);
            info!(sink = %name, "dead-lettered");
            Action::Delete(Vec::new())
        }
        Err(e) => {
            warn!(sink = %name, error = %e, "dead-letter delivery failed: will retry");
            Action::Later
        }
    }
}

/// Runs `work` while keeping the message invisible: past half the visibility
/// timeout, its visibility is extended, again and again until `work` is done.
async fn with_heartbeat<F: std::future::Future>(ctx: &Context, message: &Received, work: F) -> F::Output {
    let half = ctx.visibility_timeout / 2;
    if half.is_zero() {
        return work.await;
    }
    tokio::pin!(work);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticks.tick() => {
                match ctx.queue.set_visibility(&message.receipt_handle, ctx.visibility_timeout).await {
                    Ok(()) => info!(visibility_timeout_secs = ctx.visibility_timeout.as_secs(), "sinks are slow: visibility extended"),
                    Err(e) => warn!(error = %e, "could not extend visibility"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_result_wins() {
        let worst = [Outcome::Delivered, Outcome::Reject("r".into()), Outcome::Retry("t".into())].into_iter().max();
        assert_eq!(worst, Some(Outcome::Reject("r".into())));
        let worst = [Outcome::Delivered, Outcome::Retry("t".into())].into_iter().max();
        assert_eq!(worst, Some(Outcome::Retry("t".into())));
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        assert_eq!(retry_delay(1), Duration::from_secs(10));
        assert_eq!(retry_delay(2), Duration::from_secs(20));
        assert_eq!(retry_delay(4), Duration::from_secs(80));
        assert_eq!(retry_delay(50), Duration::from_secs(900));
        assert_eq!(retry_delay(0), Duration::from_secs(10));
    }
}
