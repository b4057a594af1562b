//! One message, start to end: parse, route, deliver to every routed sink at
//! once, fold the sinks' results into the message's outcome, and act on it
//! in SQS (delete, or make it visible again later).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, error, field, info, info_span, warn};

use super::{Routing, Shared, Stats};
use crate::metrics::{AWS_ERRORS, DELIVERIES, DELIVERY_SECONDS, HELD, IN_FLIGHT, OUTCOMES, ROUTE_MATCHES};
use crate::notification::{self, Parsed};
use crate::route::SinkId;
use crate::sink::{Item, Origin, SinkError, Sinks};
use crate::source::sqs::{Queue, Received};

/// Everything a pipeline task of one source needs.
#[derive(Debug)]
pub struct Context {
    pub queue: Queue,
    pub visibility_timeout: Duration,
    pub(super) shared: Arc<Shared>,
}

/// What becomes of the SQS message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Every sink has it (or it needs none): delete it. Names the sinks that
    /// have it, to remember should the delete fail and the message come back.
    Delete(Vec<String>),
    /// Not done: leave it and let it come back after a backoff, and not
    /// before the given time (a sink's receiver asked for a pause).
    Later(Duration),
}

/// The worst result among a message's sinks; only `Delivered` deletes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Delivered,
    Retry(String),
    Reject(String),
}

/// Processes one received message; never panics, never loses it.
pub async fn process(ctx: Arc<Context>, mut message: Received) {
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
    let source = ctx.queue.name.to_string();
    let in_flight = metrics::gauge!(IN_FLIGHT, "source" => source.clone());
    in_flight.increment(1.0);
    async move {
        // Messages in flight finish with the routing they started with.
        let routing = ctx.shared.routing.load_full();
        let shared = &ctx.shared;
        let permit = message.permit.take();
        let (action, outcome) = tokio::select! {
            done = handle(&ctx, &routing, &message, permit) => done,
            () = shared.abort.cancelled() => {
                warn!("shutdown: left in the queue unfinished");
                return;
            }
        };
        metrics::counter!(OUTCOMES, "source" => source, "outcome" => outcome).increment(1);
        match action {
            Action::Delete(delivered) => {
                // Done with the body: its in-flight slot can take the next message
                // while the delete waits for its batch.
                let Received { message_id, receipt_handle, body, .. } = message;
                drop(body);
                match ctx.queue.delete(receipt_handle).await {
                    Ok(()) => shared.memory.forget(&message_id),
                    Err(e) => {
                        metrics::counter!(AWS_ERRORS, "service" => "sqs", "operation" => "DeleteMessageBatch")
                            .increment(1);
                        let delivered: Vec<&str> = delivered.iter().map(String::as_str).collect();
                        shared.memory.remember(&message_id, &delivered);
                        warn!(error = %e, "delete failed: the message will be received again");
                    }
                }
            }
            Action::Later(at_least) => {
                let delay = retry_delay(message.receive_count, at_least);
                if let Err(e) = ctx.queue.set_visibility(&message.receipt_handle, delay).await {
                    metrics::counter!(AWS_ERRORS, "service" => "sqs", "operation" => "ChangeMessageVisibility")
                        .increment(1);
                    warn!(error = %e, "could not set the retry delay; the queue's visibility timeout applies");
                }
            }
        }
    }
    .instrument(span)
    .await;
    in_flight.decrement(1.0);
}

/// The longest pause a sink's receiver gets by asking (`Retry-After`).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long a message that is not done stays invisible: doubles with every
/// receive, from 10 seconds up to 15 minutes; longer when a sink's receiver
/// asked for a longer pause (up to an hour).
fn retry_delay(receive_count: u32, at_least: Duration) -> Duration {
    let backoff = Duration::from_secs(10)
        .saturating_mul(1 << receive_count.saturating_sub(1).min(10))
        .min(Duration::from_secs(900));
    backoff.max(at_least.min(MAX_RETRY_AFTER))
}

/// Parses, routes and delivers one message; says what to do with it in SQS
/// and names the outcome for the metrics.
async fn handle(
    ctx: &Context,
    routing: &Routing,
    message: &Received,
    permit: Option<OwnedSemaphorePermit>,
) -> (Action, &'static str) {
    let stats = &ctx.shared.stats;
    let origin = Origin { queue: &ctx.queue.name, sqs_message_id: &message.message_id };
    let mut scratch = String::new();
    let notification = match notification::parse(&message.body, &mut scratch) {
        Ok(Parsed::Notification(n)) => n,
        Ok(Parsed::Ignored(reason)) => {
            Stats::add(&stats.ignored);
            info!(reason = %reason, "ignored: not feedback");
            return (Action::Delete(Vec::new()), "ignored");
        }
        Err(e) => {
            Stats::add(&stats.errors);
            error!(error = %e, body_bytes = message.body.len(), "cannot understand the message");
            let (body, reason) = (&message.body, e.to_string());
            return (
                dead_letter(ctx, routing, message, permit, Item::DeadLetter { body, reason: &reason }).await,
                "error",
            );
        }
    };
    let span = tracing::Span::current();
    span.record("message_id", &*notification.message_id);
    span.record("kind", notification.kind.as_str());
    span.record("source", &*notification.source);

    let routes_config = &routing.config.router;
    let decision = routes_config.route(&notification, Some(&ctx.queue.name));
    if decision.is_unrouted() {
        Stats::add(&stats.unrouted);
        warn!("unrouted: no route matches");
        return (Action::Delete(Vec::new()), "unrouted");
    }
    let routes: Vec<&str> = decision.routes.iter().map(|i| routes_config.routes()[*i].name.as_str()).collect();
    for route in &routes {
        metrics::counter!(ROUTE_MATCHES, "route" => (*route).to_owned()).increment(1);
    }
    span.record("routes", field::display(routes.join(",")));

    let item = Item::Notification { notification: &notification, routes: &routes };
    // Remembered by name: a reload since the last try may have renumbered the sinks.
    let already = ctx.shared.memory.sinks(&message.message_id);
    let name = |id: SinkId| routing.sinks.get(id).0;
    let pending: Vec<SinkId> =
        decision.sinks.iter().copied().filter(|s| !already.iter().any(|a| a == name(*s))).collect();
    let results = with_heartbeat(ctx, message, deliver(&routing.sinks, origin, item, &pending, permit)).await;

    let delivered: Vec<&str> = results.iter().filter(|(_, r)| r.is_ok()).map(|(s, _)| name(*s)).collect();
    let pause = results
        .iter()
        .filter_map(|(_, r)| match r {
            Err(SinkError::Throttled { retry_after, .. }) => Some(*retry_after),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    let outcome = results
        .into_iter()
        .map(|(_, result)| match result {
            Ok(()) => Outcome::Delivered,
            Err(e @ SinkError::Throttled { .. }) => Outcome::Retry(e.to_string()),
            Err(SinkError::Retryable(e)) => Outcome::Retry(e),
            Err(SinkError::Permanent(e)) => Outcome::Reject(e),
        })
        .max()
        .unwrap_or(Outcome::Delivered);
    match outcome {
        Outcome::Delivered => {
            Stats::add(&stats.delivered);
            info!(sinks = pending.len(), "delivered");
            (Action::Delete(decision.sinks.iter().map(|s| name(*s).to_owned()).collect()), "delivered")
        }
        Outcome::Retry(reason) => {
            Stats::add(&stats.retried);
            ctx.shared.memory.remember(&message.message_id, &delivered);
            warn!(error = %reason, "not delivered everywhere: will retry");
            (Action::Later(pause), "retry")
        }
        Outcome::Reject(reason) => {
            Stats::add(&stats.rejected);
            ctx.shared.memory.remember(&message.message_id, &delivered);
            error!(error = %reason, "rejected by a sink");
            // The in-flight slot went with the deliveries.
            let item = Item::DeadLetter { body: &message.body, reason: &reason };
            (dead_letter(ctx, routing, message, None, item).await, "reject")
        }
    }
}

/// Delivers to each sink concurrently; one log line per failed delivery.
///
/// Sinks that hold items for a batch window (digests, the archive) first take
/// the item into their batch; once they all have and the other sinks are done,
/// the in-flight slot is given back while the answers of the batches are
/// awaited: a message waiting an hour for its digest must not keep the source
/// from receiving more. A full batching sink makes `hold` wait, so the slot
/// is kept and receiving slows down instead of piling messages up.
async fn deliver(
    sinks: &Sinks,
    origin: Origin<'_>,
    item: Item<'_>,
    ids: &[SinkId],
    permit: Option<OwnedSemaphorePermit>,
) -> Vec<(SinkId, Result<(), SinkError>)> {
    let started = Instant::now();
    let (held, direct): (Vec<SinkId>, Vec<SinkId>) = ids.iter().partition(|id| sinks.get(**id).1.holds());
    let direct = join_all(direct.iter().map(|id| async move {
        let (name, sink) = sinks.get(*id);
        let result = sink.deliver(origin, item).await;
        record(name, started, &result);
        (*id, result)
    }));
    let held = join_all(held.iter().map(|id| async move { (*id, sinks.get(*id).1.hold(origin, item).await) }));
    let (mut results, held) = tokio::join!(direct, held);
    drop(permit);
    let waiting = held.iter().filter(|(_, pending)| pending.is_ok()).count();
    if waiting > 0 {
        info!(sinks = waiting, "waiting for a batch to be sent");
    }
    let answers = join_all(held.into_iter().map(|(id, pending)| async move {
        let result = match pending {
            Ok(pending) => {
                let held = metrics::gauge!(HELD, "sink" => sinks.get(id).0.to_owned());
                held.increment(1.0);
                let answer = pending.answer().await;
                held.decrement(1.0);
                answer
            }
            Err(e) => Err(e),
        };
        record(sinks.get(id).0, started, &result);
        (id, result)
    }));
    results.extend(answers.await);
    results
}

/// A delivery's metrics, and a log line when it failed.
fn record(name: &str, started: Instant, result: &Result<(), SinkError>) {
    metrics::histogram!(DELIVERY_SECONDS, "sink" => name.to_owned()).record(started.elapsed().as_secs_f64());
    let label = match result {
        Ok(()) => "ok",
        Err(SinkError::Retryable(_) | SinkError::Throttled { .. }) => "retryable",
        Err(SinkError::Permanent(_)) => "permanent",
    };
    metrics::counter!(DELIVERIES, "sink" => name.to_owned(), "result" => label).increment(1);
    if let Err(e) = result {
        warn!(sink = %name, error = %e, "delivery failed");
    }
}

/// Hands a body that cannot be delivered to the dead-letter sink, if there is
/// one; without one the message stays in its queue for the queue's redrive policy.
async fn dead_letter(
    ctx: &Context,
    routing: &Routing,
    message: &Received,
    permit: Option<OwnedSemaphorePermit>,
    item: Item<'_>,
) -> Action {
    let Some(id) = routing.config.dead_letter else {
        warn!("no dead_letter sink: left in the queue for its redrive policy");
        return Action::Later(Duration::ZERO);
    };
    let (name, sink) = routing.sinks.get(id);
    let origin = Origin { queue: &ctx.queue.name, sqs_message_id: &message.message_id };
    // As for routed sinks: a batching dead-letter sink (the archive) gets the
    // body into a batch, and the in-flight slot is given back while it waits.
    let delivery = async {
        let pending = sink.hold(origin, item).await;
        drop(permit);
        match pending {
            Ok(pending) => pending.answer().await,
            Err(e) => Err(e),
        }
    };
    match with_heartbeat(ctx, message, delivery).await {
        Ok(()) => {
            Stats::add(&ctx.shared.stats.dead_lettered);
            info!(sink = %name, "dead-lettered");
            Action::Delete(Vec::new())
        }
        Err(e) => {
            warn!(sink = %name, error = %e, "dead-letter delivery failed: will retry");
            let pause = if let SinkError::Throttled { retry_after, .. } = e { retry_after } else { Duration::ZERO };
            Action::Later(pause)
        }
    }
}

/// Runs `work` while keeping the message invisible: a task of its own extends
/// the message's visibility until `work` is done (and is stopped with it), so
/// a slow SQS call never keeps `work` from being polled.
async fn with_heartbeat<F: std::future::Future>(ctx: &Context, message: &Received, work: F) -> F::Output {
    let base = ctx.visibility_timeout;
    if (base / 2).is_zero() {
        return work.await;
    }
    let beat = keep_invisible(ctx.queue.clone(), message.receipt_handle.clone(), base).in_current_span();
    let _heartbeat = AbortOnDropHandle::new(tokio::spawn(beat));
    work.await
}

/// Past half the visibility timeout, extends the message's visibility, again
/// and again. The longer it has waited, the longer each extension (up to 15
/// minutes), so a message held an hour for a digest costs a handful of calls.
async fn keep_invisible(queue: Queue, receipt_handle: String, base: Duration) {
    let mut plan = Heartbeat::new(base, Instant::now());
    let mut next = plan.first();
    loop {
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        let Some(extension) = plan.extension(now) else {
            warn!("SQS keeps a received message invisible for 12 hours at most: it will turn visible");
            return;
        };
        match queue.set_visibility(&receipt_handle, extension).await {
            Ok(()) => {
                info!(visibility_timeout_secs = extension.as_secs(), "still delivering: visibility extended");
                next = plan.extended(now, extension);
            }
            Err(e) => {
                let Some(retry) = plan.failed(Instant::now()) else {
                    warn!(error = %e, "could not extend visibility: the message is visible again");
                    return;
                };
                warn!(error = %e, retry_in_ms = retry.saturating_duration_since(Instant::now()).as_millis(), "could not extend visibility: trying again");
                next = retry;
            }
        }
    }
}

/// When to extend a message's visibility, and by how much.
#[derive(Debug)]
struct Heartbeat {
    base: Duration,
    received: Instant,
    /// Until when the message is known to be invisible.
    deadline: Instant,
    /// The wait before trying a failed extension again; doubles each time.
    retry: Duration,
}

impl Heartbeat {
    /// SQS's ceiling on a received message's invisibility, from its receipt.
    const CEILING: Duration = Duration::from_secs(12 * 60 * 60);
    /// Kept clear of the ceiling (the receipt was a little before `received`).
    const MARGIN: Duration = Duration::from_secs(60);
    const MAX_EXTENSION: Duration = Duration::from_secs(900);
    const FIRST_RETRY: Duration = Duration::from_secs(2);

    fn new(base: Duration, received: Instant) -> Heartbeat {
        Heartbeat { base, received, deadline: received + base, retry: Self::FIRST_RETRY }
    }

    fn first(&self) -> Instant {
        self.received + self.base / 2
    }

    /// The extension to ask for at `now`: as long as the message has waited
    /// (at least the visibility timeout, at most 15 minutes), cut to what is
    /// left below the 12-hour ceiling; `None` once nothing is left.
    fn extension(&self, now: Instant) -> Option<Duration> {
        let waited = now.saturating_duration_since(self.received);
        let room = Self::CEILING.saturating_sub(waited).saturating_sub(Self::MARGIN);
        let extension = self.base.max(waited.min(Self::MAX_EXTENSION)).min(room);
        (extension >= Duration::from_secs(1)).then_some(extension)
    }

    /// Records an extension made at `now`; returns when to extend next.
    fn extended(&mut self, now: Instant, extension: Duration) -> Instant {
        self.deadline = now + extension;
        self.retry = Self::FIRST_RETRY;
        now + extension / 2
    }

    /// After a failed extension at `now`: when to try again, before the
    /// deadline; `None` once it has passed (the message is visible again).
    fn failed(&mut self, now: Instant) -> Option<Instant> {
        let left = self.deadline.checked_duration_since(now).filter(|left| !left.is_zero())?;
        let wait = self.retry.min(left / 2);
        self.retry = self.retry.saturating_mul(2);
        Some(now + wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_extensions_grow_with_the_wait_and_stop_below_the_12_hour_ceiling() {
        let start = Instant::now();
        let plan = Heartbeat::new(Duration::from_secs(30), start);
        assert_eq!(plan.first(), start + Duration::from_secs(15));
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(plan.extension(at(15)), Some(Duration::from_secs(30)), "at least the visibility timeout");
        assert_eq!(plan.extension(at(120)), Some(Duration::from_secs(120)), "as long as it has waited");
        assert_eq!(plan.extension(at(7200)), Some(Duration::from_secs(900)), "at most 15 minutes");
        let late = 12 * 3600 - 60 - 100;
        assert_eq!(plan.extension(at(late)), Some(Duration::from_secs(100)), "cut below the ceiling");
        assert_eq!(plan.extension(at(12 * 3600 - 60)), None, "nothing left");
    }

    #[test]
    fn a_failed_extension_is_retried_before_the_deadline_and_given_up_after_it() {
        let start = Instant::now();
        let mut plan = Heartbeat::new(Duration::from_secs(30), start);
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(plan.extended(at(15), Duration::from_secs(30)), at(30), "next at half the extension");
        // The deadline is 45 s: retries come sooner and sooner, never past it.
        assert_eq!(plan.failed(at(30)), Some(at(32)));
        assert_eq!(plan.failed(at(32)), Some(at(36)));
        assert_eq!(plan.failed(at(43)), Some(at(44)));
        assert_eq!(plan.failed(at(45)), None, "visible again: no more calls");
        assert_eq!(plan.extended(at(50), Duration::from_secs(30)), at(65));
        assert_eq!(plan.failed(at(65)), Some(at(67)), "a success resets the retry wait");
    }

    #[test]
    fn the_worst_result_wins() {
        let worst = [Outcome::Delivered, Outcome::Reject("r".into()), Outcome::Retry("t".into())].into_iter().max();
        assert_eq!(worst, Some(Outcome::Reject("r".into())));
        let worst = [Outcome::Delivered, Outcome::Retry("t".into())].into_iter().max();
        assert_eq!(worst, Some(Outcome::Retry("t".into())));
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let none = Duration::ZERO;
        assert_eq!(retry_delay(1, none), Duration::from_secs(10));
        assert_eq!(retry_delay(2, none), Duration::from_secs(20));
        assert_eq!(retry_delay(4, none), Duration::from_secs(80));
        assert_eq!(retry_delay(50, none), Duration::from_secs(900));
        assert_eq!(retry_delay(0, none), Duration::from_secs(10));
    }

    #[test]
    fn a_pause_asked_for_by_a_receiver_lengthens_the_delay_up_to_an_hour() {
        assert_eq!(retry_delay(1, Duration::from_secs(120)), Duration::from_secs(120));
        assert_eq!(retry_delay(8, Duration::from_secs(120)), Duration::from_secs(900), "the backoff is longer");
        assert_eq!(retry_delay(1, Duration::from_secs(86_400)), Duration::from_secs(3600));
    }
}
