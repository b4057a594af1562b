//! The `s3` sink: archives notifications as gzipped JSON Lines objects.
//!
//! Deliveries join a batch of up to `batch_max` lines, or what arrived within
//! `batch_window_secs` of its first; each batch becomes one object
//! `prefix/YYYY/MM/DD/HH/<uuid>.jsonl.gz` (the UTC hour of the upload), whose
//! lines are exactly those the file sink writes. A delivery returns once its
//! batch is stored, so its message leaves SQS only then. Objects are stored
//! with `Content-Type: application/x-ndjson` and `Content-Encoding: gzip`.
//! The sink only ever calls `PutObject`: a write-only bucket policy is enough.

use std::io::Write;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use flate2::Compression;
use flate2::write::GzEncoder;
use tracing::info;

use super::{Batcher, Deliver, Item, Origin, Pending, RateLimit, SinkError, file};
use crate::aws::aws_error;
use crate::batch::Options;
use crate::config::S3;
use crate::metrics::AWS_ERRORS;

const OPERATION: &str = "S3 PutObject";

const CONTENT_TYPE: &str = "application/x-ndjson";

/// Uploads running at once; while they are busy, the next batch grows.
const MAX_UPLOADS: usize = 4;

#[derive(Debug)]
pub struct S3Sink {
    /// Takes one encoded line, answers once the object holding it is stored.
    batcher: Batcher<Vec<u8>, ()>,
}

/// Where and how batches are stored.
#[derive(Debug)]
struct Archive {
    client: Client,
    /// The sink's name, for logs.
    name: String,
    bucket: String,
    prefix: String,
    limit: Option<RateLimit>,
}

impl S3Sink {
    /// Fails only outside a tokio runtime. The bucket is first reached by the
    /// first upload: looking it up at startup would need more than `s3:PutObject`.
    pub fn new(
        aws: &aws_config::SdkConfig,
        name: &str,
        options: &S3,
        limit: Option<RateLimit>,
    ) -> Result<S3Sink, String> {
        let archive = Arc::new(Archive {
            client: crate::aws::s3_client(aws),
            name: name.to_owned(),
            bucket: options.bucket.clone(),
            prefix: options.prefix.clone(),
            limit,
        });
        let batching = Options {
            max_items: options.batch_max,
            linger: options.batch_window,
            max_flushes: MAX_UPLOADS,
            // Every upload busy and the next batch filling: beyond that, deliveries wait.
            queue: options.batch_max.saturating_mul(MAX_UPLOADS + 1),
        };
        let batcher =
            Batcher::spawn(batching, move |lines| Arc::clone(&archive).store(lines)).map_err(|e| e.to_string())?;
        Ok(S3Sink { batcher })
    }
}

impl Deliver for S3Sink {
    /// It waits for its `max_per_minute` per object it stores.
    fn limits_itself(&self) -> bool {
        true
    }

    /// Returns once the object holding the item is stored. An item that cannot
    /// be encoded is refused alone, without joining (or failing) a batch.
    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        self.hold(origin, item).await?.answer().await
    }

    /// Puts the item in the current batch once there is room; the answer
    /// comes when its object is stored.
    async fn hold(&self, origin: Origin<'_>, item: Item<'_>) -> Result<Pending<()>, SinkError> {
        let line = file::line(origin, item)?;
        self.batcher.enqueue(line).await
    }

    /// Whether its batcher still runs.
    fn is_alive(&self) -> bool {
        self.batcher.is_alive()
    }

    /// Uploads what is waiting now, and from now on without a window.
    fn flush_now(&self) {
        self.batcher.flush_now();
    }
}

impl Archive {
    /// Stores `lines` as one object; every line gets the upload's result.
    async fn store(self: Arc<Self>, lines: Vec<Vec<u8>>) -> Vec<Result<(), SinkError>> {
        let count = lines.len();
        let result = self.put(lines).await;
        vec![result; count]
    }

    async fn put(&self, lines: Vec<Vec<u8>>) -> Result<(), SinkError> {
        let count = lines.len();
        // Compressing a thousand lines takes milliseconds: too long for a runtime thread.
        let body = tokio::task::spawn_blocking(move || gzip(&lines))
            .await
            .map_err(|e| SinkError::Retryable(format!("compressing the batch did not finish: {e}")))?
            .map_err(|e| SinkError::Retryable(format!("cannot compress the batch: {e}")))?;
        let bytes = body.len();
        RateLimit::wait_for(self.limit.as_ref()).await;
        let key = key(&self.prefix, jiff::Timestamp::now(), uuid::Uuid::new_v4());
        match self.put_object(&key, body).send().await {
            Ok(_) => {
                info!(sink = %self.name, bucket = %self.bucket, key = %key, items = count, bytes, "archived");
                Ok(())
            }
            Err(error) => {
                metrics::counter!(AWS_ERRORS, "service" => "s3", "operation" => "PutObject").increment(1);
                Err(retryable(aws_error(OPERATION, &error)))
            }
        }
    }

    fn put_object(&self, key: &str, gzipped: Vec<u8>) -> PutObjectFluentBuilder {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .content_encoding("gzip")
            .body(ByteStream::from(gzipped))
    }
}

/// The sink builds the object itself from lines already encoded, so no
/// notification can be at fault for a refused upload: whatever the shared
/// table says of the code (a misnamed bucket, a wrong region, a key policy),
/// an operator fixes it, and the batch's messages wait in SQS meanwhile
/// rather than being dead-lettered by the thousand.
fn retryable(error: SinkError) -> SinkError {
    error.into_retryable()
}

/// `prefix/YYYY/MM/DD/HH/<id>.jsonl.gz` for the UTC hour of `at`; without a
/// prefix, the key starts with the year.
fn key(prefix: &str, at: jiff::Timestamp, id: uuid::Uuid) -> String {
    let hour = at.strftime("%Y/%m/%d/%H");
    if prefix.is_empty() { format!("{hour}/{id}.jsonl.gz") } else { format!("{prefix}/{hour}/{id}.jsonl.gz") }
}

/// The lines, in order, as one gzip stream.
fn gzip(lines: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    let size: usize = lines.iter().map(Vec::len).sum();
    // JSON notifications compress about tenfold.
    let mut encoder = GzEncoder::new(Vec::with_capacity(size / 8), Compression::default());
    for line in lines {
        encoder.write_all(line)?;
    }
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::{ErrorMetadata, SdkError};
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use flate2::read::GzDecoder;

    use super::*;
    use crate::testing::{BOUNCE_JSON, aws_config, bounce};

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

    #[test]
    fn keys_are_prefix_utc_hour_and_id() {
        let at: jiff::Timestamp = "2024-03-09T07:59:59.9+05:00".parse().unwrap();
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            key("ses/archive", at, id),
            "ses/archive/2024/03/09/02/01234567-89ab-cdef-0123-456789abcdef.jsonl.gz"
        );
        assert_eq!(key("", at, id), "2024/03/09/02/01234567-89ab-cdef-0123-456789abcdef.jsonl.gz");
    }

    #[test]
    fn a_batch_gunzips_to_its_lines_in_order() {
        let notification = bounce(BOUNCE_JSON);
        let lines = vec![
            file::line(ORIGIN, Item::Notification { notification: &notification, routes: &["all"] }).unwrap(),
            file::line(ORIGIN, Item::DeadLetter { body: "not json {", reason: "not JSON" }).unwrap(),
        ];
        let compressed = gzip(&lines).unwrap();
        assert_eq!(&compressed[..2], [0x1f, 0x8b], "a gzip header");
        let mut text = String::new();
        GzDecoder::new(compressed.as_slice()).read_to_string(&mut text).unwrap();
        assert_eq!(text.as_bytes(), lines.concat());
        let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(records[0]["message_id"], "0100018f-bounce");
        assert_eq!(records[0]["notification"]["bounce"]["bounceType"], "Permanent");
        assert_eq!(records[1]["body"], "not json {");
    }

    fn service_error(code: &str, status: u16) -> SdkError<PutObjectError> {
        SdkError::service_error(
            PutObjectError::generic(ErrorMetadata::builder().code(code).message("from the test").build()),
            HttpResponse::new(status.try_into().unwrap(), "".into()),
        )
    }

    #[test]
    fn every_failed_upload_is_retried_with_the_reason() {
        for (code, status) in [
            ("SlowDown", 503),
            ("InternalError", 500),
            ("AccessDenied", 403),
            ("NoSuchBucket", 404),
            ("InvalidBucketName", 400),
            ("AuthorizationHeaderMalformed", 400),
        ] {
            let error = retryable(aws_error(OPERATION, &service_error(code, status)));
            assert_eq!(
                error,
                SinkError::Retryable(format!("S3 PutObject failed: {code}: from the test (HTTP {status})"))
            );
        }
        let timeout: SdkError<PutObjectError> = SdkError::timeout_error("too slow");
        assert!(retryable(aws_error(OPERATION, &timeout)).is_retryable());
    }

    #[tokio::test]
    async fn objects_are_gzip_encoded_json_lines() {
        let aws = aws_config("http://127.0.0.1:9").await;
        let archive = Archive {
            client: Client::new(&aws),
            name: "archive".to_owned(),
            bucket: "ses-archive".to_owned(),
            prefix: String::new(),
            limit: None,
        };
        let put = archive.put_object("2024/03/09/02/x.jsonl.gz", vec![0x1f, 0x8b]);
        assert_eq!(put.get_bucket().as_deref(), Some("ses-archive"));
        assert_eq!(put.get_key().as_deref(), Some("2024/03/09/02/x.jsonl.gz"));
        assert_eq!(put.get_content_type().as_deref(), Some("application/x-ndjson"));
        assert_eq!(put.get_content_encoding().as_deref(), Some("gzip"));
    }

    fn options(batch_max: usize, batch_window: Duration) -> S3 {
        S3 { bucket: "archive".to_owned(), prefix: "ses".to_owned(), batch_max, batch_window }
    }

    #[tokio::test]
    async fn a_line_that_cannot_be_encoded_is_refused_alone_and_an_unreachable_bucket_is_retried() {
        // Nothing listens on port 9 of loopback: the upload fails to connect.
        let aws = aws_config("http://127.0.0.1:9").await;
        let sink = S3Sink::new(&aws, "archive", &options(2, Duration::from_millis(10)), None).unwrap();
        let good = bounce(BOUNCE_JSON);
        let bad = bounce("{not json");
        let (a, b) = tokio::join!(
            sink.deliver(ORIGIN, Item::Notification { notification: &bad, routes: &["all"] }),
            sink.deliver(ORIGIN, Item::Notification { notification: &good, routes: &["all"] }),
        );
        assert!(matches!(&a, Err(SinkError::Permanent(e)) if e.contains("not valid JSON")), "{a:?}");
        assert!(matches!(&b, Err(SinkError::Retryable(e)) if e.starts_with("S3 PutObject failed")), "{b:?}");
    }
}
