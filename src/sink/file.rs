//! The `file` sink: appends one JSON line per delivered item to a file.
//!
//! Each line is written whole with one `write_all` under a lock, so lines
//! never interleave, and reaches the OS before `deliver` returns. With
//! `fsync`, `deliver` also waits for `sync_data`; concurrent deliveries share
//! one call.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::fs::OpenOptions;

use super::{Deliver, Item, Origin, SinkError};
use crate::notification::Kind;
use crate::notification::bounce::BounceClass;

#[derive(Debug)]
pub struct FileSink {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    fsync: bool,
    file: File,
    /// Lines written so far; held across each write so lines never interleave.
    written: Mutex<u64>,
    /// Lines known to be on disk; held across `sync_data`, so a writer that
    /// waited for it often finds its line already synced by someone else.
    synced: Mutex<u64>,
}

/// A delivered notification, one line of the file.
#[derive(Serialize)]
struct NotificationLine<'a> {
    routes: &'a [&'a str],
    kind: Kind,
    source: &'a str,
    message_id: &'a str,
    /// sesroute's [bounce class](crate::notification::bounce); SES's own
    /// fields stay as they are in `notification`.
    #[serde(skip_serializing_if = "Option::is_none")]
    bounce_class: Option<BounceClass>,
    queue: &'a str,
    sqs_message_id: &'a str,
    notification: &'a RawValue,
}

/// A dead letter, one line of the file.
#[derive(Serialize)]
struct DeadLetterLine<'a> {
    dead_letter: bool,
    reason: &'a str,
    queue: &'a str,
    sqs_message_id: &'a str,
    body: &'a str,
}

impl FileSink {
    /// Opens `path` for appending, creating the file but not its directory.
    pub async fn open(path: &Path, fsync: bool) -> Result<FileSink, String> {
        let opened = OpenOptions::new().append(true).create(true).open(path).await;
        let file = opened.map_err(|e| open_error(path, &e))?.into_std().await;
        let shared = Shared { path: path.to_owned(), fsync, file, written: Mutex::new(0), synced: Mutex::new(0) };
        Ok(FileSink { shared: Arc::new(shared) })
    }
}

impl Deliver for FileSink {
    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        let line = line(origin, item)?;
        // A write without fsync only reaches the page cache: brief enough to do
        // here, where a hand-off to a blocking thread would cost more than it.
        // fsync can take long, so it goes to the blocking pool.
        let appended = if self.shared.fsync {
            let shared = Arc::clone(&self.shared);
            tokio::task::spawn_blocking(move || shared.append(&line)).await
        } else {
            Ok(self.shared.append(&line))
        };
        match appended {
            Ok(Ok(())) => Ok(()),
            // A full disk or a failing device can recover: keep the message for later.
            Ok(Err(e)) => Err(SinkError::Retryable(format!("cannot write to {}: {e}", self.shared.path.display()))),
            Err(e) => Err(SinkError::Retryable(format!("write to {} did not finish: {e}", self.shared.path.display()))),
        }
    }
}

fn open_error(path: &Path, error: &io::Error) -> String {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    match parent {
        Some(dir) if error.kind() == io::ErrorKind::NotFound && !dir.is_dir() => {
            format!("cannot open {}: directory {} does not exist", path.display(), dir.display())
        }
        _ => format!("cannot open {}: {error}", path.display()),
    }
}

/// The item as one JSON line, newline included: the record the file sink,
/// the S3 archive and the JSON webhook all write.
pub(super) fn line(origin: Origin<'_>, item: Item<'_>) -> Result<Vec<u8>, SinkError> {
    let mut line = match item {
        Item::Notification { notification: n, routes } => {
            // Raw control characters cannot occur inside JSON strings, so a line
            // break in valid JSON is whitespace between tokens: dropping it keeps
            // a pretty-printed notification on one line and its meaning intact.
            let ses_json: std::borrow::Cow<'_, str> = if n.ses_json.contains(['\n', '\r']) {
                n.ses_json.replace(['\n', '\r'], "").into()
            } else {
                n.ses_json.as_ref().into()
            };
            let embedded: &RawValue = serde_json::from_str(&ses_json)
                .map_err(|e| SinkError::Permanent(format!("the SES JSON is not valid JSON: {e}")))?;
            serde_json::to_vec(&NotificationLine {
                routes,
                kind: n.kind,
                source: &n.source,
                message_id: &n.message_id,
                bounce_class: n.bounce_class(),
                queue: origin.queue,
                sqs_message_id: origin.sqs_message_id,
                notification: embedded,
            })
        }
        Item::DeadLetter { body, reason } => serde_json::to_vec(&DeadLetterLine {
            dead_letter: true,
            reason,
            queue: origin.queue,
            sqs_message_id: origin.sqs_message_id,
            body,
        }),
    }
    .map_err(|e| SinkError::Permanent(format!("cannot encode the line: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

/// A poisoned lock only means another writer panicked; the counters stay usable.
fn lock(mutex: &Mutex<u64>) -> MutexGuard<'_, u64> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn append(&self, line: &[u8]) -> io::Result<()> {
        let mine = {
            let mut written = lock(&self.written);
            let length = self.file.metadata()?.len();
            if let Err(e) = (&self.file).write_all(line) {
                // End a half-written line so the retry starts on a line of its
                // own. Never cut the file back: what is past `length` may be
                // another writer's line, already acknowledged.
                if self.file.metadata().is_ok_and(|now| now.len() > length) {
                    let _ = (&self.file).write_all(b"\n");
                }
                return Err(e);
            }
            *written += 1;
            *written
        };
        if self.fsync {
            let mut synced = lock(&self.synced);
            if *synced < mine {
                // Every line counted before the call is covered by it.
                let covered = *lock(&self.written);
                self.file.sync_data()?;
                *synced = covered;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::testing::{BOUNCE_JSON, bounce};

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[tokio::test]
    async fn writes_one_exact_json_line_per_item_with_the_notification_embedded_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.jsonl");
        let sink = FileSink::open(&path, false).await.unwrap();
        assert_eq!(read(&path), "", "the file is created on open");

        let notification = bounce(BOUNCE_JSON);
        sink.deliver(ORIGIN, Item::Notification { notification: &notification, routes: &["dev", "all"] })
            .await
            .unwrap();
        let dead = Origin { queue: "events", sqs_message_id: "sqs-2" };
        sink.deliver(dead, Item::DeadLetter { body: "not \"json\"\n", reason: "not JSON: expected value" })
            .await
            .unwrap();

        let expected = format!(
            "{{\"routes\":[\"dev\",\"all\"],\"kind\":\"bounce\",\"source\":\"dev@dev.example.com\",\
             \"message_id\":\"0100018f-bounce\",\"bounce_class\":\"hard\",\"queue\":\"bounces\",\"sqs_message_id\":\"sqs-1\",\
             \"notification\":{BOUNCE_JSON}}}\n\
             {{\"dead_letter\":true,\"reason\":\"not JSON: expected value\",\"queue\":\"events\",\
             \"sqs_message_id\":\"sqs-2\",\"body\":\"not \\\"json\\\"\\n\"}}\n"
        );
        assert_eq!(read(&path), expected);
    }

    #[tokio::test]
    async fn appends_to_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.jsonl");
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let sink = FileSink::open(&path, false).await.unwrap();
        sink.deliver(ORIGIN, Item::DeadLetter { body: "x", reason: "r" }).await.unwrap();
        let text = read(&path);
        assert!(text.starts_with("{\"earlier\":true}\n{\"dead_letter\":true"), "{text}");
    }

    #[tokio::test]
    async fn a_pretty_printed_notification_stays_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.jsonl");
        let sink = FileSink::open(&path, false).await.unwrap();
        let pretty = "{\r\n  \"notificationType\": \"Bounce\",\n  \"mail\": {\"messageId\": \"m\"}\n}";
        let mut notification = bounce(BOUNCE_JSON);
        notification.ses_json = Cow::Borrowed(pretty);
        sink.deliver(ORIGIN, Item::Notification { notification: &notification, routes: &[] }).await.unwrap();
        let text = read(&path);
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["notification"]["mail"]["messageId"], "m");
        assert_eq!(line["routes"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn invalid_ses_json_is_refused_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::open(&dir.path().join("a.jsonl"), false).await.unwrap();
        let mut notification = bounce(BOUNCE_JSON);
        notification.ses_json = Cow::Borrowed("{not json");
        let error = sink.deliver(ORIGIN, Item::Notification { notification: &notification, routes: &[] }).await;
        assert!(!error.unwrap_err().is_retryable());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn with_fsync_concurrent_deliveries_each_write_one_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("synced.jsonl");
        let sink = Arc::new(FileSink::open(&path, true).await.unwrap());
        let big = "b".repeat(100_000);
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let sink = Arc::clone(&sink);
                let big = big.clone();
                tokio::spawn(async move {
                    let id = format!("sqs-{i}");
                    let origin = Origin { queue: "bounces", sqs_message_id: &id };
                    sink.deliver(origin, Item::DeadLetter { body: &big, reason: "big" }).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let text = read(&path);
        let mut ids: Vec<String> = text
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(line["body"].as_str().map(str::len), Some(100_000));
                line["sqs_message_id"].as_str().unwrap().to_owned()
            })
            .collect();
        ids.sort();
        let mut expected: Vec<String> = (0..50).map(|i| format!("sqs-{i}")).collect();
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(*lock(&sink.shared.synced), 50, "every line is covered by a sync_data");
    }

    #[tokio::test]
    async fn opening_in_a_missing_directory_fails_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir");
        let error = FileSink::open(&missing.join("a.jsonl"), false).await.unwrap_err();
        assert!(error.contains(&format!("directory {} does not exist", missing.display())), "{error}");
        assert!(!missing.exists(), "the directory is not created");
    }

    #[tokio::test]
    async fn opening_a_directory_fails_with_the_os_reason() {
        let dir = tempfile::tempdir().unwrap();
        let error = FileSink::open(dir.path(), false).await.unwrap_err();
        assert!(error.starts_with(&format!("cannot open {}: ", dir.path().display())), "{error}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_failed_write_is_retryable() {
        // /dev/full accepts the open and fails every write with ENOSPC, like a full disk.
        let sink = FileSink::open(Path::new("/dev/full"), false).await.unwrap();
        let error = sink.deliver(ORIGIN, Item::DeadLetter { body: "x", reason: "r" }).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("cannot write to /dev/full"), "{error}");
    }
}
