//! The `s3` archive sink end to end: batches become gzipped JSON Lines
//! objects under `prefix/YYYY/MM/DD/HH/`, by count, by window and at
//! shutdown, and a message leaves its queue only once its object is stored.

use std::io::Read;
use std::time::Duration;

use aws_sdk_s3::Client;
use serde_json::Value;

use super::harness::{Aws, Daemon, config_head, eventually, file_sink, source};
use crate::{read, samples};

/// An S3 client for the emulator, addressing buckets by path as the daemon does.
async fn s3_client(endpoint: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
}

/// A bucket name for `what` (lowercase, as S3 wants it).
fn bucket_name(aws: &Aws, what: &str) -> String {
    aws.name(what).to_lowercase()
}

async fn create_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.expect("S3 CreateBucket");
}

/// One stored object: its key, and its records gunzipped.
#[derive(Debug)]
struct Object {
    key: String,
    records: Vec<Value>,
}

/// Every object in the bucket, each checked to be gzipped JSON Lines.
async fn objects(s3: &Client, bucket: &str) -> Vec<Object> {
    let listed = s3.list_objects_v2().bucket(bucket).send().await.expect("S3 ListObjectsV2");
    let mut objects = Vec::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let got = s3.get_object().bucket(bucket).key(key).send().await.expect("S3 GetObject");
        // fauxqs keeps the content type but not the content encoding.
        assert_eq!(got.content_type(), Some("application/x-ndjson"), "{key}");
        let bytes = got.body.collect().await.expect("the object's body").into_bytes();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{key} is not gzipped text: {e}"));
        let records = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{key}: {e}: {line}")))
            .collect();
        objects.push(Object { key: key.to_owned(), records });
    }
    objects
}

/// Waits until the bucket's objects hold `count` records in all, and returns them.
async fn wait_for_records(s3: &Client, bucket: &str, count: usize, timeout: Duration) -> Vec<Object> {
    eventually(&format!("{count} records in {bucket}"), timeout, async || {
        let found = objects(s3, bucket).await;
        let records: usize = found.iter().map(|o| o.records.len()).sum();
        if records == count { Ok(found) } else { Err(format!("{found:?}")) }
    })
    .await
}

/// The `message_id` of every record, sorted.
fn message_ids(objects: &[Object]) -> Vec<String> {
    let mut ids: Vec<String> = objects
        .iter()
        .flat_map(|o| &o.records)
        .map(|r| r["message_id"].as_str().unwrap_or_else(|| panic!("no message_id: {r}")).to_owned())
        .collect();
    ids.sort();
    ids
}

/// `count` bounces, alike but for their SES message ids (`{tag}-0`, ...): the
/// bodies, and the ids sorted.
fn bounces(tag: &str, count: usize) -> (Vec<String>, Vec<String>) {
    let sample = read(&samples().join("bodies/01-bounce-permanent-general-bare.json"));
    let ses: Value = serde_json::from_str(&sample).expect("the sample is JSON");
    let mut ids: Vec<String> = (0..count).map(|i| format!("{tag}-{i}")).collect();
    let bodies = ids
        .iter()
        .map(|id| {
            let mut ses = ses.clone();
            ses["mail"]["messageId"] = Value::from(id.as_str());
            ses.to_string()
        })
        .collect();
    ids.sort();
    (bodies, ids)
}

/// The UTC hour as the archive's keys spell it.
fn utc_hour() -> String {
    jiff::Timestamp::now().strftime("%Y/%m/%d/%H").to_string()
}

/// Asserts `key` is `prefix/YYYY/MM/DD/HH/<uuid v4>.jsonl.gz` (no leading
/// slash without a prefix), for one of the hours `hours`.
fn assert_key_shape(key: &str, prefix: &str, hours: &[String]) {
    let rest = if prefix.is_empty() {
        key
    } else {
        key.strip_prefix(prefix)
            .and_then(|k| k.strip_prefix('/'))
            .unwrap_or_else(|| panic!("{key}: not under {prefix}/"))
    };
    let (hour, file) = rest.rsplit_once('/').unwrap_or_else(|| panic!("{key}: no hour folder"));
    assert!(hours.iter().any(|h| h == hour), "{key}: hour {hour} is none of {hours:?}");
    let id = file.strip_suffix(".jsonl.gz").unwrap_or_else(|| panic!("{key}: not .jsonl.gz"));
    let id = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(id.get_version_num(), 4, "{key}");
}

/// The daemon's config: one source, an `s3` sink `archive` with `options`, a route taking everything.
fn config(aws: &Aws, queue: &str, bucket: &str, options: &str) -> String {
    format!(
        r#"{}{}
[sinks.archive]
type = "s3"
bucket = "{bucket}"
{options}

[[routes]]
name = "all"
sinks = ["archive"]
"#,
        config_head(&aws.endpoint),
        source("in", queue, ""),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn full_batches_become_gzipped_objects_under_the_utc_hour() {
    let Some(aws) = Aws::connect("s3_batches").await else { return };
    let s3 = s3_client(&aws.endpoint).await;
    let (queue, bucket) = (aws.create_queue("in").await, bucket_name(&aws, "archive"));
    create_bucket(&s3, &bucket).await;
    let (bodies, ids) = bounces("s3-batches", 12);
    let before = utc_hour();

    let mut daemon = Daemon::new();
    // A window far longer than the test: only full batches of 4 can go out.
    daemon.start(&config(&aws, &queue, &bucket, "prefix = \"ses/archive\"\nbatch_max = 4\nbatch_window_secs = 300"));
    aws.send_all(&queue, &bodies).await;

    let stored = wait_for_records(&s3, &bucket, 12, Duration::from_secs(20)).await;
    aws.wait_for_total(&queue, 0, Duration::from_secs(10)).await;
    let hours = [before, utc_hour()];
    assert_eq!(stored.len(), 3, "{stored:?}");
    for object in &stored {
        assert_key_shape(&object.key, "ses/archive", &hours);
        assert_eq!(object.records.len(), 4, "{}: {:?}", object.key, object.records);
        assert!(object.records.iter().all(|r| r["routes"] == serde_json::json!(["all"]) && r["queue"] == "in"));
    }
    assert_eq!(message_ids(&stored), ids, "each notification once");

    daemon.stop().await;
    assert_eq!(daemon.last_stats()["delivered"].as_u64(), Some(12));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_short_of_batch_max_goes_out_after_the_window() {
    let Some(aws) = Aws::connect("s3_window").await else { return };
    let s3 = s3_client(&aws.endpoint).await;
    let (queue, bucket) = (aws.create_queue("in").await, bucket_name(&aws, "archive"));
    create_bucket(&s3, &bucket).await;
    let (bodies, ids) = bounces("s3-window", 3);
    // Queued before the daemon starts, so its first receive takes all three.
    aws.send_all(&queue, &bodies).await;
    let before = utc_hour();

    let mut daemon = Daemon::new();
    daemon.start(&config(&aws, &queue, &bucket, "prefix = \"\"\nbatch_window_secs = 1"));

    let stored = wait_for_records(&s3, &bucket, 3, Duration::from_secs(15)).await;
    assert_eq!(stored.len(), 1, "one object for the three: {stored:?}");
    assert_key_shape(&stored[0].key, "", &[before, utc_hour()]);
    assert_eq!(message_ids(&stored), ids);
    aws.wait_for_total(&queue, 0, Duration::from_secs(10)).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_shutdown_a_pending_batch_is_stored_before_its_messages_are_deleted() {
    let Some(aws) = Aws::connect("s3_shutdown").await else { return };
    let s3 = s3_client(&aws.endpoint).await;
    let (queue, bucket) = (aws.create_queue("in").await, bucket_name(&aws, "archive"));
    create_bucket(&s3, &bucket).await;
    let (bodies, ids) = bounces("s3-shutdown", 3);

    let mut daemon = Daemon::new();
    daemon.start(&config(&aws, &queue, &bucket, "batch_window_secs = 300"));
    aws.send_all(&queue, &bodies).await;
    eventually("the three messages received and held", Duration::from_secs(15), async || {
        let depth = aws.depth(&queue).await;
        if (depth.visible, depth.in_flight) == (0, 3) { Ok(()) } else { Err(format!("{depth:?}")) }
    })
    .await;
    // Well past the first receive; the window still has minutes to run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(objects(&s3, &bucket).await.len(), 0, "nothing stored before the window ends");
    assert_eq!(aws.depth(&queue).await.total(), 3, "nothing deleted before its object is stored");

    // `stop` asserts a clean exit within the grace period, far shorter than the window.
    daemon.stop().await;
    let stored = objects(&s3, &bucket).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_key_shape(&stored[0].key, "sesroute", &[utc_hour(), hour_before()]);
    assert_eq!(message_ids(&stored), ids);
    assert_eq!(aws.depth(&queue).await.total(), 0);
    assert_eq!(daemon.last_stats()["delivered"].as_u64(), Some(3));
}

/// The UTC hour an hour ago, for a test that crossed an hour.
fn hour_before() -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).strftime("%Y/%m/%d/%H").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_bucket_missing_messages_stay_until_it_exists() {
    let Some(aws) = Aws::connect("s3_missing").await else { return };
    let s3 = s3_client(&aws.endpoint).await;
    let (queue, bucket) = (aws.create_queue("in").await, bucket_name(&aws, "archive"));
    let (bodies, ids) = bounces("s3-missing", 2);
    aws.send_all(&queue, &bodies).await;

    let mut daemon = Daemon::new();
    daemon.start(&config(&aws, &queue, &bucket, "batch_window_secs = 1"));
    eventually("a failed upload", Duration::from_secs(15), async || {
        let failed =
            daemon.log().iter().filter(|l| l["message"] == "delivery failed" && l["sink"] == "archive").count();
        if failed == 2 { Ok(()) } else { Err(format!("{failed} failed deliveries logged")) }
    })
    .await;
    // The first retry comes 10 s after the failure: meanwhile both wait, not deleted.
    for _ in 0..3 {
        assert_eq!(aws.depth(&queue).await.total(), 2, "while the bucket is missing");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    create_bucket(&s3, &bucket).await;
    let stored = wait_for_records(&s3, &bucket, 2, Duration::from_secs(40)).await;
    assert_eq!(message_ids(&stored), ids);
    aws.wait_for_total(&queue, 0, Duration::from_secs(10)).await;
    daemon.stop().await;
    let stats = daemon.last_stats();
    assert_eq!((stats["retried"].as_u64(), stats["delivered"].as_u64()), (Some(2), Some(2)), "{stats}");
}

/// A message routed to the archive and to a file: the file has it at once,
/// and while it waits for its object it no longer holds an in-flight slot, so
/// a source allowed two messages in flight receives every one of them.
#[tokio::test(flavor = "multi_thread")]
async fn messages_waiting_for_their_object_free_their_in_flight_slot_and_other_sinks_are_not_held_up() {
    let Some(aws) = Aws::connect("s3_slots").await else { return };
    let s3 = s3_client(&aws.endpoint).await;
    let (queue, bucket) = (aws.create_queue("in").await, bucket_name(&aws, "archive"));
    create_bucket(&s3, &bucket).await;
    let (bodies, ids) = bounces("s3-slots", 10);
    aws.send_all(&queue, &bodies).await;

    let mut daemon = Daemon::new();
    let file = daemon.path("copy.jsonl");
    daemon.start(&format!(
        "{}{}\n[sinks.archive]\ntype = \"s3\"\nbucket = \"{bucket}\"\nbatch_window_secs = 300\n{}\n[[routes]]\nname = \"all\"\nsinks = [\"archive\", \"copy\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, "receivers = 1\nmax_in_flight = 2"),
        file_sink("copy", &file),
    ));
    eventually("every message in the file and held for the archive", Duration::from_secs(20), async || {
        let (written, depth) = (super::harness::message_ids(&file), aws.depth(&queue).await);
        if written.len() == 10 && depth.in_flight == 10 {
            Ok(())
        } else {
            Err(format!("{} lines, {depth:?}", written.len()))
        }
    })
    .await;
    assert_eq!(objects(&s3, &bucket).await.len(), 0, "the window has minutes to run");

    daemon.stop().await;
    assert_eq!(message_ids(&objects(&s3, &bucket).await), ids, "stored at shutdown");
    assert_eq!(super::harness::message_ids(&file), ids, "the file has each once");
    assert_eq!(aws.depth(&queue).await.total(), 0);
}

/// The archive as the dead-letter sink: an unreadable body waits for its
/// object without holding an in-flight slot, so the source goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_waiting_for_the_archive_does_not_stop_the_source() {
    let Some(aws) = Aws::connect("s3_dead_letter").await else { return };
    let s3 = s3_client(&aws.endpoint).await;
    let (queue, bucket) = (aws.create_queue("in").await, bucket_name(&aws, "archive"));
    create_bucket(&s3, &bucket).await;
    let (bodies, ids) = bounces("s3-dead", 3);
    aws.send(&queue, "{\"not\": \"ses\"}").await;
    aws.send_all(&queue, &bodies).await;

    let mut daemon = Daemon::new();
    let file = daemon.path("copy.jsonl");
    daemon.start(&format!(
        "dead_letter = \"archive\"\n{}{}\n[sinks.archive]\ntype = \"s3\"\nbucket = \"{bucket}\"\nbatch_window_secs = 300\n{}\n[[routes]]\nname = \"all\"\nsinks = [\"copy\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, "receivers = 1\nmax_in_flight = 1"),
        file_sink("copy", &file),
    ));
    eventually("the bounces in the file while the dead letter waits", Duration::from_secs(20), async || {
        let written = super::harness::message_ids(&file);
        if written == ids { Ok(()) } else { Err(format!("{written:?}")) }
    })
    .await;
    // The last bounce's delete follows its line in the file.
    eventually("only the dead letter left, waiting for its object", Duration::from_secs(10), async || {
        let depth = aws.depth(&queue).await;
        if depth.total() == 1 { Ok(()) } else { Err(format!("{depth:?}")) }
    })
    .await;

    daemon.stop().await;
    let stored = objects(&s3, &bucket).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].records.len(), 1, "{stored:?}");
    assert_eq!(stored[0].records[0]["dead_letter"], true, "{stored:?}");
    assert_eq!(stored[0].records[0]["body"], "{\"not\": \"ses\"}", "{stored:?}");
    assert_eq!(aws.depth(&queue).await.total(), 0);
    assert_eq!(daemon.last_stats()["dead_lettered"].as_u64(), Some(1));
}
