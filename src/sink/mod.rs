//! Sinks: where routed notifications are delivered.
//!
//! One file per sink type; [`Sink`] is the closed set of them. A delivery
//! either succeeds or fails with a [`SinkError`] that says whether trying
//! again can help (retryable) or not (permanent); the runtime folds those
//! results into the message's outcome.

mod email;
mod file;
mod log;
pub mod report;
mod s3;
mod slack;
mod sns;
mod sqs;
mod webhook;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, SinkKind};
use crate::notification::Notification;

pub use crate::batch::Options as BatchOptions;

/// A batcher whose items are deliveries.
pub type Batcher<T, R> = crate::batch::Batcher<T, R, SinkError>;
/// A delivery's answer, once its batch went out.
pub type Pending<R> = crate::batch::Pending<R, SinkError>;

/// What is handed to a sink: a routed notification, or a body sent to the
/// dead-letter sink because it could not be understood or was rejected.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Notification {
        notification: &'a Notification<'a>,
        /// Names of the routes that matched, in config order.
        routes: &'a [&'a str],
    },
    DeadLetter {
        /// The SQS message body exactly as received.
        body: &'a str,
        /// Why it is dead-lettered, for people.
        reason: &'a str,
    },
}

/// Where the item came from, for sink payloads and logs.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The `[[sources]]` name.
    pub queue: &'a str,
    /// The SQS message id.
    pub sqs_message_id: &'a str,
}

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// A passing problem (throttling, a timeout, a 5xx, a full disk): try again later.
    #[error("{0} (will retry)")]
    Retryable(String),
    /// Trying again cannot help (the payload is refused as such).
    #[error("{0} (permanent)")]
    Permanent(String),
    /// The receiver asked not to be sent anything for a while (`Retry-After`):
    /// try again later, not before `retry_after`.
    #[error("{reason} (will retry in {} s at the earliest)", retry_after.as_secs())]
    Throttled { reason: String, retry_after: Duration },
}

/// The batcher lost track of the delivery: nothing says it was made.
impl From<crate::batch::BatchError> for SinkError {
    fn from(error: crate::batch::BatchError) -> SinkError {
        SinkError::Retryable(error.to_string())
    }
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SinkError::Permanent(_))
    }

    /// The same error, retryable whatever it was: for a sink whose failures no
    /// single notification can be blamed for (a digest, an archive batch).
    #[must_use]
    pub fn into_retryable(self) -> SinkError {
        match self {
            SinkError::Permanent(reason) => SinkError::Retryable(reason),
            other => other,
        }
    }
}

/// At most so many sends a minute: a sink waits for its turn (its messages
/// stay in SQS meanwhile, their visibility extended), nothing is dropped.
#[derive(Debug, Clone)]
pub struct RateLimit(Arc<governor::DefaultDirectRateLimiter>);

impl RateLimit {
    /// Evenly spaced sends (no burst), so no minute ever sees more than `limit`.
    pub fn per_minute(limit: NonZeroU32) -> RateLimit {
        let quota = governor::Quota::per_minute(limit).allow_burst(NonZeroU32::MIN);
        RateLimit(Arc::new(governor::RateLimiter::direct(quota)))
    }

    /// Waits until one more send is allowed.
    pub async fn wait(&self) {
        self.0.until_ready().await;
    }

    /// Waits for the turn of `limit`, if there is one.
    pub async fn wait_for(limit: Option<&RateLimit>) {
        if let Some(limit) = limit {
            limit.wait().await;
        }
    }
}

/// What every sink type does, each in its own file. The defaults fit a sink
/// that delivers each item on its own, runs no task of its own and leaves its
/// `max_per_minute` to [`Sink`], which then waits before each delivery.
trait Deliver {
    /// Delivers one item; returns once the sink has it (written and flushed,
    /// accepted by AWS, by the SMTP server, by the web server; for a digest or
    /// the archive, once the batch it joined is sent).
    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError>;

    /// Takes the item, waiting only for room in the sink, and returns the
    /// answer to come: a batching sink answers once the batch is sent.
    async fn hold(&self, origin: Origin<'_>, item: Item<'_>) -> Result<Pending<()>, SinkError> {
        Ok(Pending::ready(self.deliver(origin, item).await))
    }

    /// Whether it applies its `max_per_minute` itself (given when it is
    /// opened), per send it makes rather than per delivery.
    fn limits_itself(&self) -> bool {
        false
    }

    /// Whether the tasks it runs (a batcher) are alive.
    fn is_alive(&self) -> bool {
        true
    }

    /// Sends what it holds now, and from now on without waiting.
    fn flush_now(&self) {}
}

/// The sink types; adding one is a variant here, an arm in [`Opened::open`]
/// and in `each_kind!`, and the type's own file.
#[derive(Debug)]
enum Opened {
    File(file::FileSink),
    Log(log::LogSink),
    Sns(sns::SnsSink),
    Sqs(sqs::SqsSink),
    Email(email::EmailSink),
    Webhook(webhook::WebhookSink),
    S3(s3::S3Sink),
}

/// `$call` on the opened sink, whatever its type.
macro_rules! each_kind {
    ($kind:expr, $sink:ident => $call:expr) => {
        match $kind {
            Opened::File($sink) => $call,
            Opened::Log($sink) => $call,
            Opened::Sns($sink) => $call,
            Opened::Sqs($sink) => $call,
            Opened::Email($sink) => $call,
            Opened::Webhook($sink) => $call,
            Opened::S3($sink) => $call,
        }
    };
}

impl Opened {
    async fn open(
        config: &crate::config::Sink,
        aws: &aws_config::SdkConfig,
        limit: Option<RateLimit>,
    ) -> Result<Opened, String> {
        let name = &config.name;
        match &config.kind {
            SinkKind::File(options) => file::FileSink::open(&options.path, options.fsync).await.map(Opened::File),
            SinkKind::Log(options) => Ok(Opened::Log(log::LogSink::new(name, options.level))),
            SinkKind::Sns(options) => {
                sns::SnsSink::new(aws, options.topic_arn.clone(), options.subject.clone()).map(Opened::Sns)
            }
            SinkKind::Sqs(options) => sqs::SqsSink::new(aws, options.queue_url.clone()).map(Opened::Sqs),
            SinkKind::Email(options) => email::EmailSink::open(name, options, limit).map(Opened::Email),
            SinkKind::Webhook(options) => webhook::WebhookSink::new(name, options, limit).map(Opened::Webhook),
            SinkKind::S3(options) => s3::S3Sink::new(aws, name, options, limit).map(Opened::S3),
        }
    }
}

/// One sink of the config: opened when the daemon starts and, should that
/// fail (a missing directory, an unset secret), again on each delivery, so
/// one broken sink never stops the others; its messages wait in SQS.
#[derive(Debug)]
pub struct Sink {
    config: crate::config::Sink,
    /// The sink's name and where it delivers: what a delivery is remembered by.
    key: String,
    aws: aws_config::SdkConfig,
    kind: tokio::sync::OnceCell<Opened>,
    /// Why the last try to open it failed, while it is not open.
    unopened: std::sync::Mutex<Option<String>>,
    /// Applied here per delivery, or by a batching sink per batch it sends.
    limit: Option<RateLimit>,
}

impl Sink {
    fn new(config: &crate::config::Sink, aws: &aws_config::SdkConfig) -> Sink {
        Sink {
            key: format!("{}\n{}", config.name, config.kind.destination()),
            config: config.clone(),
            aws: aws.clone(),
            kind: tokio::sync::OnceCell::new(),
            unopened: std::sync::Mutex::new(None),
            limit: config.max_per_minute.map(RateLimit::per_minute),
        }
    }

    /// The opened sink, opening it now if it is not yet.
    async fn kind(&self) -> Result<&Opened, SinkError> {
        // Once open, no lock on the delivery path.
        if let Some(kind) = self.kind.get() {
            return Ok(kind);
        }
        let opened = self.kind.get_or_try_init(|| Opened::open(&self.config, &self.aws, self.limit.clone())).await;
        let mut unopened = self.unopened.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match opened {
            Ok(kind) => {
                *unopened = None;
                Ok(kind)
            }
            Err(reason) => {
                *unopened = Some(reason.clone());
                Err(SinkError::Retryable(format!("cannot open the sink: {reason}")))
            }
        }
    }

    /// Why the sink is not open, while it is not.
    pub fn unopened(&self) -> Option<String> {
        self.unopened.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Delivers one item: see [`Deliver::deliver`].
    pub async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        let kind = self.kind().await?;
        if !each_kind!(kind, sink => sink.limits_itself()) {
            RateLimit::wait_for(self.limit.as_ref()).await;
        }
        each_kind!(kind, sink => sink.deliver(origin, item).await)
    }

    /// Takes the item: see [`Deliver::hold`]. A sink that does not
    /// [`hold`](Sink::holds) items delivers it now.
    pub async fn hold(&self, origin: Origin<'_>, item: Item<'_>) -> Result<Pending<()>, SinkError> {
        let kind = self.kind().await?;
        if !self.holds() {
            return Ok(Pending::ready(self.deliver(origin, item).await));
        }
        each_kind!(kind, sink => sink.hold(origin, item).await)
    }

    /// Whether a delivery waits for a batch window (an email digest, the S3
    /// archive) rather than for the sink itself: the message then needs no
    /// in-flight slot while it waits. Known from the config, before it opens.
    pub fn holds(&self) -> bool {
        self.config.kind.holds()
    }

    /// Whether the tasks the sink runs are alive; a sink not opened yet has none.
    pub fn is_alive(&self) -> bool {
        self.kind.get().is_none_or(|kind| each_kind!(kind, sink => sink.is_alive()))
    }

    /// Sends what the sink holds now rather than at the end of its window,
    /// and from now on without waiting (at shutdown, or when a reload retires it).
    pub fn flush_now(&self) {
        if let Some(kind) = self.kind.get() {
            each_kind!(kind, sink => sink.flush_now());
        }
    }
}

/// Every sink of a config, indexed like `Config::sinks` (by `SinkId`).
#[derive(Debug, Clone)]
pub struct Sinks(Arc<Vec<Sink>>);

impl Sinks {
    /// Opens every sink of `config` (AWS sinks use `aws` for their clients)
    /// and returns them all, with the reasons of those that could not be
    /// opened (by sink name): those are opened again on each delivery.
    pub async fn open(config: &Config, aws: &aws_config::SdkConfig) -> (Sinks, Vec<(String, String)>) {
        let sinks: Vec<Sink> = config.sinks.iter().map(|sink| Sink::new(sink, aws)).collect();
        let mut unopened = Vec::new();
        for sink in &sinks {
            if let Err(e) = sink.kind().await {
                unopened.push((sink.config.name.clone(), sink.unopened().unwrap_or_else(|| e.to_string())));
            }
        }
        (Sinks(Arc::new(sinks)), unopened)
    }

    /// [`Sink::flush_now`] on every sink.
    pub fn flush_now(&self) {
        for sink in self.0.iter() {
            sink.flush_now();
        }
    }

    /// The sink's name and the sink.
    pub fn get(&self, id: crate::route::SinkId) -> (&str, &Sink) {
        let sink = &self.0[id.0];
        (&sink.config.name, sink)
    }

    /// What a delivery to the sink is remembered by: its name and where it
    /// delivers, so a reload that renumbers sinks or points one elsewhere
    /// never skips a sink that does not have the message.
    pub fn key(&self, id: crate::route::SinkId) -> &str {
        &self.0[id.0].key
    }

    /// The names of the sinks whose batcher died.
    pub fn dead(&self) -> Vec<String> {
        self.0.iter().filter(|sink| !sink.is_alive()).map(|sink| sink.config.name.clone()).collect()
    }

    /// The sinks not open now, by name, with why.
    pub fn unopened(&self) -> Vec<(String, String)> {
        self.0.iter().filter_map(|sink| Some((sink.config.name.clone(), sink.unopened()?))).collect()
    }
}
