//! The `webhook` sink: POSTs each notification as JSON or as a Slack message.

use super::{Item, Origin, SinkError};
use crate::config::Webhook;

#[derive(Debug)]
pub struct WebhookSink {
    name: String,
}

impl WebhookSink {
    pub fn new(name: &str, _options: &Webhook) -> Result<WebhookSink, String> {
        Ok(WebhookSink { name: name.to_owned() })
    }

    pub async fn deliver(&self, _origin: Origin<'_>, _item: Item<'_>) -> Result<(), SinkError> {
        Err(SinkError::Retryable(format!("webhook sink {} is not built yet", self.name)))
    }
}
