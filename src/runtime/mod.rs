//! The daemon: receive loops per source, one pipeline task per message,
//! graceful shutdown.
//!
//! [`run`] takes everything from its caller (config, opened sinks, an SQS
//! client, a shutdown token), so tests drive it against a local SQS and stop
//! it when they like.

mod memory;
mod pipeline;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::sink::Sinks;
use crate::source::sqs::{Queue, receive_backoff};

pub use memory::Delivered;

/// Counts since start, per outcome; logged at shutdown.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub rejected: AtomicU64,
    pub ignored: AtomicU64,
    pub errors: AtomicU64,
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

/// Runs until `shutdown` fires, then stops receiving, lets in-flight messages
/// finish within the config's grace period, flushes deletes and returns.
pub async fn run(
    config: Arc<Config>,
    sinks: Sinks,
    sqs: aws_sdk_sqs::Client,
    shutdown: CancellationToken,
) -> Arc<Stats> {
    let stats = Arc::new(Stats::default());
    let memory = Arc::new(Delivered::default());
    let tracker = TaskTracker::new();
    // Fired when the grace period is over: unfinished messages stay in SQS.
    let abort = CancellationToken::new();
    let mut receivers = JoinSet::new();
    let mut batchers = Vec::new();

    for source in &config.sources {
        let (queue, batcher) = Queue::new(sqs.clone(), source);
        batchers.push(batcher);
        let visibility_timeout = queue.visibility_timeout().await;
        let ctx = Arc::new(pipeline::Context {
            config: config.clone(),
            sinks: sinks.clone(),
            memory: memory.clone(),
            stats: stats.clone(),
            queue,
            visibility_timeout,
            abort: abort.clone(),
        });
        info!(queue = %source.name, receivers = source.receivers, visibility_timeout_secs = visibility_timeout.as_secs(), "polling");
        for _ in 0..source.receivers {
            receivers.spawn(receive_loop(ctx.clone(), tracker.clone(), shutdown.clone()));
        }
    }

    shutdown.cancelled().await;
    info!(in_flight = tracker.len(), grace_secs = config.shutdown_grace.as_secs(), "shutting down: no more receives");
    while receivers.join_next().await.is_some() {}
    tracker.close();
    if tokio::time::timeout(config.shutdown_grace, tracker.wait()).await.is_err() {
        warn!(unfinished = tracker.len(), "shutdown grace period over: unfinished messages stay in their queues");
        abort.cancel();
        tracker.wait().await;
    }
    for batcher in batchers {
        let _ = batcher.await;
    }
    info!(
        received = Stats::get(&stats.received),
        delivered = Stats::get(&stats.delivered),
        retried = Stats::get(&stats.retried),
        rejected = Stats::get(&stats.rejected),
        ignored = Stats::get(&stats.ignored),
        errors = Stats::get(&stats.errors),
        unrouted = Stats::get(&stats.unrouted),
        dead_lettered = Stats::get(&stats.dead_lettered),
        "stopped"
    );
    stats
}

/// One long-poll loop: receive, hand each message to its own task, repeat.
/// SQS being unreachable never ends it: it backs off and tries again.
async fn receive_loop(ctx: Arc<pipeline::Context>, tracker: TaskTracker, shutdown: CancellationToken) {
    let mut backoff = receive_backoff();
    while !shutdown.is_cancelled() {
        match ctx.queue.receive(&shutdown).await {
            Ok(messages) => {
                backoff = receive_backoff();
                for message in messages {
                    Stats::add(&ctx.stats.received);
                    tracker.spawn(pipeline::process(ctx.clone(), message));
                }
            }
            Err(error) => {
                let delay = backoff.next().unwrap_or(std::time::Duration::from_secs(30));
                warn!(queue = %ctx.queue.name, error = %error, retry_in_ms = delay.as_millis(), "receive failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }
}
