//! The `sqs` sink: forwards the SES JSON to a queue, with `kind`, `source`
//! and `route` message attributes. Concurrent deliveries share one
//! `SendMessageBatch` call.

use std::sync::Arc;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry, SendMessageBatchResultEntry};

use super::{Batcher, Deliver, Item, Origin, SinkError};
use crate::aws::{FailedEntry, MAX_BATCH_BYTES, Message, aws_error, build_error, entry_results, is_fifo, one_by_one};
use crate::batch::{Options, split_by_size};

const OPERATION: &str = "SQS SendMessageBatch";
const SINGLE_OPERATION: &str = "SQS SendMessage";

#[derive(Debug)]
pub struct SqsSink {
    batcher: Batcher<Message, ()>,
}

impl SqsSink {
    /// Fails only outside a tokio runtime; the queue is first reached on delivery.
    pub fn new(aws: &aws_config::SdkConfig, queue_url: String) -> Result<SqsSink, String> {
        let client = Client::new(aws);
        let fifo = is_fifo(&queue_url);
        let queue: Arc<str> = queue_url.into();
        let batcher = Batcher::spawn(Options::AWS, move |batch| send(client.clone(), Arc::clone(&queue), fifo, batch))
            .map_err(|e| e.to_string())?;
        Ok(SqsSink { batcher })
    }
}

impl Deliver for SqsSink {
    /// Whether its batcher still runs.
    fn is_alive(&self) -> bool {
        self.batcher.is_alive()
    }

    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        let message = Message::new(origin, item);
        message.check_not_empty()?;
        self.batcher.submit(message).await
    }
}

async fn send(client: Client, queue: Arc<str>, fifo: bool, batch: Vec<Message>) -> Vec<Result<(), SinkError>> {
    let mut results = Vec::with_capacity(batch.len());
    for run in split_by_size(batch, MAX_BATCH_BYTES, Message::size) {
        results.extend(send_run(&client, &queue, fifo, run).await);
    }
    results
}

async fn send_run(client: &Client, queue: &str, fifo: bool, run: Vec<Message>) -> Vec<Result<(), SinkError>> {
    let count = run.len();
    let entries: Result<Vec<_>, _> =
        run.iter().cloned().enumerate().map(|(i, message)| entry(i, message, fifo)).collect();
    let entries = match entries {
        Ok(entries) => entries,
        Err(error) => return vec![Err(error); count],
    };
    match client.send_message_batch().queue_url(queue).set_entries(Some(entries)).send().await {
        Ok(output) => entry_results(
            OPERATION,
            count,
            output.successful().iter().map(SendMessageBatchResultEntry::id),
            output.failed().iter().map(|entry| FailedEntry {
                id: entry.id(),
                code: entry.code(),
                message: entry.message(),
                sender_fault: entry.sender_fault(),
            }),
        ),
        Err(error) => one_by_one(aws_error(OPERATION, &error), count, |i| send_one(client, queue, fifo, &run[i])).await,
    }
}

/// Sends one message alone (`SendMessage`), after its batch was refused as a whole.
async fn send_one(client: &Client, queue: &str, fifo: bool, message: &Message) -> Result<(), SinkError> {
    let entry = entry(0, message.clone(), fifo)?;
    client
        .send_message()
        .queue_url(queue)
        .message_body(entry.message_body())
        .set_message_attributes(entry.message_attributes().cloned())
        .set_message_group_id(entry.message_group_id().map(str::to_owned))
        .set_message_deduplication_id(entry.message_deduplication_id().map(str::to_owned))
        .send()
        .await
        .map(|_| ())
        .map_err(|error| aws_error(SINGLE_OPERATION, &error))
}

fn entry(index: usize, message: Message, fifo: bool) -> Result<SendMessageBatchRequestEntry, SinkError> {
    let mut entry = SendMessageBatchRequestEntry::builder().id(index.to_string()).message_body(message.body);
    for (name, value) in message.attributes {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| build_error(&e))?;
        entry = entry.message_attributes(name, value);
    }
    if fifo {
        entry = entry.message_group_id(message.group_id).message_deduplication_id(message.deduplication_id);
    }
    entry.build().map_err(|e| build_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        BOUNCE_JSON, attributes, aws_config, aws_endpoint, bounce, create_queue, receive, unique_name,
    };

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn entries_carry_body_string_attributes_and_fifo_ids_only_for_fifo_queues() {
        let notification = bounce(BOUNCE_JSON);
        let item = Item::Notification { notification: &notification, routes: &["dev"] };

        let entry = entry(7, Message::new(ORIGIN, item), false).unwrap();
        assert_eq!(entry.id(), "7");
        assert_eq!(entry.message_body(), BOUNCE_JSON);
        let mut attributes: Vec<(String, String)> = entry
            .message_attributes()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), format!("{}:{}", v.data_type(), v.string_value().unwrap())))
            .collect();
        attributes.sort();
        assert_eq!(
            attributes,
            pairs(&[
                ("bounce_class", "String:hard"),
                ("kind", "String:bounce"),
                ("route", "String:dev"),
                ("source", "String:dev@dev.example.com")
            ])
        );
        assert_eq!(entry.message_group_id(), None);

        let fifo = super::entry(0, Message::new(ORIGIN, item), true).unwrap();
        assert_eq!(fifo.message_group_id(), Some("0100018f-bounce"));
        assert_eq!(fifo.message_deduplication_id(), Some("sqs-1"));
    }

    #[tokio::test]
    async fn forwards_notifications_and_dead_letters_with_their_attributes() {
        let Some(endpoint) = aws_endpoint("sqs forwards") else { return };
        let aws = aws_config(&endpoint).await;
        let sqs = Client::new(&aws);
        let queue_url = create_queue(&sqs, &unique_name("sink-sqs-forwards")).await;
        let sink = SqsSink::new(&aws, queue_url.clone()).unwrap();

        let notification = bounce(BOUNCE_JSON);
        let dead_body = "{\"Type\":\"Notification\",\"Message\":\"\u{e9}t\u{e9}\"}";
        let (a, b) = tokio::join!(
            sink.deliver(ORIGIN, Item::Notification { notification: &notification, routes: &["dev", "all"] }),
            sink.deliver(
                Origin { queue: "bounces", sqs_message_id: "sqs-2" },
                Item::DeadLetter { body: dead_body, reason: "SNS Message is not SES JSON" }
            ),
        );
        assert_eq!((a, b), (Ok(()), Ok(())));

        let mut received: Vec<(String, Vec<(String, String)>)> = receive(&sqs, &queue_url, 2)
            .await
            .iter()
            .map(|m| (m.body().unwrap_or_default().to_owned(), attributes(m)))
            .collect();
        received.sort();
        let mut expected = vec![
            (
                BOUNCE_JSON.to_owned(),
                pairs(&[
                    ("bounce_class", "hard"),
                    ("kind", "bounce"),
                    ("route", "dev,all"),
                    ("source", "dev@dev.example.com"),
                ]),
            ),
            (dead_body.to_owned(), pairs(&[("error", "SNS Message is not SES JSON")])),
        ];
        expected.sort();
        assert_eq!(received, expected);
    }

    #[tokio::test]
    async fn a_fifo_queue_gets_group_ids_and_a_retried_delivery_only_once() {
        let Some(endpoint) = aws_endpoint("sqs fifo") else { return };
        let aws = aws_config(&endpoint).await;
        let sqs = Client::new(&aws);
        let queue_url = create_queue(&sqs, &format!("{}.fifo", unique_name("sink-sqs-fifo"))).await;
        let sink = SqsSink::new(&aws, queue_url.clone()).unwrap();

        let notification = bounce(BOUNCE_JSON);
        let item = Item::Notification { notification: &notification, routes: &["dev"] };
        // The same SQS message delivered again (as after a retry) is deduplicated.
        assert_eq!(sink.deliver(ORIGIN, item).await, Ok(()));
        assert_eq!(sink.deliver(ORIGIN, item).await, Ok(()));

        let received = receive(&sqs, &queue_url, 2).await;
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0].body(), Some(BOUNCE_JSON));
    }

    #[tokio::test]
    async fn a_missing_queue_is_retried_not_rejected() {
        let Some(endpoint) = aws_endpoint("sqs missing queue") else { return };
        let aws = aws_config(&endpoint).await;
        let port = endpoint.rsplit(':').next().unwrap_or_default();
        let missing = format!("http://sqs.us-east-1.localhost:{port}/000000000000/{}", unique_name("sink-sqs-missing"));
        let sink = SqsSink::new(&aws, missing).unwrap();
        let error = sink.deliver(ORIGIN, Item::DeadLetter { body: "x", reason: "test" }).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
    }
}
