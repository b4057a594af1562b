//! A [`Batcher`] turns items submitted concurrently into batches for one call
//! (`PublishBatch`, `SendMessageBatch`, `DeleteMessageBatch`, a digest email,
//! an archive object) and answers each submitter with its own item's result.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

/// What went wrong in the batcher itself, rather than in a flush: the
/// item's fate is unknown, so whoever submitted it should try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("cannot start its batcher: {0}")]
    NoRuntime(String),
    #[error("the batcher has stopped")]
    Stopped,
    #[error("the batch was dropped before it was sent")]
    Dropped,
    #[error("the batch call gave no result for this item")]
    NoResult,
}

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

type Reply<R, E> = oneshot::Sender<Result<R, E>>;

/// An item's room in the batcher (see [`Options::queue`]), held until it is answered.
type Room = OwnedSemaphorePermit;

/// The answer to one enqueued item, once its batch is flushed.
#[derive(Debug)]
pub struct Pending<R, E>(oneshot::Receiver<Result<R, E>>);

impl<R, E: From<BatchError>> Pending<R, E> {
    /// An answer already known (the item never needed a batch).
    pub fn ready(result: Result<R, E>) -> Pending<R, E> {
        let (reply, answer) = oneshot::channel();
        let _ = reply.send(result);
        Pending(answer)
    }

    pub async fn answer(self) -> Result<R, E> {
        // A dropped reply means the flush task died before answering: nothing says it was sent.
        self.0.await.unwrap_or_else(|_| Err(BatchError::Dropped.into()))
    }
}

/// Groups items submitted concurrently into batches for one flush call, and
/// answers each submitter with the result of its own item.
///
/// A background task collects up to `max_items`, waiting at most `linger`
/// after the first, then runs the flush function on its own task. The flush
/// returns one result per item, in the order given. The task ends when the
/// batcher is dropped, after the items already submitted are flushed.
pub struct Batcher<T, R, E> {
    tx: mpsc::Sender<(T, Reply<R, E>, Room)>,
    room: Arc<Semaphore>,
    /// Once cancelled, batches go out without waiting for their linger.
    no_linger: CancellationToken,
}

impl<T, R, E> fmt::Debug for Batcher<T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher").field("closed", &self.tx.is_closed()).finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static, E: From<BatchError> + Send + 'static> Batcher<T, R, E> {
    /// Starts the batcher's task on the current tokio runtime; fails outside one.
    pub fn spawn<F, Fut>(options: Options, flush: F) -> Result<Batcher<T, R, E>, BatchError>
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<R, E>>> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| BatchError::NoRuntime(e.to_string()))?;
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let no_linger = CancellationToken::new();
        runtime.spawn(collect(rx, options, no_linger.clone(), Arc::new(flush)));
        Ok(Batcher { tx, room: Arc::new(Semaphore::new(options.queue.max(1))), no_linger })
    }

    /// Whether its task still runs (it ends only when the batcher is dropped,
    /// unless it panicked).
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// From now on, flushes what is waiting at once instead of at the end of
    /// its linger (at shutdown, or when a reload retires this batcher).
    pub fn flush_now(&self) {
        self.no_linger.cancel();
    }

    /// Hands `item` to the next batch and waits for its own result.
    pub async fn submit(&self, item: T) -> Result<R, E> {
        self.enqueue(item).await?.answer().await
    }

    /// Hands `item` to the next batch once there is room for it; the
    /// [`Pending`] answer comes when its batch is flushed.
    pub async fn enqueue(&self, item: T) -> Result<Pending<R, E>, E> {
        let room = Arc::clone(&self.room).acquire_owned().await.map_err(|_| BatchError::Stopped)?;
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply, room)).await.map_err(|_| BatchError::Stopped)?;
        Ok(Pending(answer))
    }
}

async fn collect<T, R, E, F, Fut>(
    mut rx: mpsc::Receiver<(T, Reply<R, E>, Room)>,
    options: Options,
    no_linger: CancellationToken,
    flush: Arc<F>,
) where
    T: Send + 'static,
    R: Send + 'static,
    E: From<BatchError> + Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Result<R, E>>> + Send + 'static,
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
                () = no_linger.cancelled() => {
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
            let (items, replies): (Vec<T>, Vec<_>) =
                batch.into_iter().map(|(item, reply, room)| (item, (reply, room))).unzip();
            let mut results = flush(items).await.into_iter();
            // Each item's room is given back with its answer.
            for (reply, _room) in replies {
                let result = results.next().unwrap_or_else(|| Err(BatchError::NoResult.into()));
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::sink::SinkError;

    /// The tests' items fail as deliveries do.
    type Batcher<T, R> = super::Batcher<T, R, SinkError>;

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
    async fn flush_now_sends_a_pending_window_at_once_and_every_later_item_without_waiting() {
        let (batcher, flushes) = windowed(Duration::from_secs(3600));
        let first = [submit_at(&batcher, 0, 1), submit_at(&batcher, 5, 2)];
        tokio::time::sleep(Duration::from_secs(60)).await;
        batcher.flush_now();
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
        assert!(spawned.unwrap_err().to_string().starts_with("cannot start its batcher"));
    }

    #[test]
    fn split_by_size_keeps_order_and_puts_an_oversized_item_alone() {
        let runs = split_by_size(vec![4, 4, 4, 20, 1, 9, 1], 10, |n| *n);
        assert_eq!(runs, vec![vec![4, 4], vec![4], vec![20], vec![1, 9], vec![1]]);
        assert!(split_by_size(Vec::<usize>::new(), 10, |n| *n).is_empty());
    }
}
