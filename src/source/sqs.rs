//! One SQS queue: long-poll receive loops, visibility changes, batched deletes.
//!
//! Receiving is bounded by a per-source semaphore (messages in flight), so a
//! slow sink slows receiving instead of piling messages up in memory. Deletes
//! from every pipeline task go through one batching task per queue.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::aws::describe;
use crate::batch::{self, BatchError, Batcher};
use crate::config::Source;

/// SQS returns at most this many messages per receive (and per batch delete).
pub const MAX_BATCH: usize = 10;
/// How long a delete waits for others to share its `DeleteMessageBatch`.
const DELETE_LINGER: Duration = Duration::from_millis(5);
/// A queue whose own visibility timeout is shorter than the config's
/// minimum is received with [`DEFAULT_VISIBILITY_TIMEOUT`].
const MIN_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(crate::config::MIN_VISIBILITY_TIMEOUT_SECS as u64);
/// SQS's default visibility timeout.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// The receive loop's own backoff when SQS keeps failing (after the SDK's retries).
const RECEIVE_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A received message with what the pipeline needs from SQS.
#[derive(Debug)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    /// How long ago the message was first sent to the queue (`SentTimestamp`).
    pub age: Option<Duration>,
    /// Holds one in-flight slot until the message is done with, or waits only
    /// for batching sinks (taken out by the pipeline).
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Why a message was not deleted: SQS refused it, or its batch was lost.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeleteError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Batch(#[from] BatchError),
}

/// A queue, shared by its receive loops and its pipeline tasks.
#[derive(Debug, Clone)]
pub struct Queue {
    pub name: Arc<str>,
    pub url: Arc<str>,
    client: Client,
    wait_time_secs: i32,
    visibility_timeout_secs: Option<i32>,
    in_flight: Arc<Semaphore>,
    /// Messages asked for per receive: a whole batch, once that many slots are free.
    receive_batch: usize,
    deletes: Arc<Batcher<String, (), DeleteError>>,
    /// Looked up once per queue, whatever the number of receivers asking;
    /// and whether receives must ask for it (the queue's own is too short).
    visibility_timeout: Arc<tokio::sync::OnceCell<(Duration, bool)>>,
}

impl Queue {
    /// Sets up the queue and starts its delete batcher (up to ten receipt
    /// handles a `DeleteMessageBatch`, several calls at once), which stops once
    /// every clone of the queue is dropped and its last deletes are done.
    pub fn new(client: Client, source: &Source) -> Result<Queue, String> {
        let url: Arc<str> = source.queue_url.as_str().into();
        let deletes = {
            let (client, url, name) = (client.clone(), url.clone(), source.name.clone());
            Batcher::spawn(batch::Options { linger: DELETE_LINGER, ..batch::Options::AWS }, move |handles| {
                delete_batch(client.clone(), url.clone(), name.clone(), handles)
            })
            .map_err(|e| e.to_string())?
        };
        let max_in_flight = source.max_in_flight as usize;
        Ok(Queue {
            name: source.name.as_str().into(),
            url,
            client,
            wait_time_secs: i32::try_from(source.wait_time_secs).unwrap_or(20),
            visibility_timeout_secs: source.visibility_timeout_secs.and_then(|v| i32::try_from(v).ok()),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            receive_batch: MAX_BATCH.min(max_in_flight).max(1),
            deletes: Arc::new(deletes),
            visibility_timeout: Arc::default(),
        })
    }

    /// The visibility timeout messages are received with: the configured
    /// one, else the queue's attribute, else SQS's default of 30 seconds; a
    /// queue attribute below [`MIN_VISIBILITY_TIMEOUT`] (0 would have SQS hand
    /// the message to the next receive at once, while its sinks still work on
    /// it) is replaced by the default, asked for on every receive.
    pub async fn visibility_timeout(&self) -> Duration {
        self.visibility().await.0
    }

    async fn visibility(&self) -> (Duration, bool) {
        *self.visibility_timeout.get_or_init(|| self.look_up_visibility_timeout()).await
    }

    async fn look_up_visibility_timeout(&self) -> (Duration, bool) {
        if let Some(secs) = self.visibility_timeout_secs {
            return (Duration::from_secs(u64::try_from(secs).unwrap_or(30)), true);
        }
        let attribute = self
            .client
            .get_queue_attributes()
            .queue_url(&*self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
            .send()
            .await;
        let secs = attribute.ok().and_then(|out| {
            out.attributes?.get(&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)?.parse().ok()
        });
        match secs.map(Duration::from_secs) {
            Some(own) if own < MIN_VISIBILITY_TIMEOUT => {
                warn!(
                    queue = %self.name,
                    queue_visibility_timeout_secs = own.as_secs(),
                    visibility_timeout_secs = DEFAULT_VISIBILITY_TIMEOUT.as_secs(),
                    "the queue's visibility timeout is too short to work on a message: receiving with a longer one"
                );
                (DEFAULT_VISIBILITY_TIMEOUT, true)
            }
            own => (own.unwrap_or(DEFAULT_VISIBILITY_TIMEOUT), false),
        }
    }

    /// One in-flight slot, for a message that gave its own back while it
    /// waited for a batch; `None` only if the queue is gone.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().acquire_owned().await.ok()
    }

    /// Waits until a whole receive's worth of in-flight slots is free; `None`
    /// when `shutdown` fired first.
    pub async fn reserve(&self, shutdown: &CancellationToken) -> Option<OwnedSemaphorePermit> {
        // Waiting for a whole batch of free slots keeps receives full: asking
        // for whatever happens to be free would mean many calls for 1 to 3 messages.
        let wanted = u32::try_from(self.receive_batch).unwrap_or(1);
        tokio::select! {
            permits = self.in_flight.clone().acquire_many_owned(wanted) => permits.ok(),
            () = shutdown.cancelled() => None,
        }
    }

    /// Receives up to as many messages as `permits` has slots, each taking
    /// one. Returns an empty list when the long poll found nothing, or when
    /// `shutdown` fired.
    pub async fn receive(
        &self,
        mut permits: OwnedSemaphorePermit,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Received>, String> {
        let wanted = permits.num_permits();
        let mut request = self
            .client
            .receive_message()
            .queue_url(&*self.url)
            .max_number_of_messages(i32::try_from(wanted).unwrap_or(10))
            .wait_time_seconds(self.wait_time_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All");
        if let (timeout, true) = self.visibility().await {
            request = request.visibility_timeout(i32::try_from(timeout.as_secs()).unwrap_or(30));
        }
        let output = tokio::select! {
            output = request.send() => output,
            // Dropping a long poll is safe: anything SQS was about to hand
            // over becomes visible again after the visibility timeout.
            () = shutdown.cancelled() => return Ok(Vec::new()),
        };
        let output = output.map_err(|e| describe(&e))?;
        let mut received = Vec::new();
        for message in output.messages.unwrap_or_default() {
            let (Some(message_id), Some(receipt_handle)) = (message.message_id.clone(), message.receipt_handle.clone())
            else {
                continue;
            };
            let Some(permit) = permits.split(1) else { break };
            received.push(Received {
                message_id,
                receipt_handle,
                receive_count: receive_count(&message),
                age: age(&message),
                body: message.body.unwrap_or_default(),
                permit: Some(permit),
            });
        }
        Ok(received)
    }

    /// How long a receive long-polls.
    pub fn wait_time(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.wait_time_secs).unwrap_or(20))
    }

    /// Whether the task that batches this queue's deletes still runs.
    pub fn deletes_alive(&self) -> bool {
        self.deletes.is_alive()
    }

    /// Deletes a message through the batcher; returns once SQS confirmed it.
    pub async fn delete(&self, receipt_handle: String) -> Result<(), DeleteError> {
        self.deletes.submit(receipt_handle).await
    }

    /// Makes the message visible again after `timeout` (a retry's backoff, or
    /// an extension while sinks are still working).
    pub async fn set_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), String> {
        let secs = i32::try_from(timeout.as_secs().min(43_200)).unwrap_or(43_200);
        self.client
            .change_message_visibility()
            .queue_url(&*self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    }
}

fn receive_count(message: &Message) -> u32 {
    message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn age(message: &Message) -> Option<Duration> {
    let sent_ms: u64 = message.attributes.as_ref()?.get(&MessageSystemAttributeName::SentTimestamp)?.parse().ok()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(now.saturating_sub(Duration::from_millis(sent_ms)))
}

/// The delays between receives while SQS keeps failing (after the SDK's own
/// retries): exponential with jitter, capped, never giving up.
pub fn receive_backoff() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(RECEIVE_BACKOFF_MAX)
        .with_jitter()
        .without_max_times()
        .build()
}

/// One `DeleteMessageBatch` call for up to ten receipt handles: a result each.
async fn delete_batch(
    client: Client,
    url: Arc<str>,
    queue: String,
    handles: Vec<String>,
) -> Vec<Result<(), DeleteError>> {
    let count = handles.len();
    let entries: Vec<_> = handles
        .into_iter()
        .enumerate()
        .filter_map(|(i, handle)| {
            DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build().ok()
        })
        .collect();
    match client.delete_message_batch().queue_url(&*url).set_entries(Some(entries)).send().await {
        Ok(output) => {
            let failed: std::collections::HashMap<String, String> = output
                .failed
                .into_iter()
                .map(|f| (f.id, format!("{}: {}", f.code, f.message.unwrap_or_default())))
                .collect();
            debug!(queue = %queue, deleted = count - failed.len(), "deleted a batch");
            (0..count)
                .map(|i| failed.get(&i.to_string()).map_or(Ok(()), |e| Err(DeleteError::Refused(e.clone()))))
                .collect()
        }
        Err(e) => {
            let error = describe(&e);
            warn!(queue = %queue, error = %error, "DeleteMessageBatch failed");
            vec![Err(DeleteError::Refused(error)); count]
        }
    }
}
