//! The `sns` sink: publishes the SES JSON to a topic, with `kind`, `source`
//! and `route` (and on bounces `bounce_class`) message attributes for subscription filter policies.
//! Concurrent deliveries share one `PublishBatch` call.

use std::sync::Arc;

use aws_sdk_sns::Client;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use super::{Batcher, Deliver, Item, Origin, SinkError};
use crate::aws::{FailedEntry, MAX_BATCH_BYTES, Message, aws_error, build_error, entry_results, is_fifo, one_by_one};
use crate::batch::{Options, split_by_size};

const OPERATION: &str = "SNS PublishBatch";
const SINGLE_OPERATION: &str = "SNS Publish";

/// SNS refuses longer subjects.
const MAX_SUBJECT_CHARS: usize = 100;

#[derive(Debug)]
pub struct SnsSink {
    subject: Option<String>,
    batcher: Batcher<Outgoing, ()>,
}

/// One message on its way to the topic.
#[derive(Debug, Clone)]
struct Outgoing {
    message: Message,
    subject: Option<String>,
}

impl Outgoing {
    fn size(&self) -> usize {
        self.message.size() + self.subject.as_ref().map_or(0, String::len)
    }
}

impl SnsSink {
    /// Fails only outside a tokio runtime; the topic is first reached on delivery.
    pub fn new(aws: &aws_config::SdkConfig, topic_arn: String, subject: Option<String>) -> Result<SnsSink, String> {
        let client = Client::new(aws);
        let fifo = is_fifo(&topic_arn);
        let topic: Arc<str> = topic_arn.into();
        let batcher =
            Batcher::spawn(Options::AWS, move |batch| publish(client.clone(), Arc::clone(&topic), fifo, batch))
                .map_err(|e| e.to_string())?;
        Ok(SnsSink { subject, batcher })
    }
}

impl Deliver for SnsSink {
    /// Whether its batcher still runs.
    fn is_alive(&self) -> bool {
        self.batcher.is_alive()
    }

    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        let message = Message::new(origin, item);
        message.check_not_empty()?;
        let subject = subject(self.subject.as_deref(), origin, item);
        self.batcher.submit(Outgoing { message, subject }).await
    }
}

/// The configured subject, else one that says what happened and to whom.
fn subject(configured: Option<&str>, origin: Origin<'_>, item: Item<'_>) -> Option<String> {
    let text = match (configured, item) {
        (Some(subject), _) => subject.to_owned(),
        (None, Item::Notification { notification, .. }) if notification.source.is_empty() => {
            format!("SES {}", notification.kind)
        }
        (None, Item::Notification { notification, .. }) => {
            format!("SES {} from {}", notification.kind, notification.source)
        }
        (None, Item::DeadLetter { .. }) => format!("sesroute dead letter from {}", origin.queue),
    };
    sanitize_subject(&text)
}

/// Makes `text` a subject SNS accepts: printable ASCII without line breaks,
/// not starting with whitespace, 1 to 100 characters; `None` when nothing is left.
fn sanitize_subject(text: &str) -> Option<String> {
    let printable: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            '\t' | '\n' | '\r' => ' ',
            _ => '?',
        })
        .collect();
    let subject: String = printable.trim_start().chars().take(MAX_SUBJECT_CHARS).collect();
    let subject = subject.trim_end();
    (!subject.is_empty()).then(|| subject.to_owned())
}

async fn publish(client: Client, topic: Arc<str>, fifo: bool, batch: Vec<Outgoing>) -> Vec<Result<(), SinkError>> {
    let mut results = Vec::with_capacity(batch.len());
    for run in split_by_size(batch, MAX_BATCH_BYTES, Outgoing::size) {
        results.extend(publish_run(&client, &topic, fifo, run).await);
    }
    results
}

async fn publish_run(client: &Client, topic: &str, fifo: bool, run: Vec<Outgoing>) -> Vec<Result<(), SinkError>> {
    let count = run.len();
    let entries: Result<Vec<_>, _> =
        run.iter().cloned().enumerate().map(|(i, outgoing)| entry(i, outgoing, fifo)).collect();
    let entries = match entries {
        Ok(entries) => entries,
        Err(error) => return vec![Err(error); count],
    };
    match client.publish_batch().topic_arn(topic).set_publish_batch_request_entries(Some(entries)).send().await {
        Ok(output) => entry_results(
            OPERATION,
            count,
            output.successful().iter().filter_map(|entry| entry.id()),
            output.failed().iter().map(|entry| FailedEntry {
                id: entry.id(),
                code: entry.code(),
                message: entry.message(),
                sender_fault: entry.sender_fault(),
            }),
        ),
        Err(error) => {
            one_by_one(aws_error(OPERATION, &error), count, |i| publish_one(client, topic, fifo, &run[i])).await
        }
    }
}

/// Publishes one message alone (`Publish`), after its batch was refused as a whole.
async fn publish_one(client: &Client, topic: &str, fifo: bool, outgoing: &Outgoing) -> Result<(), SinkError> {
    let entry = entry(0, outgoing.clone(), fifo)?;
    client
        .publish()
        .topic_arn(topic)
        .message(entry.message())
        .set_subject(entry.subject().map(str::to_owned))
        .set_message_attributes(entry.message_attributes().cloned())
        .set_message_group_id(entry.message_group_id().map(str::to_owned))
        .set_message_deduplication_id(entry.message_deduplication_id().map(str::to_owned))
        .send()
        .await
        .map(|_| ())
        .map_err(|error| aws_error(SINGLE_OPERATION, &error))
}

fn entry(index: usize, outgoing: Outgoing, fifo: bool) -> Result<PublishBatchRequestEntry, SinkError> {
    let Outgoing { message, subject } = outgoing;
    let mut entry =
        PublishBatchRequestEntry::builder().id(index.to_string()).message(message.body).set_subject(subject);
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
    use aws_sdk_sns::types::PublishBatchRequestEntry;

    use super::*;
    use crate::testing::{
        BOUNCE_JSON, attributes, aws_config, aws_endpoint, bounce, create_queue, receive, unique_name,
    };

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

    #[test]
    fn the_default_subject_says_what_happened_and_from_whom() {
        let notification = bounce(BOUNCE_JSON);
        let item = Item::Notification { notification: &notification, routes: &["dev"] };
        assert_eq!(subject(None, ORIGIN, item).as_deref(), Some("SES bounce from dev@dev.example.com"));
        assert_eq!(subject(Some("Bounces for dev"), ORIGIN, item).as_deref(), Some("Bounces for dev"));
        let dead = Item::DeadLetter { body: "x", reason: "not JSON" };
        assert_eq!(subject(None, ORIGIN, dead).as_deref(), Some("sesroute dead letter from bounces"));
        let mut anonymous = bounce(BOUNCE_JSON);
        anonymous.source = "".into();
        let item = Item::Notification { notification: &anonymous, routes: &[] };
        assert_eq!(subject(None, ORIGIN, item).as_deref(), Some("SES bounce"));
    }

    #[test]
    fn subjects_are_made_printable_ascii_of_at_most_100_characters() {
        assert_eq!(sanitize_subject("Bounce\r\nfor jos\u{e9}").as_deref(), Some("Bounce  for jos?"));
        assert_eq!(sanitize_subject("  \t leading space").as_deref(), Some("leading space"));
        assert_eq!(sanitize_subject("tab\there\u{7f}").as_deref(), Some("tab here?"));
        assert_eq!(sanitize_subject(&"y".repeat(150)).map(|s| s.len()), Some(100));
        assert_eq!(sanitize_subject(" \n "), None);
        assert_eq!(sanitize_subject(""), None);
        assert_eq!(sanitize_subject("\u{1F600}").as_deref(), Some("?"));
    }

    fn attribute(entry: &PublishBatchRequestEntry, name: &str) -> Option<String> {
        entry.message_attributes()?.get(name).and_then(|v| v.string_value()).map(str::to_owned)
    }

    #[test]
    fn entries_carry_body_subject_string_attributes_and_fifo_ids_only_for_fifo_topics() {
        let notification = bounce(BOUNCE_JSON);
        let item = Item::Notification { notification: &notification, routes: &["dev", "all"] };
        let outgoing = || Outgoing { message: Message::new(ORIGIN, item), subject: subject(None, ORIGIN, item) };

        let entry = entry(3, outgoing(), false).unwrap();
        assert_eq!(entry.id(), "3");
        assert_eq!(entry.message(), BOUNCE_JSON);
        assert_eq!(entry.subject(), Some("SES bounce from dev@dev.example.com"));
        assert_eq!(attribute(&entry, "kind").as_deref(), Some("bounce"));
        assert_eq!(attribute(&entry, "source").as_deref(), Some("dev@dev.example.com"));
        assert_eq!(attribute(&entry, "route").as_deref(), Some("dev,all"));
        assert!(entry.message_attributes().unwrap().values().all(|v| v.data_type() == "String"));
        assert_eq!(entry.message_group_id(), None);

        let fifo = super::entry(0, outgoing(), true).unwrap();
        assert_eq!(fifo.message_group_id(), Some("0100018f-bounce"));
        assert_eq!(fifo.message_deduplication_id(), Some("sqs-1"));
    }

    #[tokio::test]
    async fn an_empty_dead_letter_is_refused_without_a_call() {
        let aws = aws_config("http://127.0.0.1:9").await;
        let sink = SnsSink::new(&aws, "arn:aws:sns:us-east-1:000000000000:t".into(), None).unwrap();
        let error = sink.deliver(ORIGIN, Item::DeadLetter { body: "", reason: "empty body" }).await.unwrap_err();
        assert!(!error.is_retryable(), "{error}");
    }

    /// Creates a topic with two queue subscriptions, one with raw delivery
    /// (the body is the message) and one without (the body is the SNS envelope).
    async fn topic_with_queues(
        aws: &aws_config::SdkConfig,
        name: &str,
    ) -> (String, aws_sdk_sqs::Client, String, String) {
        let sns = Client::new(aws);
        let sqs = aws_sdk_sqs::Client::new(aws);
        let topic_arn = sns.create_topic().name(name).send().await.unwrap().topic_arn.unwrap();
        let mut urls = Vec::new();
        for (suffix, raw) in [("raw", "true"), ("enveloped", "false")] {
            let url = create_queue(&sqs, &format!("{name}-{suffix}")).await;
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()
                .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .unwrap();
            sns.subscribe()
                .topic_arn(&topic_arn)
                .protocol("sqs")
                .endpoint(arn)
                .attributes("RawMessageDelivery", raw)
                .send()
                .await
                .unwrap();
            urls.push(url);
        }
        let enveloped = urls.pop().unwrap();
        let raw = urls.pop().unwrap();
        (topic_arn, sqs, raw, enveloped)
    }

    #[tokio::test]
    async fn publishes_notifications_and_dead_letters_with_filterable_attributes() {
        let Some(endpoint) = aws_endpoint("sns publishes") else { return };
        let aws = aws_config(&endpoint).await;
        let (topic_arn, sqs, raw_url, enveloped_url) =
            topic_with_queues(&aws, &unique_name("sink-sns-publishes")).await;
        let sink = SnsSink::new(&aws, topic_arn, None).unwrap();

        let complaint_json = BOUNCE_JSON.replace("Bounce", "Complaint");
        let bounce = bounce(BOUNCE_JSON);
        let mut complaint = crate::testing::bounce(&complaint_json);
        complaint.kind = crate::notification::Kind::Complaint;
        complaint.detail = crate::notification::Detail::default();
        let (a, b, c) = tokio::join!(
            sink.deliver(ORIGIN, Item::Notification { notification: &bounce, routes: &["dev", "all"] }),
            sink.deliver(
                Origin { queue: "bounces", sqs_message_id: "sqs-2" },
                Item::Notification { notification: &complaint, routes: &["all"] }
            ),
            sink.deliver(
                Origin { queue: "bounces", sqs_message_id: "sqs-3" },
                Item::DeadLetter { body: "not json {", reason: "not JSON: expected value" }
            ),
        );
        assert_eq!((a, b, c), (Ok(()), Ok(()), Ok(())));

        let mut received: Vec<(String, Vec<(String, String)>)> = receive(&sqs, &raw_url, 3)
            .await
            .iter()
            .map(|m| (m.body().unwrap_or_default().to_owned(), attributes(m)))
            .collect();
        received.sort();
        let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let mut expected = vec![
            (
                complaint_json.clone(),
                pairs(&[("kind", "complaint"), ("route", "all"), ("source", "dev@dev.example.com")]),
            ),
            (
                BOUNCE_JSON.to_owned(),
                pairs(&[
                    ("bounce_class", "hard"),
                    ("kind", "bounce"),
                    ("route", "dev,all"),
                    ("source", "dev@dev.example.com"),
                ]),
            ),
            ("not json {".to_owned(), pairs(&[("error", "not JSON: expected value")])),
        ];
        expected.sort();
        assert_eq!(received, expected);

        let mut subjects: Vec<String> = receive(&sqs, &enveloped_url, 3)
            .await
            .iter()
            .map(|m| {
                let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                envelope["Subject"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        subjects.sort();
        assert_eq!(
            subjects,
            [
                "SES bounce from dev@dev.example.com",
                "SES complaint from dev@dev.example.com",
                "sesroute dead letter from bounces"
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_topic_is_retried_not_rejected() {
        let Some(endpoint) = aws_endpoint("sns missing topic") else { return };
        let aws = aws_config(&endpoint).await;
        let missing = format!("arn:aws:sns:us-east-1:000000000000:{}", unique_name("sink-sns-missing"));
        let sink = SnsSink::new(&aws, missing, None).unwrap();
        let notification = bounce(BOUNCE_JSON);
        let error = sink
            .deliver(ORIGIN, Item::Notification { notification: &notification, routes: &["dev"] })
            .await
            .unwrap_err();
        assert!(error.is_retryable(), "{error}");
    }

    /// A stand-in for SNS on loopback, speaking its query protocol: it refuses
    /// every `PublishBatch` as a whole with `refusal` (code, message) and
    /// answers `Publish` per message: a message holding `bad` is refused, the
    /// others are accepted. Returns its endpoint and the actions it was asked.
    async fn refusing_sns(
        refusal: (&'static str, &'static str),
        bad: &'static str,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use axum::http::StatusCode;
        let actions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&actions);
        let app = axum::Router::new().fallback(move |body: String| {
            let seen = std::sync::Arc::clone(&seen);
            async move {
                // A form: `Action=PublishBatch&...`; `bad` is made of characters sent as they are.
                let action = body.split('&').find_map(|p| p.strip_prefix("Action=")).unwrap_or_default().to_owned();
                seen.lock().unwrap().push(action.clone());
                let error = |code: &str, message: &str| {
                    format!(
                        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
                         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
                    )
                };
                if action == "PublishBatch" {
                    (StatusCode::BAD_REQUEST, error(refusal.0, refusal.1))
                } else if body.contains(bad) {
                    (StatusCode::BAD_REQUEST, error("InvalidParameter", "Invalid parameter: Message"))
                } else {
                    let ok = "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>\
                              <MessageId>m</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId>\
                              </ResponseMetadata></PublishResponse>";
                    (StatusCode::OK, ok.to_owned())
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}"), actions)
    }

    async fn publish_three(sink: &SnsSink) -> Vec<Result<(), SinkError>> {
        let good = bounce(BOUNCE_JSON);
        let bad_json = BOUNCE_JSON.replace("General", "BAD-ENTRY");
        let bad = bounce(&bad_json);
        let origin = |id| Origin { queue: "bounces", sqs_message_id: id };
        let (a, b, c) = tokio::join!(
            sink.deliver(origin("1"), Item::Notification { notification: &good, routes: &["r"] }),
            sink.deliver(origin("2"), Item::Notification { notification: &bad, routes: &["r"] }),
            sink.deliver(origin("3"), Item::Notification { notification: &good, routes: &["r"] }),
        );
        vec![a, b, c]
    }

    #[tokio::test]
    async fn a_batch_refused_as_a_whole_is_published_one_by_one_and_only_the_bad_entry_is_permanent() {
        let (endpoint, actions) =
            refusing_sns(("InvalidParameter", "Invalid parameter: Message too long"), "BAD-ENTRY").await;
        let aws = aws_config(&endpoint).await;
        let sink = SnsSink::new(&aws, "arn:aws:sns:us-east-1:000000000000:t".into(), None).unwrap();
        let results = publish_three(&sink).await;
        assert_eq!(results[0], Ok(()));
        assert!(results[1].as_ref().is_err_and(|e| !e.is_retryable()), "{:?}", results[1]);
        assert_eq!(results[2], Ok(()));
        let actions = actions.lock().unwrap();
        assert_eq!(actions.iter().filter(|a| *a == "PublishBatch").count(), 1, "{actions:?}");
        assert_eq!(actions.iter().filter(|a| *a == "Publish").count(), 3, "{actions:?}");
    }

    #[tokio::test]
    async fn a_topic_in_another_region_is_retried_not_dead_lettered() {
        // SNS's answer when the topic's region is not the client's.
        let (endpoint, _) = refusing_sns(("InvalidParameter", "Invalid parameter: TopicArn"), "never").await;
        let aws = aws_config(&endpoint).await;
        let sink = SnsSink::new(&aws, "arn:aws:sns:eu-west-1:000000000000:t".into(), None).unwrap();
        for result in publish_three(&sink).await {
            assert!(result.as_ref().is_err_and(SinkError::is_retryable), "{result:?}");
        }
    }
}
