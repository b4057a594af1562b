//! The sink types' config, one file each: the table as written, its
//! validated options, its checks and defaults, and how `check` shows it.
//!
//! Adding a type is its file here, its variant in [`RawSink`] and in
//! [`SinkKind`], and its arm in each `match` below.

mod email;
mod file;
mod log;
mod s3;
mod sns;
mod sqs;
mod webhook;

use serde::Deserialize;

pub use email::{Email, EmailMode, RawEmailSink, Tls};
pub use file::{File, RawFileSink};
pub use log::{Log, RawLogSink};
pub use s3::{RawS3Sink, S3};
pub use sns::{RawSnsSink, Sns};
pub use sqs::{RawSqsSink, Sqs};
pub use webhook::{RawWebhookSink, Webhook, WebhookFormat};

use super::checks::Issues;

/// One sink as written; `type` selects the variant.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RawSink {
    File(RawFileSink),
    Log(RawLogSink),
    Sns(RawSnsSink),
    Sqs(RawSqsSink),
    Email(Box<RawEmailSink>),
    Webhook(RawWebhookSink),
    S3(RawS3Sink),
}

/// What a sink is and its options; opening it is the daemon's business.
#[derive(Debug, Clone)]
pub enum SinkKind {
    File(File),
    Log(Log),
    Sns(Sns),
    Sqs(Sqs),
    Email(Box<Email>),
    Webhook(Webhook),
    S3(S3),
}

impl RawSink {
    /// The `max_per_minute` every sink type takes.
    pub fn max_per_minute(&self) -> Option<u32> {
        match self {
            RawSink::File(s) => s.max_per_minute,
            RawSink::Log(s) => s.max_per_minute,
            RawSink::Sns(s) => s.max_per_minute,
            RawSink::Sqs(s) => s.max_per_minute,
            RawSink::Email(s) => s.max_per_minute,
            RawSink::Webhook(s) => s.max_per_minute,
            RawSink::S3(s) => s.max_per_minute,
        }
    }

    /// The type's own checks and defaults; `key` is `sinks.<name>`.
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> SinkKind {
        match self {
            RawSink::File(raw) => SinkKind::File(raw.validate(issues, key)),
            RawSink::Log(raw) => SinkKind::Log(raw.validate(issues, key)),
            RawSink::Sns(raw) => SinkKind::Sns(raw.validate(issues, key)),
            RawSink::Sqs(raw) => SinkKind::Sqs(raw.validate(issues, key)),
            RawSink::Email(raw) => SinkKind::Email(Box::new(raw.validate(issues, key))),
            RawSink::Webhook(raw) => SinkKind::Webhook(raw.validate(issues, key)),
            RawSink::S3(raw) => SinkKind::S3(raw.validate(issues, key)),
        }
    }
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File(_) => "file",
            SinkKind::Log(_) => "log",
            SinkKind::Sns(_) => "sns",
            SinkKind::Sqs(_) => "sqs",
            SinkKind::Email(_) => "email",
            SinkKind::Webhook(_) => "webhook",
            SinkKind::S3(_) => "s3",
        }
    }

    /// Where the sink delivers, for `check`'s summary (no secrets).
    pub fn target(&self) -> String {
        match self {
            SinkKind::File(s) => s.target(),
            SinkKind::Log(s) => s.target(),
            SinkKind::Sns(s) => s.target(),
            SinkKind::Sqs(s) => s.target(),
            SinkKind::Email(s) => s.target(),
            SinkKind::Webhook(s) => s.target(),
            SinkKind::S3(s) => s.target(),
        }
    }

    /// Where the sink delivers, in full (secrets in a URL included, so never
    /// for output): a delivery is remembered by sink name and this, so a
    /// reload that points a sink elsewhere sends to the new place again.
    pub fn destination(&self) -> String {
        match self {
            SinkKind::File(s) => s.destination(),
            SinkKind::Log(s) => s.destination(),
            SinkKind::Sns(s) => s.destination(),
            SinkKind::Sqs(s) => s.destination(),
            SinkKind::Email(s) => s.destination(),
            SinkKind::Webhook(s) => s.destination(),
            SinkKind::S3(s) => s.destination(),
        }
    }

    /// Whether a delivery waits for a batch window (an email digest, the S3
    /// archive) rather than for the sink itself.
    pub fn holds(&self) -> bool {
        match self {
            SinkKind::Email(options) => matches!(options.mode, EmailMode::Digest { .. }),
            SinkKind::S3(_) => true,
            _ => false,
        }
    }
}
