//! What this process already delivered, so a redelivered message does not go
//! again to the sinks that have it.
//!
//! Only messages that were not deleted after their delivery (a sink asked for
//! a retry, or rejected) are remembered, keyed by the SQS message id (stable
//! across redeliveries), for a bounded window and a bounded number of
//! messages. Sinks are remembered by name, which a reload keeps (their ids
//! follow the config's order and may change). Across restarts nothing is
//! remembered: delivery is at least once.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a partial delivery is remembered.
const WINDOW: Duration = Duration::from_secs(6 * 60 * 60);
/// At most this many messages are remembered; the oldest are forgotten first.
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub struct Delivered {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sinks: HashMap<String, Vec<String>>,
    order: VecDeque<(Instant, String)>,
}

impl Delivered {
    /// The names of the sinks that already have the message with this SQS id.
    pub fn sinks(&self, sqs_message_id: &str) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.sinks.get(sqs_message_id).cloned().unwrap_or_default()
    }

    /// Remembers that the sinks with these names have the message.
    pub fn remember(&self, sqs_message_id: &str, sinks: &[&str]) {
        if sinks.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        while let Some((at, _)) = inner.order.front() {
            if inner.order.len() < CAPACITY && now.duration_since(*at) < WINDOW {
                break;
            }
            if let Some((_, id)) = inner.order.pop_front() {
                inner.sinks.remove(&id);
            }
        }
        let known = inner.sinks.entry(sqs_message_id.to_owned()).or_default();
        let fresh = known.is_empty();
        for sink in sinks {
            if !known.iter().any(|k| k == sink) {
                known.push((*sink).to_owned());
            }
        }
        if fresh {
            inner.order.push_back((now, sqs_message_id.to_owned()));
        }
    }

    /// Forgets a message once it is deleted.
    pub fn forget(&self, sqs_message_id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.sinks.remove(sqs_message_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_each_sink_once_and_forgets_on_delete() {
        let memory = Delivered::default();
        assert!(memory.sinks("m1").is_empty());
        memory.remember("m1", &["archive"]);
        memory.remember("m1", &["archive", "team"]);
        assert_eq!(memory.sinks("m1"), ["archive", "team"]);
        assert!(memory.sinks("m2").is_empty());
        memory.forget("m1");
        assert!(memory.sinks("m1").is_empty());
    }
}
