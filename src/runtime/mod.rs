//! The daemon: receive loops per source, one pipeline task per message,
//! live reload, graceful shutdown.
//!
//! [`run`] takes everything from its caller (the routing, an SQS client, the
//! health state, a channel of reloads, a shutdown token), so tests drive it
//! against a local SQS and stop it when they like.

mod delivered;
mod pipeline;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{Config, Source};
use crate::metrics::{AWS_ERRORS, OLDEST_AGE_SECONDS, PANICS, RECEIVED};
use crate::server::Health;
use crate::signature::{Certificates, Policy};
use crate::sink::Sinks;
use crate::source::sqs::{Queue, receive_backoff};

pub use delivered::Delivered;

/// The routes and the sinks they name: swapped as one on reload, while
/// messages in flight finish with the ones they started with.
#[derive(Debug)]
pub struct Routing {
    pub config: Arc<Config>,
    pub sinks: Sinks,
    /// The signing certificates of `[sns]` (pinned ones read, a fetcher shared across reloads).
    pub certs: Certificates,
}

/// Counts since start, per outcome; logged at shutdown.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub rejected: AtomicU64,
    pub ignored: AtomicU64,
    pub errors: AtomicU64,
    /// Refused by signature verification or an allow-list.
    pub refused: AtomicU64,
    pub unrouted: AtomicU64,
    pub dead_lettered: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What every pipeline task shares, whatever its source.
#[derive(Debug)]
struct Shared {
    routing: ArcSwap<Routing>,
    delivered: Delivered,
    stats: Arc<Stats>,
    health: Arc<Health>,
    /// Fired when the shutdown grace period is over: unfinished messages stay in SQS.
    abort: CancellationToken,
    /// Room, in KiB, for messages waiting for a batch (digest, archive) without
    /// an in-flight slot: what bounds their memory (`runtime.max_held_mib`).
    held: HeldBudget,
}

/// The memory budget of messages waiting for a batch, in KiB.
#[derive(Debug)]
struct HeldBudget {
    room: Arc<tokio::sync::Semaphore>,
    kib: u32,
}

impl HeldBudget {
    fn new(bytes: usize) -> HeldBudget {
        let kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        HeldBudget { room: Arc::new(tokio::sync::Semaphore::new(kib as usize)), kib }
    }
}

/// One polled source: its receive loops and what stops them.
struct Running {
    source: Source,
    stop: CancellationToken,
    receivers: Vec<JoinHandle<()>>,
}

/// Runs until `shutdown` fires, then stops receiving, lets in-flight messages
/// finish within the config's grace period, flushes deletes and returns.
/// Each [`Routing`] received on `reloads` replaces the current one; sources
/// are started and stopped to match its config.
pub async fn run(
    routing: Routing,
    sqs: aws_sdk_sqs::Client,
    health: Arc<Health>,
    mut reloads: mpsc::Receiver<Routing>,
    shutdown: CancellationToken,
) -> Arc<Stats> {
    let config = routing.config.clone();
    let shared = Arc::new(Shared {
        routing: ArcSwap::from_pointee(routing),
        delivered: Delivered::default(),
        stats: Arc::new(Stats::default()),
        health,
        abort: CancellationToken::new(),
        held: HeldBudget::new(config.max_held_bytes),
    });
    let tracker = TaskTracker::new();
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut stopped = Vec::new();
    let mut start = |config: &Config, running: &mut HashMap<String, Running>| {
        let (stop_now, started) = plan(running, &config.sources);
        for old in stop_now {
            info!(queue = %old.source.name, "source removed or changed: stopping its receivers");
            old.stop.cancel();
            stopped.extend(old.receivers);
        }
        for source in started {
            let queue = match Queue::new(sqs.clone(), &source) {
                Ok(queue) => queue,
                Err(e) => {
                    error!(queue = %source.name, error = %e, "cannot start the source");
                    continue;
                }
            };
            let stop = shutdown.child_token();
            let policy = Arc::new(Policy::of(&source));
            let receivers = (0..source.receivers)
                .map(|i| {
                    let receiver = Receiver {
                        queue: queue.clone(),
                        policy: policy.clone(),
                        task: format!("receive {}#{i}", source.name),
                    };
                    tokio::spawn(supervise(receiver, shared.clone(), tracker.clone(), stop.clone()))
                })
                .collect();
            info!(queue = %source.name, receivers = source.receivers, "polling");
            running.insert(source.name.clone(), Running { source, stop, receivers });
        }
        shared.health.expect(config.sources.iter().map(|s| (s.name.clone(), readiness_window(s))));
        shared.health.sinks(shared.routing.load().sinks.clone());
    };
    start(&config, &mut running);

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(routing) = reloads.recv() => {
                let config = routing.config.clone();
                // Digests and archive batches of the old sinks go out now; messages
                // in flight with the old routing still finish with it.
                shared.routing.swap(Arc::new(routing)).sinks.flush_now();
                start(&config, &mut running);
                info!(routes = config.router.routes().len(), sinks = config.sinks.len(), sources = config.sources.len(), "config reloaded");
            }
        }
    }

    // The grace period of the config in force now, reloads included.
    let grace = shared.routing.load().config.shutdown_grace;
    info!(in_flight = tracker.len(), grace_secs = grace.as_secs(), "shutting down: no more receives");
    for receiver in running.into_values().flat_map(|r| r.receivers).chain(stopped) {
        let _ = receiver.await;
    }
    // Nothing more will join a digest or an archive batch: send them within the grace period.
    shared.routing.load().sinks.flush_now();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(unfinished = tracker.len(), "shutdown grace period over: unfinished messages stay in their queues");
        shared.abort.cancel();
        tracker.wait().await;
    }
    let stats = &shared.stats;
    info!(
        received = Stats::get(&stats.received),
        delivered = Stats::get(&stats.delivered),
        retried = Stats::get(&stats.retried),
        rejected = Stats::get(&stats.rejected),
        ignored = Stats::get(&stats.ignored),
        errors = Stats::get(&stats.errors),
        refused = Stats::get(&stats.refused),
        unrouted = Stats::get(&stats.unrouted),
        dead_lettered = Stats::get(&stats.dead_lettered),
        "stopped"
    );
    shared.stats.clone()
}

/// Which running sources to stop (removed or changed) and which to start.
fn plan(running: &mut HashMap<String, Running>, wanted: &[Source]) -> (Vec<Running>, Vec<Source>) {
    let keep = |r: &Running| wanted.contains(&r.source);
    let names: Vec<String> = running.iter().filter(|(_, r)| !keep(r)).map(|(name, _)| name.clone()).collect();
    let stop = names.iter().filter_map(|name| running.remove(name)).collect();
    let start = wanted.iter().filter(|s| !running.contains_key(&s.name)).cloned().collect();
    (stop, start)
}

/// How long a successful poll keeps a source ready: two long polls and some slack.
fn readiness_window(source: &Source) -> Duration {
    Duration::from_secs(u64::from(source.wait_time_secs) * 2 + 30)
}

/// One receive loop of a queue, and its name for `/healthz`.
struct Receiver {
    queue: Queue,
    policy: Arc<Policy>,
    task: String,
}

/// Runs a receive loop until `stop`; should it panic, logs it, counts it and
/// starts it again (what it had received is in pipeline tasks of their own,
/// or comes back from SQS).
async fn supervise(receiver: Receiver, shared: Arc<Shared>, tracker: TaskTracker, stop: CancellationToken) {
    loop {
        let run = receive_loop(
            receiver.queue.clone(),
            receiver.policy.clone(),
            receiver.task.clone(),
            shared.clone(),
            tracker.clone(),
            stop.clone(),
        );
        match tokio::spawn(run).await {
            Err(e) if e.is_panic() => {
                metrics::counter!(PANICS, "task" => "receive").increment(1);
                error!(queue = %receiver.queue.name, task = %receiver.task, "a receive loop panicked: starting it again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => break,
        }
    }
    shared.health.retire(&receiver.task);
}

/// Runs one message's pipeline; a panic in it is logged and counted, and the
/// message comes back from SQS once its visibility timeout ends (its
/// heartbeat and in-flight slot end with the task).
async fn caught(pipeline: impl Future<Output = ()>) {
    use futures_util::FutureExt;
    if std::panic::AssertUnwindSafe(pipeline).catch_unwind().await.is_err() {
        metrics::counter!(PANICS, "task" => "message").increment(1);
        error!("a message's processing panicked: it comes back from SQS");
    }
}

/// How long one receive may take before `/healthz` calls its loop stuck:
/// the long poll, the SDK's operation timeout and some slack.
fn receive_deadline(queue: &Queue) -> Duration {
    queue.wait_time() + Duration::from_secs(120)
}

/// One long-poll loop: receive, hand each message to its own task, repeat.
/// SQS being unreachable never ends it: it backs off and tries again.
async fn receive_loop(
    queue: Queue,
    policy: Arc<Policy>,
    task: String,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let health = shared.health.clone();
    health.beat(&task, Some(receive_deadline(&queue)));
    let visibility_timeout = queue.visibility_timeout().await;
    let ctx = Arc::new(pipeline::Context { queue, policy, visibility_timeout, shared });
    let name = ctx.queue.name.clone();
    let deletes = format!("deletes {name}");
    let mut backoff = receive_backoff();
    while !stop.is_cancelled() {
        if ctx.queue.deletes_alive() {
            health.beat(&deletes, None);
        } else {
            health.died(&deletes);
        }
        // Waiting for free in-flight slots waits on the pipeline, not on this loop.
        health.beat(&task, None);
        let Some(permits) = ctx.queue.reserve(&stop).await else { break };
        health.beat(&task, Some(receive_deadline(&ctx.queue)));
        match ctx.queue.receive(permits, &stop).await {
            Ok(messages) => {
                backoff = receive_backoff();
                ctx.shared.health.polled(&name);
                if let Some(oldest) = messages.iter().filter_map(|m| m.age).max() {
                    metrics::gauge!(OLDEST_AGE_SECONDS, "source" => name.to_string()).set(oldest.as_secs_f64());
                }
                for message in messages {
                    Stats::add(&ctx.shared.stats.received);
                    metrics::counter!(RECEIVED, "source" => name.to_string()).increment(1);
                    tracker.spawn(caught(pipeline::process(ctx.clone(), message)));
                }
            }
            Err(error) => {
                metrics::counter!(AWS_ERRORS, "service" => "sqs", "operation" => "ReceiveMessage").increment(1);
                let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                warn!(queue = %name, error = %error, retry_in_ms = delay.as_millis(), "receive failed");
                health.beat(&task, Some(delay + receive_deadline(&ctx.queue)));
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => {}
                }
            }
        }
    }
}
