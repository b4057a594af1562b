//! `max_per_minute`: what is over a sink's limit waits in SQS, never dropped.

use std::time::{Duration, Instant};

use super::harness::{Aws, Daemon, config_head, file_sink, message_ids, source};
use crate::{read, samples};

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_sink_gets_every_notification_spaced_out() {
    let Some(aws) = Aws::connect("limits").await else { return };
    let queue = aws.create_queue("in").await;
    let bodies: Vec<String> = (0..5)
        .map(|i| {
            read(&samples().join("bodies/01-bounce-permanent-general-bare.json")).replacen(
                "\"messageId\":\"",
                &format!("\"messageId\":\"limited-{i}-"),
                1,
            )
        })
        .collect();
    assert!(bodies[0].contains("limited-0-"), "the sample's messageId was made unique");
    aws.send_all(&queue, &bodies).await;

    let mut daemon = Daemon::new();
    let out = daemon.path("out.jsonl");
    let started = Instant::now();
    daemon.start(&format!(
        "{}{}{}max_per_minute = 240\n\n[[routes]]\nname = \"all\"\nsinks = [\"out\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        file_sink("out", &out),
    ));
    aws.wait_for_total(&queue, 0, Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    daemon.stop().await;

    assert_eq!(message_ids(&out).len(), 5, "nothing over the limit is dropped");
    // 240 a minute is one every 250 ms: five deliveries span at least a second.
    assert!(elapsed >= Duration::from_secs(1), "five deliveries took only {elapsed:?}");
}
