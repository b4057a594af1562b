//! What the AWS sinks (SNS, SQS, S3) and the SQS source share: the SDK
//! configuration, the [`Message`] the SNS and SQS sinks send, and the one
//! place that decides whether a failed AWS call is worth retrying.

use std::future::Future;

use aws_sdk_sns::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::sink::{Item, Origin, SinkError};
use crate::text::chain;

/// The SDK configuration: the default credential chain, the config's region
/// and endpoint, and the SDK's standard retries (exponential backoff with jitter).
pub async fn sdk_config(aws: &crate::config::Aws) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
        // No call may hang a delivery forever; an attempt outlasts the longest
        // long poll (20 s) with room to spare.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .operation_attempt_timeout(std::time::Duration::from_secs(30))
                .operation_timeout(std::time::Duration::from_secs(90))
                .build(),
        );
    if let Some(region) = &aws.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &aws.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The S3 client for `sdk`: by path when an endpoint is configured (local
/// emulators and other S3-compatible servers serve buckets by path, not as
/// host names).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(config.build())
}

/// An SDK error in one line, with the service's code when it has one.
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or("no message")),
        None => DisplayErrorContext(e).to_string(),
    }
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
                let mut attributes = vec![
                    ("kind", notification.kind.as_str().to_owned()),
                    ("source", notification.source.to_string()),
                    ("route", routes.join(",")),
                ];
                if let Some(class) = notification.bounce_class() {
                    attributes.push(("bounce_class", class.as_str().to_owned()));
                }
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
pub struct FailedEntry<'a> {
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
    failed: impl IntoIterator<Item = FailedEntry<'a>>,
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
pub fn entry_error(operation: &str, failure: FailedEntry<'_>) -> SinkError {
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

/// The service and region of `arn:<partition>:<service>:<region>:...`; `None`
/// when it is not an ARN or names no region.
pub fn arn_service_region(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (!region.is_empty()).then_some((service, region))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_sns::config::http::HttpResponse;
    use aws_sdk_sns::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sns::operation::publish_batch::PublishBatchError;

    use super::*;
    use crate::testing::{BOUNCE_JSON, bounce};

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

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
                ("route", "dev,all".to_owned()),
                ("bounce_class", "hard".to_owned())
            ]
        );
        assert_eq!(message.group_id, "0100018f-bounce");
        assert_eq!(message.deduplication_id, "sqs-1");
        assert_eq!(message.size(), BOUNCE_JSON.len() + 4 + 6 + 6 + 6 + 6 + 19 + 5 + 6 + 7 + 12 + 6 + 4);
    }

    #[test]
    fn empty_attribute_values_are_left_out() {
        let mut notification = bounce(BOUNCE_JSON);
        notification.source = "".into();
        notification.message_id = "".into();
        let message = Message::new(ORIGIN, Item::Notification { notification: &notification, routes: &[] });
        assert_eq!(message.attributes, vec![("kind", "bounce".to_owned()), ("bounce_class", "hard".to_owned())]);
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
        let entry = FailedEntry {
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
        let failure = |code, sender_fault| FailedEntry { id: "0", code, message: Some("m"), sender_fault };
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
        let failed = [FailedEntry { id: "2", code: "InvalidParameter", message: None, sender_fault: true }];
        let results = entry_results("op", 4, ["0", "3", "junk", "9"], failed);
        assert_eq!(results[0], Ok(()));
        assert!(results[1].as_ref().unwrap_err().is_retryable(), "unreported entries are retried");
        assert_eq!(results[2], Err(SinkError::Permanent("op entry failed: InvalidParameter".into())));
        assert_eq!(results[3], Ok(()));
    }
}
