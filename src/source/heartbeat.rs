//! The visibility heartbeat of a received message: while its sinks work on
//! it, the message is kept invisible, within SQS's 12-hour ceiling.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, info, warn};

use super::sqs::Queue;

/// Runs `work` while keeping the received message invisible: a task of its
/// own extends the message's visibility (`base`, the timeout it was received
/// with) until `work` is done, and is stopped with it, so a slow SQS call
/// never keeps `work` from being polled.
pub async fn while_invisible<F: Future>(queue: &Queue, receipt_handle: &str, base: Duration, work: F) -> F::Output {
    if (base / 2).is_zero() {
        return work.await;
    }
    let beat = keep_invisible(queue.clone(), receipt_handle.to_owned(), base).in_current_span();
    let _heartbeat = AbortOnDropHandle::new(tokio::spawn(beat));
    work.await
}

/// Past half the visibility timeout, extends the message's visibility, again
/// and again. The longer it has waited, the longer each extension (up to 15
/// minutes), so a message held an hour for a digest costs a handful of calls.
async fn keep_invisible(queue: Queue, receipt_handle: String, base: Duration) {
    let mut plan = Heartbeat::new(base, Instant::now());
    let mut next = plan.first();
    loop {
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        let Some(extension) = plan.extension(now) else {
            warn!("SQS keeps a received message invisible for 12 hours at most: it will turn visible");
            return;
        };
        match queue.set_visibility(&receipt_handle, extension).await {
            Ok(()) => {
                info!(visibility_timeout_secs = extension.as_secs(), "still delivering: visibility extended");
                next = plan.extended(now, extension);
            }
            Err(e) => {
                let Some(retry) = plan.failed(Instant::now()) else {
                    warn!(error = %e, "could not extend visibility: the message is visible again");
                    return;
                };
                warn!(error = %e, retry_in_ms = retry.saturating_duration_since(Instant::now()).as_millis(), "could not extend visibility: trying again");
                next = retry;
            }
        }
    }
}

/// When to extend a message's visibility, and by how much.
#[derive(Debug)]
struct Heartbeat {
    base: Duration,
    received: Instant,
    /// Until when the message is known to be invisible.
    deadline: Instant,
    /// The wait before trying a failed extension again; doubles each time.
    retry: Duration,
}

impl Heartbeat {
    /// SQS's ceiling on a received message's invisibility, from its receipt.
    const CEILING: Duration = Duration::from_secs(12 * 60 * 60);
    /// Kept clear of the ceiling (the receipt was a little before `received`).
    const MARGIN: Duration = Duration::from_secs(60);
    const MAX_EXTENSION: Duration = Duration::from_secs(900);
    const FIRST_RETRY: Duration = Duration::from_secs(2);

    fn new(base: Duration, received: Instant) -> Heartbeat {
        Heartbeat { base, received, deadline: received + base, retry: Self::FIRST_RETRY }
    }

    fn first(&self) -> Instant {
        self.received + self.base / 2
    }

    /// The extension to ask for at `now`: as long as the message has waited
    /// (at least the visibility timeout, at most 15 minutes), cut to what is
    /// left below the 12-hour ceiling; `None` once nothing is left.
    fn extension(&self, now: Instant) -> Option<Duration> {
        let waited = now.saturating_duration_since(self.received);
        let room = Self::CEILING.saturating_sub(waited).saturating_sub(Self::MARGIN);
        let extension = self.base.max(waited.min(Self::MAX_EXTENSION)).min(room);
        (extension >= Duration::from_secs(1)).then_some(extension)
    }

    /// Records an extension made at `now`; returns when to extend next.
    fn extended(&mut self, now: Instant, extension: Duration) -> Instant {
        self.deadline = now + extension;
        self.retry = Self::FIRST_RETRY;
        now + extension / 2
    }

    /// After a failed extension at `now`: when to try again, before the
    /// deadline; `None` once it has passed (the message is visible again).
    fn failed(&mut self, now: Instant) -> Option<Instant> {
        let left = self.deadline.checked_duration_since(now).filter(|left| !left.is_zero())?;
        let wait = self.retry.min(left / 2);
        self.retry = self.retry.saturating_mul(2);
        Some(now + wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_extensions_grow_with_the_wait_and_stop_below_the_12_hour_ceiling() {
        let start = Instant::now();
        let plan = Heartbeat::new(Duration::from_secs(30), start);
        assert_eq!(plan.first(), start + Duration::from_secs(15));
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(plan.extension(at(15)), Some(Duration::from_secs(30)), "at least the visibility timeout");
        assert_eq!(plan.extension(at(120)), Some(Duration::from_secs(120)), "as long as it has waited");
        assert_eq!(plan.extension(at(7200)), Some(Duration::from_secs(900)), "at most 15 minutes");
        let late = 12 * 3600 - 60 - 100;
        assert_eq!(plan.extension(at(late)), Some(Duration::from_secs(100)), "cut below the ceiling");
        assert_eq!(plan.extension(at(12 * 3600 - 60)), None, "nothing left");
    }

    #[test]
    fn a_failed_extension_is_retried_before_the_deadline_and_given_up_after_it() {
        let start = Instant::now();
        let mut plan = Heartbeat::new(Duration::from_secs(30), start);
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(plan.extended(at(15), Duration::from_secs(30)), at(30), "next at half the extension");
        // The deadline is 45 s: retries come sooner and sooner, never past it.
        assert_eq!(plan.failed(at(30)), Some(at(32)));
        assert_eq!(plan.failed(at(32)), Some(at(36)));
        assert_eq!(plan.failed(at(43)), Some(at(44)));
        assert_eq!(plan.failed(at(45)), None, "visible again: no more calls");
        assert_eq!(plan.extended(at(50), Duration::from_secs(30)), at(65));
        assert_eq!(plan.failed(at(65)), Some(at(67)), "a success resets the retry wait");
    }
}
