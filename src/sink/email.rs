//! The `email` sink: one email per notification, or one digest per window.

use super::{Item, Origin, RateLimit, SinkError};
use crate::config::{Email, EmailMode};

#[derive(Debug)]
pub struct EmailSink {
    name: String,
    digest: bool,
}

impl EmailSink {
    pub fn open(name: &str, options: &Email, _limit: Option<RateLimit>) -> Result<EmailSink, String> {
        Ok(EmailSink { name: name.to_owned(), digest: matches!(options.mode, EmailMode::Digest { .. }) })
    }

    pub fn is_digest(&self) -> bool {
        self.digest
    }

    pub async fn deliver(&self, _origin: Origin<'_>, _item: Item<'_>) -> Result<(), SinkError> {
        Err(SinkError::Retryable(format!("email sink {} is not built yet", self.name)))
    }

    pub fn flush_now(&self) {}
}
