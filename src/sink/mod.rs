//! Sinks: where routed notifications are delivered.
//!
//! One file per sink type; [`Sink`] is the closed set of them. A delivery
//! either succeeds or fails with a [`SinkError`] that says whether trying
//! again can help (retryable) or not (permanent); the runtime folds those
//! results into the message's outcome.

mod batch;
mod file;
mod log;
mod sns;
mod sqs;

use std::sync::Arc;

use crate::config::{Config, SinkKind};
use crate::notification::Notification;

pub use batch::{Batcher, Options as BatchOptions};

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
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Retryable(_))
    }
}

/// One opened sink.
#[derive(Debug)]
pub enum Sink {
    File(file::FileSink),
    Log(log::LogSink),
    Sns(sns::SnsSink),
    Sqs(sqs::SqsSink),
}

impl Sink {
    /// Delivers one item; returns once the sink has it (written and flushed,
    /// or accepted by AWS).
    pub async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        match self {
            Sink::File(sink) => sink.deliver(origin, item).await,
            Sink::Log(sink) => {
                sink.deliver(origin, item);
                Ok(())
            }
            Sink::Sns(sink) => sink.deliver(origin, item).await,
            Sink::Sqs(sink) => sink.deliver(origin, item).await,
        }
    }
}

/// Every sink of a config, opened, indexed like `Config::sinks` (by `SinkId`).
#[derive(Debug, Clone)]
pub struct Sinks(Arc<Vec<(String, Sink)>>);

/// A sink that could not be opened (its file cannot be created, ...).
#[derive(Debug, thiserror::Error)]
#[error("sinks.{name}: {reason}")]
pub struct OpenError {
    pub name: String,
    pub reason: String,
}

impl Sinks {
    /// Opens every sink of `config`. AWS sinks use `aws` for their clients.
    pub async fn open(config: &Config, aws: &aws_config::SdkConfig) -> Result<Sinks, OpenError> {
        let mut sinks = Vec::with_capacity(config.sinks.len());
        for sink in &config.sinks {
            let opened = match &sink.kind {
                SinkKind::File { path, fsync } => file::FileSink::open(path, *fsync).await.map(Sink::File),
                SinkKind::Log { level } => Ok(Sink::Log(log::LogSink::new(&sink.name, *level))),
                SinkKind::Sns { topic_arn, subject } => {
                    sns::SnsSink::new(aws, topic_arn.clone(), subject.clone()).map(Sink::Sns)
                }
                SinkKind::Sqs { queue_url } => sqs::SqsSink::new(aws, queue_url.clone()).map(Sink::Sqs),
            };
            let opened = opened.map_err(|reason| OpenError { name: sink.name.clone(), reason })?;
            sinks.push((sink.name.clone(), opened));
        }
        Ok(Sinks(Arc::new(sinks)))
    }

    pub fn get(&self, id: crate::route::SinkId) -> (&str, &Sink) {
        let (name, sink) = &self.0[id.0];
        (name, sink)
    }
}
