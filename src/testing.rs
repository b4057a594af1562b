//! Fixtures and emulator helpers shared by the unit tests.

use std::borrow::Cow;

use crate::notification::bounce::{BounceClass, Verdict};
use crate::notification::{Detail, Envelope, Kind, Notification};

pub const BOUNCE_JSON: &str = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"jane@example.org"}]},"mail":{"messageId":"0100018f-bounce","source":"dev@dev.example.com","destination":["jane@example.org"]}}"#;

/// A bounce from `dev@dev.example.com` to `jane@example.org` carrying `ses_json`.
pub fn bounce(ses_json: &str) -> Notification<'_> {
    Notification {
        kind: Kind::Bounce,
        source: Cow::Borrowed("dev@dev.example.com"),
        message_id: Cow::Borrowed("0100018f-bounce"),
        timestamp: None,
        source_arn: None,
        sending_account_id: None,
        tags: Vec::new(),
        recipients: vec![Cow::Borrowed("jane@example.org")],
        detail: Detail {
            bounce_type: Some(Cow::Borrowed("Permanent")),
            bounce_subtype: Some(Cow::Borrowed("General")),
            bounce_verdict: Some(Verdict { class: BounceClass::Hard, code: None }),
            ..Detail::default()
        },
        ses_json: Cow::Borrowed(ses_json),
        envelope: Envelope::Raw,
    }
}

/// The endpoint of the local fauxqs server `scripts/test` started, if any.
pub fn aws_endpoint(test: &str) -> Option<String> {
    let endpoint = std::env::var("FAUXQS_ENDPOINT").ok().filter(|e| !e.is_empty());
    if endpoint.is_none() {
        eprintln!("{test}: skipped, FAUXQS_ENDPOINT is not set (scripts/test sets it)");
    }
    endpoint
}

/// An SDK config for the emulator, built the way the daemon builds its own.
pub async fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// A name unique to this test and process, valid for queues and topics.
pub fn unique_name(test: &str) -> String {
    format!("{test}-{}", std::process::id()).replace('_', "-")
}

/// Creates a queue and returns its URL.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    let mut create = sqs.create_queue().queue_name(name);
    if crate::aws::is_fifo(name) {
        create = create.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
    }
    create.send().await.unwrap().queue_url.unwrap()
}

/// Receives until `count` messages arrived (or a few empty polls in a row).
pub async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, count: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut received = Vec::new();
    let mut empty_polls = 0;
    while received.len() < count && empty_polls < 3 {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = output.messages.unwrap_or_default();
        empty_polls = if messages.is_empty() { empty_polls + 1 } else { 0 };
        received.extend(messages);
    }
    received
}

/// A received message's string attributes, sorted by name.
pub fn attributes(message: &aws_sdk_sqs::types::Message) -> Vec<(String, String)> {
    let mut attributes: Vec<(String, String)> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), value.string_value().unwrap_or_default().to_owned()))
        .collect();
    attributes.sort();
    attributes
}
