//! `type = "sqs"`: the SES JSON forwarded to an SQS queue.

use serde::Deserialize;

use crate::config::checks::{Issues, check_url};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqsSink {
    /// The queue to forward to.
    pub queue_url: String,
    /// Deliveries per minute at most; the rest wait in SQS (visibility extended).
    pub max_per_minute: Option<u32>,
}

/// An `sqs` sink's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sqs {
    pub queue_url: String,
}

impl RawSqsSink {
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> Sqs {
        check_url(issues, &format!("{key}.queue_url"), &self.queue_url);
        Sqs { queue_url: self.queue_url }
    }
}

impl Sqs {
    pub(super) fn target(&self) -> String {
        self.queue_url.clone()
    }

    pub(super) fn destination(&self) -> String {
        self.queue_url.clone()
    }
}
