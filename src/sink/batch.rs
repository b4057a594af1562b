//! What the SNS and SQS sinks share: a [`Batcher`] that turns concurrent
//! deliveries into one `PublishBatch` / `SendMessageBatch` call, the
//! [`Message`] both send, and the one place that decides whether a failed AWS
//! call is worth retrying.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sns::error::{BuildError, ProvideErrorMetadata, SdkError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use super::{Item, Origin, SinkError};

/// How a [`Batcher`] groups items.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The most items handed to one flush.
    pub max_items: usize,
    /// How long to wait for more items after the first one of a batch arrived.
    pub linger: Duration,
    /// The most flushes running at once; further batches wait (and grow).
    pub max_flushes: usize,
    /// Items submitted and not answered yet (waiting, batched or being
    /// flushed), at most: beyond, `enqueue` waits for room. This bounds what
    /// a batcher holds in memory, and pushes back on whoever feeds it.
    pub queue: usize,
}

impl Options {
    /// For SNS `PublishBatch` and SQS `SendMessageBatch`: at most 10 entries a call.
    pub const AWS: Options = Options { max_items: 10, linger: Duration::from_millis(2), max_flushes: 16, queue: 1024 };
}

type Reply<R> = oneshot::Sender<Result<R, SinkError>>;

/// An item's room in the batcher (see [`Options::queue`]), held until it is answered.
type Room = OwnedSemaphorePermit;

/// The answer to one enqueued item, once its batch is flushed.
#[derive(Debug)]
pub struct Pending<R>(oneshot::Receiver<Result<R, SinkError>>);

impl<R> Pending<R> {
    /// An answer already known (the item never needed a batch).
    pub fn ready(result: Result<R, SinkError>) -> Pending<R> {
        let (reply, answer) = oneshot::channel();
        let _ = reply.send(result);
        Pending(answer)
    }

    pub async fn answer(self) -> Result<R, SinkError> {
        // A dropped reply means the flush task died before answering: nothing says it was sent.
        self.0
            .await
            .unwrap_or_else(|_| Err(SinkError::Retryable("the batch was dropped before it was sent".to_owned())))
    }
}

/// Groups items submitted concurrently into batches for one flush call, and
/// answers each submitter with the result of its own item.
///
/// A background task collects up to `max_items`, waiting at most `linger`
/// after the first, then runs the flush function on its own task. The flush
/// returns one result per item, in the order given. The task ends when the
/// batcher is dropped, after the items already submitted are flushed.
pub struct Batcher<T, R> {
    tx: mpsc::Sender<(T, Reply<R>, Room)>,
    room: Arc<Semaphore>,
    /// Once cancelled, batches go out without waiting for their linger.
    hurry: CancellationToken,
}

impl<T, R> fmt::Debug for Batcher<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher").field("closed", &self.tx.is_closed()).finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the batcher's task on the current tokio runtime; fails outside one.
    pub fn spawn<F, Fut>(options: Options, flush: F) -> Result<Batcher<T, R>, String>
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<R, SinkError>>> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| format!("cannot start its batcher: {e}"))?;
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let hurry = CancellationToken::new();
        runtime.spawn(collect(rx, options, hurry.clone(), Arc::new(flush)));
        Ok(Batcher { tx, room: Arc::new(Semaphore::new(options.queue.max(1))), hurry })
    }

    /// Whether its task still runs (it ends only when the batcher is dropped,
    /// unless it panicked).
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// From now on, flushes what is waiting at once instead of at the end of
    /// its linger (at shutdown, or when a reload retires this batcher).
    pub fn hurry(&self) {
        self.hurry.cancel();
    }

    /// Hands `item` to the next batch and waits for its own result.
    pub async fn submit(&self, item: T) -> Result<R, SinkError> {
        self.enqueue(item).await?.answer().await
    }

    /// Hands `item` to the next batch once there is room for it; the
    /// [`Pending`] answer comes when its batch is flushed.
    pub async fn enqueue(&self, item: T) -> Result<Pending<R>, SinkError> {
        let stopped = || SinkError::Retryable("the batcher has stopped".to_owned());
        let room = Arc::clone(&self.room).acquire_owned().await.map_err(|_| stopped())?;
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply, room)).await.map_err(|_| stopped())?;
        Ok(Pending(answer))
    }
}

async fn collect<T, R, F, Fut>(
    mut rx: mpsc::Receiver<(T, Reply<R>, Room)>,
    options: Options,
    hurry: CancellationToken,
    flush: Arc<F>,
) where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Result<R, SinkError>>> + Send + 'static,
{
    let max = options.max_items.max(1);
    let flushes = Arc::new(Semaphore::new(options.max_flushes.max(1)));
    // Room for a typical batch; a digest's or an archive's (thousands) grows as it fills.
    let room = max.min(64);
    let mut pending = Vec::with_capacity(room);
    while let Some(first) = rx.recv().await {
        pending.push(first);
        let deadline = Instant::now() + options.linger;
        while pending.len() < max {
            let room = max - pending.len();
            tokio::select! {
                biased;
                () = hurry.cancelled() => {
                    // Whatever is already queued still joins this batch.
                    while pending.len() < max {
                        let Ok(next) = rx.try_recv() else { break };
                        pending.push(next);
                    }
                    break;
                }
                received = timeout_at(deadline, rx.recv_many(&mut pending, room)) => match received {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
            }
        }
        // While every flush is busy the channel keeps filling, so the next batch is fuller.
        let Ok(permit) = Arc::clone(&flushes).acquire_owned().await else { break };
        let batch = std::mem::replace(&mut pending, Vec::with_capacity(room));
        let flush = Arc::clone(&flush);
        tokio::spawn(async move {
            let _permit = permit;
            let (items, replies): (Vec<T>, Vec<(Reply<R>, Room)>) =
                batch.into_iter().map(|(item, reply, room)| (item, (reply, room))).unzip();
            let mut results = flush(items).await.into_iter();
            // Each item's room is given back with its answer.
            for (reply, _room) in replies {
                let result = results.next().unwrap_or_else(|| {
                    Err(SinkError::Retryable("the batch call gave no result for this item".to_owned()))
                });
                // The submitter may have stopped waiting; the item went out all the same.
                let _ = reply.send(result);
            }
        });
    }
}

/// Splits `items` into runs, in order, whose sizes add up to at most `max_bytes`
/// (AWS limits a whole batch call, not only each entry). An item larger than
/// the limit goes alone, for AWS to refuse on its own.
pub fn split_by_size<T>(items: Vec<T>, max_bytes: usize, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let item_bytes = size(&item);
        if !current.is_empty() && bytes + item_bytes > max_bytes {
            runs.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += item_bytes;
        current.push(item);
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// `PublishBatch` and `SendMessageBatch` both refuse calls over 256 KiB in total.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The longest `error` attribute written for a dead letter, in characters.
const MAX_ERROR_CHARS: usize = 256;

/// FIFO group and deduplication ids are at most 128 characters.
const MAX_FIFO_ID_CHARS: usize = 128;

/// One message for an SNS topic or SQS queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The SES JSON, or a dead letter's body exactly as received.
    pub body: String,
    /// String attributes subscribers can filter on, none of them empty
    /// (SNS and SQS refuse empty attribute values).
    pub attributes: Vec<(&'static str, String)>,
    /// For FIFO targets: the SES message id (else the SQS message id), so one
    /// mail's notifications stay in order while different mails flow in parallel.
    pub group_id: String,
    /// For FIFO targets: the SQS message id, so a retried delivery of the same
    /// queue message is not forwarded twice.
    pub deduplication_id: String,
}

impl Message {
    pub fn new(origin: Origin<'_>, item: Item<'_>) -> Message {
        let (body, attributes, group) = match item {
            Item::Notification { notification, routes } => {
                let attributes = vec![
                    ("kind", notification.kind.as_str().to_owned()),
                    ("source", notification.source.to_string()),
                    ("route", routes.join(",")),
                ];
                let message_id = notification.message_id.as_ref();
                let group = if message_id.is_empty() { origin.sqs_message_id } else { message_id };
                (notification.ses_json.to_string(), attributes, group)
            }
            Item::DeadLetter { body, reason } => {
                let reason: String = reason.chars().take(MAX_ERROR_CHARS).collect();
                (body.to_owned(), vec![("error", reason)], origin.sqs_message_id)
            }
        };
        let attributes = attributes
            .into_iter()
            .map(|(name, value)| (name, attribute_value(&value)))
            .filter(|(_, value)| !value.is_empty())
            .collect();
        Message { body, attributes, group_id: fifo_id(group), deduplication_id: fifo_id(origin.sqs_message_id) }
    }

    /// Bytes this message adds to a batch call: body, attribute names, types and values.
    pub fn size(&self) -> usize {
        let attributes: usize =
            self.attributes.iter().map(|(name, value)| name.len() + "String".len() + value.len()).sum();
        self.body.len() + attributes
    }

    /// SNS and SQS refuse an empty message; say so before a call is spent on it.
    pub fn check_not_empty(&self) -> Result<(), SinkError> {
        if self.body.is_empty() {
            Err(SinkError::Permanent("an empty message cannot be sent".to_owned()))
        } else {
            Ok(())
        }
    }
}

/// Keeps the characters SQS allows in attribute values (the XML character
/// range, which SNS accepts too), so one odd character cannot fail a delivery.
fn attribute_value(value: &str) -> String {
    value
        .chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect()
}

/// Whether a topic ARN or queue URL names a FIFO target, which needs group
/// and deduplication ids. AWS spells the suffix in lowercase only.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
pub fn is_fifo(name: &str) -> bool {
    name.ends_with(".fifo")
}

/// FIFO ids allow ASCII letters, digits and punctuation, up to 128 of them.
fn fifo_id(value: &str) -> String {
    let id: String = value.chars().filter(char::is_ascii_graphic).take(MAX_FIFO_ID_CHARS).collect();
    if id.is_empty() { "sesroute".to_owned() } else { id }
}

/// One entry a batch call reports as failed.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub id: &'a str,
    pub code: &'a str,
    pub message: Option<&'a str>,
    pub sender_fault: bool,
}

/// The result of each of `count` entries (ids `"0"`, `"1"`, ...) from what a
/// batch call reported; an entry it did not mention is retried.
pub fn entry_results<'a>(
    operation: &str,
    count: usize,
    successful: impl IntoIterator<Item = &'a str>,
    failed: impl IntoIterator<Item = Failure<'a>>,
) -> Vec<Result<(), SinkError>> {
    let mut results = vec![Err(SinkError::Retryable(format!("{operation} did not report this entry"))); count];
    let mut set = |id: &str, result| {
        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
            *slot = result;
        }
    };
    for id in successful {
        set(id, Ok(()));
    }
    for failure in failed {
        set(failure.id, Err(entry_error(operation, failure)));
    }
    results
}

/// What an AWS error code says about retrying, when the code is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Retry,
    Reject,
}

/// Judges a code by name. Codes come as `Throttling`, `AWS.SimpleQueueService.NonExistentQueue`
/// (SQS's query-compatible form) or `QueueDoesNotExist` (its JSON form).
fn verdict(code: &str) -> Option<Verdict> {
    let code = code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code);
    let code = code.rsplit('#').next().unwrap_or(code);
    match code {
        // Passing trouble: throttling (also by KMS) and the service's own faults.
        "Throttling" | "ThrottlingException" | "Throttled" | "RequestThrottled" | "RequestThrottledException"
        | "TooManyRequestsException" | "RequestLimitExceeded" | "SlowDown" | "KMSThrottling"
        | "KMS.ThrottlingException" | "KmsThrottled" | "InternalError" | "InternalFailure" | "InternalServerError"
        | "ServiceUnavailable" | "ServiceUnavailableException" | "RequestTimeout" | "RequestTimeoutException"
        | "RequestExpired"
        // A missing topic or queue, denied access, bad credentials, a disabled or
        // unusable KMS key: a config or IAM mistake an operator fixes. Retrying
        // keeps the messages on the source queue meanwhile instead of
        // dead-lettering every one of them.
        | "NotFound" | "NotFoundException" | "NonExistentQueue" | "QueueDoesNotExist" | "QueueDeletedRecently"
        | "InvalidAddress" | "AuthorizationError" | "AccessDenied" | "AccessDeniedException" | "InvalidSecurity"
        | "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" | "IncompleteSignature"
        | "MissingAuthenticationToken" | "InvalidAccessKeyId" | "ExpiredToken" | "ExpiredTokenException"
        | "OptInRequired" | "EndpointDisabled" | "KMSAccessDenied" | "KMSDisabled" | "KMSInvalidState"
        | "KMSNotFound" | "KMSOptInRequired" | "KMS.AccessDeniedException" | "KMS.DisabledException"
        | "KMS.InvalidStateException" | "KMS.NotFoundException" | "KMS.OptInRequired"
        | "KMS.InvalidKeyUsageException" | "KmsAccessDenied" | "KmsDisabled" | "KmsInvalidState" | "KmsNotFound"
        | "KmsOptInRequired" | "KmsInvalidKeyUsage" => Some(Verdict::Retry),
        // The message itself is refused: sending it again cannot help.
        "InvalidParameter" | "InvalidParameterValue" | "InvalidParameterValueException" | "ParameterValueInvalid"
        | "ValidationException" | "ValidationError" | "MissingParameter" | "InvalidMessageContents"
        | "MessageTooLong" | "BatchRequestTooLong" | "InvalidAttributeName" | "InvalidAttributeValue" => {
            Some(Verdict::Reject)
        }
        _ => None,
    }
}

/// Parameters that name the target of a call (the topic, the queue): a call
/// refused for one of them is refused whatever it carries (a topic in
/// another region than the client's, a malformed queue URL), which an
/// operator fixes in the config. SNS says `Invalid parameter: TopicArn`.
const TARGET_PARAMETERS: &[&str] = &["topicarn", "targetarn", "queueurl", "queue url", "region"];

/// The verdict on a code, corrected by what the message says: a "refused"
/// code about the target rather than the message is retried.
fn judge(code: Option<&str>, message: Option<&str>) -> Option<Verdict> {
    let verdict = code.and_then(verdict)?;
    let about_target = message.is_some_and(|m| {
        let m = m.to_lowercase();
        TARGET_PARAMETERS.iter().any(|p| m.contains(p))
    });
    Some(if verdict == Verdict::Reject && about_target { Verdict::Retry } else { verdict })
}

fn sink_error(verdict: Verdict, text: String) -> SinkError {
    match verdict {
        Verdict::Retry => SinkError::Retryable(text),
        Verdict::Reject => SinkError::Permanent(text),
    }
}

/// Judges one failed entry of a batch call: by its code when known, else
/// by whose fault AWS says it is.
pub fn entry_error(operation: &str, failure: Failure<'_>) -> SinkError {
    let text = match failure.message {
        Some(message) => format!("{operation} entry failed: {}: {message}", failure.code),
        None => format!("{operation} entry failed: {}", failure.code),
    };
    let verdict = judge(Some(failure.code), failure.message).unwrap_or(if failure.sender_fault {
        Verdict::Reject
    } else {
        Verdict::Retry
    });
    sink_error(verdict, text)
}

/// A request entry that could not be built: the same input fails the same way again.
pub fn build_error(error: &BuildError) -> SinkError {
    SinkError::Permanent(format!("cannot build the request: {error}"))
}

/// What becomes of a batch call refused as a whole (`refused`, permanent: a
/// 4xx such as `InvalidParameter` or `BatchRequestTooLong`): no entry is
/// blamed for it before it was sent on its own. `single(i)` sends entry `i`
/// alone (`Publish`, `SendMessage`); each entry gets its own call's result.
/// A refusal that can pass is left as it is: every entry is retried.
pub async fn one_by_one<F, Fut>(refused: SinkError, count: usize, single: F) -> Vec<Result<(), SinkError>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), SinkError>>,
{
    if refused.is_retryable() || count <= 1 {
        return vec![Err(refused); count];
    }
    tracing::warn!(error = %refused, entries = count, "a batch call was refused as a whole: its entries are sent one by one");
    let mut results = Vec::with_capacity(count);
    for i in 0..count {
        results.push(single(i).await);
    }
    results
}

/// Judges a failed SNS or SQS call (both SDKs share this `SdkError`).
///
/// Timeouts, connection failures, unreadable responses and requests that
/// could not be built are retried (nothing says the message is at fault);
/// a service error is judged by its code, else by its HTTP status.
pub fn aws_error<E>(operation: &str, error: &SdkError<E>) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = error.code();
            let verdict = judge(code, error.message()).unwrap_or(match status {
                // Throttled, timed out, or the target or access is missing (see `verdict`).
                401 | 403 | 404 | 408 | 429 => Verdict::Retry,
                400..=499 => Verdict::Reject,
                _ => Verdict::Retry,
            });
            let text = format!(
                "{operation} failed: {}: {} (HTTP {status})",
                code.unwrap_or("no error code"),
                error.message().unwrap_or("no message")
            );
            sink_error(verdict, text)
        }
        _ => SinkError::Retryable(format!("{operation} failed: {}", chain(error))),
    }
}

/// An error and its sources, each said once: `dispatch failure: io error: connection refused`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the sink tests.

    use std::borrow::Cow;

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
            tags: Vec::new(),
            recipients: vec![Cow::Borrowed("jane@example.org")],
            detail: Detail {
                bounce_type: Some(Cow::Borrowed("Permanent")),
                bounce_subtype: Some(Cow::Borrowed("General")),
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
        if super::is_fifo(name) {
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
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_sns::config::http::HttpResponse;
    use aws_sdk_sns::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sns::operation::publish_batch::PublishBatchError;

    use super::testing::{BOUNCE_JSON, bounce};
    use super::*;

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

    #[tokio::test]
    async fn concurrent_submits_share_one_flush_and_each_gets_its_own_result() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let batcher = Batcher::spawn(Options::AWS, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.clone());
            async move {
                items
                    .into_iter()
                    .map(|n| if n % 2 == 0 { Ok(n * 10) } else { Err(SinkError::Permanent(format!("odd {n}"))) })
                    .collect()
            }
        })
        .unwrap();
        let batcher = Arc::new(batcher);
        let submits: Vec<_> = (0..4u32)
            .map(|n| {
                let batcher = Arc::clone(&batcher);
                tokio::spawn(async move { batcher.submit(n).await })
            })
            .collect();
        let mut results = Vec::new();
        for submit in submits {
            results.push(submit.await.unwrap());
        }
        assert_eq!(
            results,
            vec![Ok(0), Err(SinkError::Permanent("odd 1".into())), Ok(20), Err(SinkError::Permanent("odd 3".into()))]
        );
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "one flush for all four: {calls:?}");
        let mut items = calls[0].clone();
        items.sort_unstable();
        assert_eq!(items, vec![0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_items_and_a_lone_item_is_flushed_after_the_linger() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let batcher = Arc::new(
            Batcher::spawn(Options::AWS, move |items: Vec<u32>| {
                seen.lock().unwrap().push(items.len());
                async move { items.into_iter().map(Ok).collect() }
            })
            .unwrap(),
        );
        let submits: Vec<_> = (0..25u32)
            .map(|n| {
                let batcher = Arc::clone(&batcher);
                tokio::spawn(async move { batcher.submit(n).await })
            })
            .collect();
        for (n, submit) in (0..25u32).zip(submits) {
            assert_eq!(submit.await.unwrap(), Ok(n));
        }
        assert_eq!(*calls.lock().unwrap(), vec![10, 10, 5]);

        // Alone, an item waits out the linger and goes.
        assert_eq!(batcher.submit(99).await, Ok(99));
        assert_eq!(calls.lock().unwrap().last(), Some(&1));
    }

    /// A digest-like batcher: a long window, one flush at a time; records
    /// (the paused clock's seconds at each flush, the items flushed).
    /// Each flush: the paused clock's seconds, and the items.
    type Flushes = Arc<Mutex<Vec<(u64, Vec<u32>)>>>;

    fn windowed(window: Duration) -> (Arc<Batcher<u32, ()>>, Flushes) {
        let start = Instant::now();
        let flushes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&flushes);
        let options = Options { max_items: 10_000, linger: window, max_flushes: 1, queue: 64 };
        let batcher = Batcher::spawn(options, move |items: Vec<u32>| {
            seen.lock().unwrap().push((start.elapsed().as_secs(), items.clone()));
            async move { items.iter().map(|_| Ok(())).collect() }
        })
        .unwrap();
        (Arc::new(batcher), flushes)
    }

    fn submit_at(
        batcher: &Arc<Batcher<u32, ()>>,
        secs: u64,
        item: u32,
    ) -> tokio::task::JoinHandle<Result<(), SinkError>> {
        let batcher = Arc::clone(batcher);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            batcher.submit(item).await
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_collects_everything_from_its_first_item_until_it_ends() {
        let (batcher, flushes) = windowed(Duration::from_secs(3600));
        let waiting = [submit_at(&batcher, 10, 1), submit_at(&batcher, 1800, 2), submit_at(&batcher, 3605, 3)];
        let late = submit_at(&batcher, 3700, 4);
        for submit in waiting {
            assert_eq!(submit.await.unwrap(), Ok(()), "each submitter waits for its digest");
        }
        late.await.unwrap().unwrap();
        // The first window opens with item 1 at 10 s and closes an hour later;
        // item 4 opens the second, which closes an hour after it.
        assert_eq!(*flushes.lock().unwrap(), vec![(3610, vec![1, 2, 3]), (7300, vec![4])]);
    }

    #[tokio::test(start_paused = true)]
    async fn enqueue_waits_for_room_while_queue_items_are_unanswered() {
        let options = Options { max_items: 10, linger: Duration::from_secs(60), max_flushes: 1, queue: 2 };
        let batcher =
            Batcher::spawn(options, |items: Vec<u32>| async move { items.iter().map(|_| Ok(())).collect() }).unwrap();
        let first = batcher.enqueue(1).await.unwrap();
        let _second = batcher.enqueue(2).await.unwrap();
        let third = tokio::time::timeout(Duration::from_secs(30), batcher.enqueue(3)).await;
        assert!(third.is_err(), "no room for a third item while two wait for their window");
        assert_eq!(first.answer().await, Ok(()), "the window closes at 60 s and answers both");
        let third = tokio::time::timeout(Duration::from_secs(1), batcher.enqueue(3)).await;
        assert!(third.is_ok(), "answered items gave their room back");
    }

    #[tokio::test(start_paused = true)]
    async fn hurry_sends_a_pending_window_at_once_and_every_later_item_without_waiting() {
        let (batcher, flushes) = windowed(Duration::from_secs(3600));
        let first = [submit_at(&batcher, 0, 1), submit_at(&batcher, 5, 2)];
        tokio::time::sleep(Duration::from_secs(60)).await;
        batcher.hurry();
        for submit in first {
            submit.await.unwrap().unwrap();
        }
        submit_at(&batcher, 10, 3).await.unwrap().unwrap();
        assert_eq!(*flushes.lock().unwrap(), vec![(60, vec![1, 2]), (70, vec![3])]);
    }

    #[tokio::test]
    async fn a_flush_that_answers_too_few_results_leaves_the_rest_retryable() {
        let batcher =
            Batcher::spawn(Options::AWS, |_: Vec<u32>| async { Vec::<Result<(), SinkError>>::new() }).unwrap();
        assert!(batcher.submit(1).await.unwrap_err().is_retryable());
    }

    #[test]
    fn spawning_outside_a_runtime_is_an_error_not_a_panic() {
        let spawned =
            Batcher::spawn(Options::AWS, |items: Vec<u32>| async move { items.into_iter().map(Ok).collect() });
        assert!(spawned.unwrap_err().starts_with("cannot start its batcher"));
    }

    #[test]
    fn split_by_size_keeps_order_and_puts_an_oversized_item_alone() {
        let runs = split_by_size(vec![4, 4, 4, 20, 1, 9, 1], 10, |n| *n);
        assert_eq!(runs, vec![vec![4, 4], vec![4], vec![20], vec![1, 9], vec![1]]);
        assert!(split_by_size(Vec::<usize>::new(), 10, |n| *n).is_empty());
    }

    #[test]
    fn a_notification_becomes_its_ses_json_with_kind_source_and_route_attributes() {
        let notification = bounce(BOUNCE_JSON);
        let message = Message::new(ORIGIN, Item::Notification { notification: &notification, routes: &["dev", "all"] });
        assert_eq!(message.body, BOUNCE_JSON);
        assert_eq!(
            message.attributes,
            vec![
                ("kind", "bounce".to_owned()),
                ("source", "dev@dev.example.com".to_owned()),
                ("route", "dev,all".to_owned())
            ]
        );
        assert_eq!(message.group_id, "0100018f-bounce");
        assert_eq!(message.deduplication_id, "sqs-1");
        assert_eq!(message.size(), BOUNCE_JSON.len() + 4 + 6 + 6 + 6 + 6 + 19 + 5 + 6 + 7);
    }

    #[test]
    fn empty_attribute_values_are_left_out() {
        let mut notification = bounce(BOUNCE_JSON);
        notification.source = "".into();
        notification.message_id = "".into();
        let message = Message::new(ORIGIN, Item::Notification { notification: &notification, routes: &[] });
        assert_eq!(message.attributes, vec![("kind", "bounce".to_owned())]);
        assert_eq!(message.group_id, "sqs-1", "without an SES message id, the SQS one groups");
    }

    #[test]
    fn a_dead_letter_is_its_body_with_the_reason_cut_to_256_characters() {
        let reason = format!("not JSON: {}\u{0}", "é".repeat(300));
        let message = Message::new(ORIGIN, Item::DeadLetter { body: "garbage\n", reason: &reason });
        assert_eq!(message.body, "garbage\n");
        let [(name, value)] = message.attributes.as_slice() else { panic!("{:?}", message.attributes) };
        assert_eq!(*name, "error");
        assert_eq!(value.chars().count(), 256);
        assert!(value.starts_with("not JSON: éé"));
        let control = Message::new(ORIGIN, Item::DeadLetter { body: "x", reason: "a\u{0}b\u{FFFE}c\td" });
        assert_eq!(control.attributes, vec![("error", "abc\td".to_owned())], "characters SQS refuses are dropped");
        assert!(Message::new(ORIGIN, Item::DeadLetter { body: "", reason: "empty body" }).check_not_empty().is_err());
    }

    #[test]
    fn fifo_ids_are_ascii_punctuation_and_at_most_128_characters() {
        assert_eq!(fifo_id("a b\u{e9}c!"), "abc!");
        assert_eq!(fifo_id(&"x".repeat(200)).len(), 128);
        assert_eq!(fifo_id("\u{e9}"), "sesroute");
    }

    fn service_error(code: Option<&str>, status: u16) -> SdkError<PublishBatchError> {
        service_error_saying(code, status, "from the test")
    }

    fn service_error_saying(code: Option<&str>, status: u16, message: &str) -> SdkError<PublishBatchError> {
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(
            PublishBatchError::generic(meta.build()),
            HttpResponse::new(status.try_into().unwrap(), "".into()),
        )
    }

    #[test]
    fn aws_errors_are_retryable_unless_the_message_itself_is_refused() {
        let retryable = |error: &SdkError<PublishBatchError>| aws_error("PublishBatch", error).is_retryable();
        let table: &[(Option<&str>, u16, bool)] = &[
            (Some("Throttling"), 400, true),
            (Some("KMSThrottling"), 400, true),
            (Some("RequestThrottled"), 403, true),
            (Some("InternalError"), 500, true),
            (Some("NotFound"), 404, true),
            (Some("AuthorizationError"), 403, true),
            (Some("AccessDenied"), 403, true),
            (Some("AWS.SimpleQueueService.NonExistentQueue"), 400, true),
            (Some("QueueDoesNotExist"), 400, true),
            (Some("com.amazonaws.sqs#QueueDoesNotExist"), 400, true),
            (Some("KMS.AccessDeniedException"), 400, true),
            (Some("InvalidClientTokenId"), 403, true),
            (Some("ExpiredToken"), 400, true),
            (Some("InvalidParameter"), 400, false),
            (Some("InvalidParameterValue"), 400, false),
            (Some("ParameterValueInvalid"), 400, false),
            (Some("AWS.SimpleQueueService.BatchRequestTooLong"), 400, false),
            (Some("MessageTooLong"), 400, false),
            (Some("SomethingNew"), 400, false),
            (Some("SomethingNew"), 503, true),
            (None, 500, true),
            (None, 502, true),
            (None, 429, true),
            (None, 403, true),
            (None, 404, true),
            (None, 413, false),
        ];
        for (code, status, expected) in table {
            let error = service_error(*code, *status);
            assert_eq!(retryable(&error), *expected, "{code:?} {status}");
        }
        let timeout: SdkError<PublishBatchError> = SdkError::timeout_error("too slow");
        assert!(retryable(&timeout));
        let dispatch: SdkError<PublishBatchError> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert!(retryable(&dispatch));
        let construction: SdkError<PublishBatchError> = SdkError::construction_failure("no region");
        assert!(retryable(&construction));

        assert_eq!(
            aws_error("SNS PublishBatch", &service_error(Some("Throttling"), 400)),
            SinkError::Retryable("SNS PublishBatch failed: Throttling: from the test (HTTP 400)".into())
        );
        assert_eq!(
            aws_error("SNS PublishBatch", &dispatch),
            SinkError::Retryable("SNS PublishBatch failed: dispatch failure: io error: connection refused".into())
        );
    }

    #[test]
    fn a_refusal_that_names_the_topic_or_queue_is_the_configs_fault_and_retried() {
        let judged = |code, message| aws_error("SNS PublishBatch", &service_error_saying(Some(code), 400, message));
        // SNS's answer for a topic in another region than the client's.
        assert!(judged("InvalidParameter", "Invalid parameter: TopicArn").is_retryable());
        assert!(judged("InvalidParameter", "Invalid parameter: TargetArn Reason: region").is_retryable());
        assert!(
            judged("InvalidAddress", "The address https://sqs.eu-west-1.amazonaws.com/ is not valid").is_retryable()
        );
        assert!(judged("InvalidParameterValue", "Value for parameter QueueUrl is invalid").is_retryable());
        assert!(!judged("InvalidParameter", "Invalid parameter: Message too long").is_retryable());
        assert!(!judged("InvalidParameterValue", "Message contains invalid characters").is_retryable());
        let entry = Failure {
            id: "0",
            code: "InvalidParameter",
            message: Some("Invalid parameter: TopicArn"),
            sender_fault: true,
        };
        assert!(entry_error("op", entry).is_retryable());
    }

    #[tokio::test]
    async fn a_batch_refused_as_a_whole_is_sent_one_by_one_before_any_entry_is_blamed() {
        let refused = SinkError::Permanent("PublishBatch failed: BatchRequestTooLong (HTTP 400)".into());
        let sent = Mutex::new(Vec::new());
        let results = one_by_one(refused, 3, |i| {
            sent.lock().unwrap().push(i);
            async move { if i == 1 { Err(SinkError::Permanent("Publish failed: too long".into())) } else { Ok(()) } }
        })
        .await;
        assert_eq!(*sent.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(results, vec![Ok(()), Err(SinkError::Permanent("Publish failed: too long".into())), Ok(())]);

        // A refusal that can pass (throttling, a missing topic) retries the batch as it is.
        let passing = SinkError::Retryable("Throttling".into());
        let results = one_by_one(passing.clone(), 2, |_| async { panic!("no single call") }).await;
        assert_eq!(results, vec![Err(passing.clone()), Err(passing)]);
    }

    #[test]
    fn failed_entries_are_judged_by_code_then_by_sender_fault() {
        let failure = |code, sender_fault| Failure { id: "0", code, message: Some("m"), sender_fault };
        assert!(entry_error("op", failure("InternalError", false)).is_retryable());
        assert!(entry_error("op", failure("KMSAccessDenied", true)).is_retryable(), "IAM is fixable");
        assert!(!entry_error("op", failure("InvalidParameter", true)).is_retryable());
        assert!(!entry_error("op", failure("SomethingNew", true)).is_retryable());
        assert!(entry_error("op", failure("SomethingNew", false)).is_retryable());
        assert_eq!(
            entry_error("op", failure("InvalidParameter", true)),
            SinkError::Permanent("op entry failed: InvalidParameter: m".into())
        );
    }

    #[test]
    fn entry_results_map_ids_back_to_positions() {
        let failed = [Failure { id: "2", code: "InvalidParameter", message: None, sender_fault: true }];
        let results = entry_results("op", 4, ["0", "3", "junk", "9"], failed);
        assert_eq!(results[0], Ok(()));
        assert!(results[1].as_ref().unwrap_err().is_retryable(), "unreported entries are retried");
        assert_eq!(results[2], Err(SinkError::Permanent("op entry failed: InvalidParameter".into())));
        assert_eq!(results[3], Ok(()));
    }
}
