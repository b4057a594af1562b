//! The `log` sink: one structured tracing event per delivered item, at the
//! configured level. It says who sent what and how many recipients were
//! affected, never the recipients' addresses.

use tracing::Level;

use super::{Deliver, Item, Origin, SinkError};

#[derive(Debug)]
pub struct LogSink {
    name: String,
    level: Level,
}

/// Emits one event at a level chosen at run time (tracing wants it constant).
macro_rules! event_at {
    ($level:expr, $($event:tt)+) => {
        match $level {
            Level::ERROR => tracing::event!(Level::ERROR, $($event)+),
            Level::WARN => tracing::event!(Level::WARN, $($event)+),
            Level::INFO => tracing::event!(Level::INFO, $($event)+),
            Level::DEBUG => tracing::event!(Level::DEBUG, $($event)+),
            Level::TRACE => tracing::event!(Level::TRACE, $($event)+),
        }
    };
}

impl LogSink {
    pub fn new(name: &str, level: Level) -> LogSink {
        LogSink { name: name.to_owned(), level }
    }
}

impl Deliver for LogSink {
    /// Logging never fails: there is nothing to retry.
    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        match item {
            Item::Notification { notification, routes } => event_at!(
                self.level,
                sink = %self.name,
                queue = %origin.queue,
                sqs_message_id = %origin.sqs_message_id,
                kind = %notification.kind,
                source = %notification.source,
                message_id = %notification.message_id,
                bounce_type = notification.detail.bounce_type.as_deref(),
                bounce_subtype = notification.detail.bounce_subtype.as_deref(),
                complaint_type = notification.detail.complaint_type.as_deref(),
                routes = %routes.join(","),
                recipients = notification.recipients.len(),
                "ses notification"
            ),
            Item::DeadLetter { body, reason } => event_at!(
                self.level,
                sink = %self.name,
                queue = %origin.queue,
                sqs_message_id = %origin.sqs_message_id,
                reason = %reason,
                body_len = body.len(),
                "dead letter"
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::testing::{BOUNCE_JSON, bounce};

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The JSON events `deliver` logs with a subscriber that lets everything through.
    fn events(sink: &LogSink, item: Item<'_>) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            tracing_subscriber::fmt().json().with_max_level(Level::TRACE).with_writer(move || writer.clone()).finish();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let delivered = tracing::subscriber::with_default(subscriber, || runtime.block_on(sink.deliver(ORIGIN, item)));
        assert_eq!(delivered, Ok(()), "logging never fails");
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    #[test]
    fn a_notification_is_one_event_with_stable_fields_and_no_recipient_address() {
        let notification = bounce(BOUNCE_JSON);
        let sink = LogSink::new("dev-team", Level::INFO);
        let events = events(&sink, Item::Notification { notification: &notification, routes: &["dev", "all"] });
        let [event] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(event["level"], "INFO");
        let fields = &event["fields"];
        assert_eq!(fields["message"], "ses notification");
        assert_eq!(fields["sink"], "dev-team");
        assert_eq!(fields["queue"], "bounces");
        assert_eq!(fields["sqs_message_id"], "sqs-1");
        assert_eq!(fields["kind"], "bounce");
        assert_eq!(fields["source"], "dev@dev.example.com");
        assert_eq!(fields["message_id"], "0100018f-bounce");
        assert_eq!(fields["bounce_type"], "Permanent");
        assert_eq!(fields["routes"], "dev,all");
        assert_eq!(fields["recipients"], 1);
        assert!(!event.to_string().contains("jane@example.org"), "{event}");
    }

    #[test]
    fn the_configured_level_is_used() {
        let notification = bounce(BOUNCE_JSON);
        for (level, name) in [(Level::ERROR, "ERROR"), (Level::WARN, "WARN"), (Level::DEBUG, "DEBUG")] {
            let sink = LogSink::new("ops", level);
            let events = events(&sink, Item::Notification { notification: &notification, routes: &[] });
            assert_eq!(events[0]["level"], name);
        }
    }

    #[test]
    fn a_dead_letter_logs_its_reason_and_body_length_not_its_body() {
        let sink = LogSink::new("dlq", Level::WARN);
        let events = events(&sink, Item::DeadLetter { body: "secret body", reason: "not JSON" });
        let [event] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(event["level"], "WARN");
        assert_eq!(event["fields"]["reason"], "not JSON");
        assert_eq!(event["fields"]["body_len"], 11);
        assert!(!event.to_string().contains("secret body"));
    }
}
