//! One message, start to end: parse, route, deliver to every routed sink at
//! once, fold the sinks' results into the message's outcome, and act on it
//! in SQS (delete, or make it visible again later).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::{Instrument, error, field, info, info_span, warn};

use super::{Routing, Shared, Stats};
use crate::metrics::{
    AWS_ERRORS, DELIVERIES, DELIVERY_SECONDS, HELD, IN_FLIGHT, NOTIFICATIONS, OUTCOMES, RECIPIENTS, ROUTE_MATCHES,
    SIGNATURE_FAILURES,
};
use crate::notification::{self, Notification, Parsed};
use crate::route::SinkId;
use crate::signature::{Mode, Policy, Refusal, Verdict};
use crate::sink::{Item, Origin, SinkError, Sinks};
use crate::source::heartbeat;
use crate::source::sqs::{Queue, Received};

/// Everything a pipeline task of one source needs.
#[derive(Debug)]
pub struct Context {
    pub queue: Queue,
    /// The source's signature settings.
    pub policy: Arc<Policy>,
    pub visibility_timeout: Duration,
    pub(super) shared: Arc<Shared>,
}

/// What becomes of the SQS message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Every sink has it (or it needs none): delete it. Names the sinks that
    /// have it (by [`Sinks::key`]), to remember should the delete fail and
    /// the message come back.
    Delete(Vec<String>),
    /// Not done: leave it and let it come back after a backoff, and not
    /// before the given time (a sink's receiver asked for a pause).
    Later(Duration),
}

/// What a message's sinks answered, sink by sink: each sink's result counts
/// on its own, so one sink refusing the message never costs another sink
/// its copy.
#[derive(Debug, PartialEq, Eq)]
struct Fold<K> {
    /// Sinks that have it.
    delivered: Vec<K>,
    /// Sinks that refused it for good, with why: each gets its copy
    /// dead-lettered on its own, and is then done with.
    rejected: Vec<(K, String)>,
    /// Sinks that asked to be tried again: the message stays in SQS until
    /// they have it. The first reason, and the longest pause asked for.
    retry: Option<(String, Duration)>,
}

impl<K> Fold<K> {
    fn of(results: impl IntoIterator<Item = (K, Result<(), SinkError>)>) -> Fold<K> {
        let mut fold = Fold { delivered: Vec::new(), rejected: Vec::new(), retry: None };
        for (sink, result) in results {
            match result {
                Ok(()) => fold.delivered.push(sink),
                Err(SinkError::Permanent(reason)) => fold.rejected.push((sink, reason)),
                Err(e) => {
                    let pause =
                        if let SinkError::Throttled { retry_after, .. } = e { retry_after } else { Duration::ZERO };
                    fold.retry_later(e.to_string(), pause);
                }
            }
        }
        fold
    }

    fn retry_later(&mut self, reason: String, pause: Duration) {
        match &mut self.retry {
            Some((_, longest)) => *longest = (*longest).max(pause),
            None => self.retry = Some((reason, pause)),
        }
    }
}

/// Counts a message in flight for its source's gauge until dropped, even
/// when its task panics.
struct InFlight(metrics::Gauge);

impl InFlight {
    fn start(source: &str) -> InFlight {
        let gauge = metrics::gauge!(IN_FLIGHT, "source" => source.to_owned());
        gauge.increment(1.0);
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Processes one received message; never loses it.
///
/// From receipt until its delete is confirmed (or its retry delay set) the
/// message is kept invisible and holds an in-flight slot, so slow deletes
/// slow receiving instead of letting delivered messages turn visible again.
/// When the shutdown grace period ends first, it is made visible at once.
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
    let _in_flight = InFlight::start(&ctx.queue.name);
    async move {
        // Messages in flight finish with the routing they started with.
        let routing = ctx.shared.routing.load_full();
        let mut permit = message.permit.take();
        let work = async {
            let (action, outcome) = handle(&ctx, &routing, &message, &mut permit).await;
            metrics::counter!(OUTCOMES, "source" => ctx.queue.name.to_string(), "outcome" => outcome).increment(1);
            // A slot given back while a batch was awaited is taken again for the delete.
            let _slot = match permit.take() {
                Some(permit) => Some(permit),
                None => ctx.queue.slot().await,
            };
            act(&ctx, &message, action).await;
        };
        tokio::select! {
            () = heartbeat::while_invisible(&ctx.queue, &message.receipt_handle, ctx.visibility_timeout, work) => {}
            () = ctx.shared.abort.cancelled() => {
                let visible = ctx.queue.set_visibility(&message.receipt_handle, Duration::ZERO);
                if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), visible).await {
                    warn!("shutdown: unfinished, made visible again");
                } else {
                    warn!("shutdown: unfinished, visible again once its visibility timeout ends");
                }
            }
        }
    }
    .instrument(span)
    .await;
}

/// Deletes the message, or sets when it comes back.
async fn act(ctx: &Context, message: &Received, action: Action) {
    let shared = &ctx.shared;
    match action {
        Action::Delete(delivered) => match ctx.queue.delete(message.receipt_handle.clone()).await {
            Ok(()) => shared.delivered.forget(&message.message_id),
            Err(e) => {
                metrics::counter!(AWS_ERRORS, "service" => "sqs", "operation" => "DeleteMessageBatch").increment(1);
                let delivered: Vec<&str> = delivered.iter().map(String::as_str).collect();
                shared.delivered.remember(&message.message_id, &delivered);
                warn!(error = %e, "delete failed: the message will be received again");
            }
        },
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
/// and names the outcome for the metrics. `permit` is given back while the
/// message waits for a batch.
async fn handle(
    ctx: &Context,
    routing: &Routing,
    message: &Received,
    permit: &mut Option<OwnedSemaphorePermit>,
) -> (Action, &'static str) {
    let stats = &ctx.shared.stats;
    let origin = Origin { queue: &ctx.queue.name, sqs_message_id: &message.message_id };
    match ctx.policy.verify(&message.body, &routing.certs, std::time::SystemTime::now()).await {
        Verdict::Genuine => {}
        Verdict::Refused(refusal) => {
            if let Some(refused) = refuse(ctx, routing, message, permit, &refusal).await {
                return refused;
            }
        }
        Verdict::Unavailable(why) => {
            count_failure(ctx, "cert-unavailable");
            if ctx.policy.mode == Mode::Require {
                Stats::add(&stats.retried);
                warn!(error = %why, "signature: no verdict yet (the certificate cannot be had): will retry");
                return (Action::Later(Duration::ZERO), "retry");
            }
            warn!(error = %why, "signature: not verified (the certificate cannot be had); routed anyway (signature = \"log\")");
        }
    }
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
            return (unreadable(ctx, routing, message, permit, &e.to_string()).await, "error");
        }
    };
    if let Err(refusal) = ctx.policy.check_account(notification.sending_account_id.as_deref()) {
        count_failure(ctx, refusal.label());
        Stats::add(&stats.refused);
        error!(error = %refusal, body_bytes = message.body.len(), "refused: not from an allowed account");
        let reason = format!("refused: {refusal}");
        return (unreadable(ctx, routing, message, permit, &reason).await, "refused");
    }
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
    // Remembered by name and destination: a reload since the last try may have
    // renumbered the sinks, or pointed one elsewhere.
    let sinks = &routing.sinks;
    let already = ctx.shared.delivered.sinks(&message.message_id);
    let pending: Vec<SinkId> =
        decision.sinks.iter().copied().filter(|s| !already.iter().any(|a| a == sinks.key(*s))).collect();
    // What the message takes in memory while it waits for a batch: the body,
    // the decoded SNS `Message` and what the batch keeps of it.
    let held = Held::new(&ctx.shared.held, message.body.len() + notification.ses_json.len());
    let fold = Fold::of(deliver(sinks, origin, item, &pending, permit, &held).await);

    let Fold { mut delivered, rejected, mut retry } = fold;
    let any_rejected = !rejected.is_empty();
    for (id, reason) in rejected {
        let name = sinks.get(id).0;
        let reason = format!("sinks.{name}: {reason}");
        error!(sink = %name, error = %reason, "rejected by a sink: its copy goes to the dead-letter sink");
        let item = Item::DeadLetter { body: &message.body, reason: &reason };
        match dead_letter(ctx, routing, message, permit, &held, item).await {
            // The rejecting sink is done with: its copy is kept elsewhere.
            Ok(()) => delivered.push(id),
            Err(pause) => retry = Some((format!("{name}'s copy could not be dead-lettered"), pause)),
        }
    }
    if any_rejected {
        Stats::add(&stats.rejected);
    }
    match retry {
        None => {
            Stats::add(&stats.delivered);
            count_handled(&notification, &routes);
            info!(sinks = pending.len(), "delivered");
            let keys = decision.sinks.iter().map(|s| sinks.key(*s).to_owned()).collect();
            (Action::Delete(keys), if any_rejected { "reject" } else { "delivered" })
        }
        Some((reason, pause)) => {
            Stats::add(&stats.retried);
            let done: Vec<&str> = delivered.iter().map(|s| sinks.key(*s)).collect();
            ctx.shared.delivered.remember(&message.message_id, &done);
            warn!(error = %reason, "not delivered everywhere: will retry");
            (Action::Later(pause), "retry")
        }
    }
}

/// A body that failed verification: under `require` it goes the way of a body
/// that cannot be understood (the answer for the message); under `log` it is
/// only reported (`None`: go on).
async fn refuse(
    ctx: &Context,
    routing: &Routing,
    message: &Received,
    permit: &mut Option<OwnedSemaphorePermit>,
    refusal: &Refusal,
) -> Option<(Action, &'static str)> {
    count_failure(ctx, refusal.label());
    if ctx.policy.mode != Mode::Require {
        warn!(error = %refusal, "signature: does not verify; routed anyway (signature = \"log\")");
        return None;
    }
    Stats::add(&ctx.shared.stats.refused);
    error!(error = %refusal, body_bytes = message.body.len(), "refused: not a verified SNS envelope");
    let reason = format!("refused: {refusal}");
    Some((unreadable(ctx, routing, message, permit, &reason).await, "refused"))
}

/// Counts a notification that leaves the queue, for the rates per route.
fn count_handled(n: &Notification<'_>, routes: &[&str]) {
    let recipients = n.recipients.len() as u64;
    for route in routes {
        let labels = crate::metrics::rate_labels(route, n.kind, n.bounce_class());
        metrics::counter!(NOTIFICATIONS, &labels).increment(1);
        metrics::counter!(RECIPIENTS, &labels).increment(recipients);
    }
}

fn count_failure(ctx: &Context, reason: &'static str) {
    metrics::counter!(
        SIGNATURE_FAILURES,
        "source" => ctx.queue.name.to_string(),
        "mode" => ctx.policy.mode.as_str(),
        "reason" => reason
    )
    .increment(1);
}

/// A body that is not routed (it cannot be understood, or was refused): to
/// the dead-letter sink with `reason`, or left in the queue.
async fn unreadable(
    ctx: &Context,
    routing: &Routing,
    message: &Received,
    permit: &mut Option<OwnedSemaphorePermit>,
    reason: &str,
) -> Action {
    let item = Item::DeadLetter { body: &message.body, reason };
    let held = Held::new(&ctx.shared.held, message.body.len());
    match dead_letter(ctx, routing, message, permit, &held, item).await {
        Ok(()) => Action::Delete(Vec::new()),
        Err(pause) => Action::Later(pause),
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
    permit: &mut Option<OwnedSemaphorePermit>,
    held: &Held<'_>,
) -> Vec<(SinkId, Result<(), SinkError>)> {
    let started = Instant::now();
    let (held_ids, direct): (Vec<SinkId>, Vec<SinkId>) = ids.iter().partition(|id| sinks.get(**id).1.holds());
    let direct = join_all(direct.iter().map(|id| async move {
        let (name, sink) = sinks.get(*id);
        let result = sink.deliver(origin, item).await;
        record(name, started, &result);
        (*id, result)
    }));
    let held_items =
        join_all(held_ids.iter().map(|id| async move { (*id, sinks.get(*id).1.hold(origin, item).await) }));
    let (mut results, held_items) = tokio::join!(direct, held_items);
    let waiting = held_items.iter().filter(|(_, pending)| pending.is_ok()).count();
    let answers = join_all(held_items.into_iter().map(|(id, pending)| async move {
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
    results.extend(held.release_while(permit, waiting, answers).await);
    results
}

/// A message's share of the memory budget for messages waiting for a batch.
struct Held<'a> {
    budget: &'a super::HeldBudget,
    kib: usize,
}

impl Held<'_> {
    /// The share of a message whose body and decoded SES JSON take `bytes`:
    /// twice that, for what the batch keeps besides.
    fn new(budget: &super::HeldBudget, bytes: usize) -> Held<'_> {
        Held { budget, kib: bytes * 2 / 1024 + 1 }
    }

    /// Awaits `answers` from the `waiting` batching sinks that took the
    /// message into a batch. Room in the memory budget is taken first, then
    /// the in-flight slot goes back: when the budget is spent, the slot is
    /// kept and receiving slows down.
    async fn release_while<T>(
        &self,
        permit: &mut Option<OwnedSemaphorePermit>,
        waiting: usize,
        answers: impl std::future::Future<Output = T>,
    ) -> T {
        if waiting == 0 {
            return answers.await;
        }
        let _room = self.take().await;
        drop(permit.take());
        info!(sinks = waiting, "waiting for a batch to be sent");
        answers.await
    }

    /// Waits for the message's share (a message larger than the whole budget
    /// takes all of it); `None` only if the budget is gone.
    async fn take(&self) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(self.kib).unwrap_or(u32::MAX).clamp(1, self.budget.kib);
        self.budget.room.clone().acquire_many_owned(kib).await.ok()
    }
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
/// one; without one the message stays in its queue for the queue's redrive
/// policy. `Err` says the message must come back, not before the pause given.
async fn dead_letter(
    ctx: &Context,
    routing: &Routing,
    message: &Received,
    permit: &mut Option<OwnedSemaphorePermit>,
    held: &Held<'_>,
    item: Item<'_>,
) -> Result<(), Duration> {
    let Some(id) = routing.config.dead_letter else {
        warn!("no dead_letter sink: left in the queue for its redrive policy");
        return Err(Duration::ZERO);
    };
    let (name, sink) = routing.sinks.get(id);
    let origin = Origin { queue: &ctx.queue.name, sqs_message_id: &message.message_id };
    // As for routed sinks: a batching dead-letter sink (the archive) gets the
    // body into a batch, and the in-flight slot is given back while it waits.
    let pending = sink.hold(origin, item).await;
    let waiting = usize::from(sink.holds() && pending.is_ok());
    let answer = async {
        match pending {
            Ok(pending) => pending.answer().await,
            Err(e) => Err(e),
        }
    };
    let delivered = held.release_while(permit, waiting, answer).await;
    match delivered {
        Ok(()) => {
            Stats::add(&ctx.shared.stats.dead_lettered);
            info!(sink = %name, "dead-lettered");
            Ok(())
        }
        Err(e) => {
            warn!(sink = %name, error = %e, "dead-letter delivery failed: will retry");
            Err(if let SinkError::Throttled { retry_after, .. } = e { retry_after } else { Duration::ZERO })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sink_counts_on_its_own_and_a_rejection_never_hides_a_retry() {
        let retry = || SinkError::Retryable("webhook a: 503 Service Unavailable".into());
        let reject = || SinkError::Permanent("webhook b: 400 Bad Request".into());
        let throttled = |secs| SinkError::Throttled {
            reason: "429 Too Many Requests".into(),
            retry_after: Duration::from_secs(secs),
        };

        // The case that once lost a copy: A asks again, B refuses.
        let fold = Fold::of([("a", Err(retry())), ("b", Err(reject()))]);
        assert_eq!(fold.delivered, Vec::<&str>::new());
        assert_eq!(fold.rejected, [("b", "webhook b: 400 Bad Request".to_owned())]);
        assert_eq!(fold.retry, Some(("webhook a: 503 Service Unavailable (will retry)".to_owned(), Duration::ZERO)));

        let fold = Fold::of([("file", Ok(())), ("b", Err(reject())), ("c", Err(reject()))]);
        assert_eq!(fold.delivered, ["file"]);
        assert_eq!(fold.rejected.len(), 2, "each refusing sink gets its own dead letter");
        assert_eq!(fold.retry, None, "nothing to wait for: the message can go once the dead letters are kept");

        let fold = Fold::of([("a", Err(retry())), ("slack", Err(throttled(120))), ("c", Err(throttled(30)))]);
        assert_eq!(fold.retry.map(|(_, pause)| pause), Some(Duration::from_secs(120)), "the longest pause wins");

        let fold = Fold::<&str>::of([]);
        assert_eq!(fold, Fold { delivered: vec![], rejected: vec![], retry: None });
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
