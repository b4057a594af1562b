//! Stopping the daemon in the middle of a queue, gracefully (SIGTERM) or not
//! (SIGKILL), then starting it again: every message ends up in the sink.
//!
//! Each message goes to a file sink (what the test counts) and to an `sqs`
//! sink made slow by a proxy, so that at the stop some messages are in the
//! middle of their delivery: SIGTERM must let them finish.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::harness::{
    Aws, Daemon, GRACE_SECS, config_head, eventually, file_sink, lines, message_ids, ses_message_id, slow_proxy, source,
};
use crate::{read, samples};

const MESSAGES: usize = 300;
/// How long each forward (an SQS `SendMessageBatch`) takes.
const SLOW_SINK: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Term,
    Kill,
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_busy_exits_cleanly_and_a_restart_finishes_the_queue() {
    stop_and_restart("sigterm", Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_drain_loses_nothing_once_restarted() {
    stop_and_restart("sigkill", Stop::Kill).await;
}

/// Copies of the samples' bare delivery, each with its own `mail.messageId`.
fn deliveries(test: &str) -> (BTreeSet<String>, Vec<String>) {
    let sample = read(&samples().join("bodies/05-delivery-bare.json"));
    let mut body: Value = serde_json::from_str(&sample).expect("the sample is JSON");
    let ids: Vec<String> = (0..MESSAGES).map(|i| format!("{test}-{i:03}")).collect();
    let bodies = ids
        .iter()
        .map(|id| {
            body["mail"]["messageId"] = id.as_str().into();
            body.to_string()
        })
        .collect();
    (ids.into_iter().collect(), bodies)
}

async fn stop_and_restart(test: &str, stop: Stop) {
    let Some(aws) = Aws::connect(test).await else { return };
    let queue = aws.create_queue("in").await;
    let forward = aws.create_queue("forward").await;
    let (ids, bodies) = deliveries(test);
    aws.send_all(&queue, &bodies).await;
    aws.wait_for_total(&queue, MESSAGES, Duration::from_secs(10)).await;

    let endpoint = slow_proxy(&aws.endpoint, "AmazonSQS.SendMessageBatch", SLOW_SINK).await;
    let mut daemon = Daemon::new();
    let out = daemon.path("out.jsonl");
    daemon.start(&format!(
        r#"{}{}{}
[sinks.forward]
type = "sqs"
queue_url = "{forward}"

[[routes]]
name = "all"
sinks = ["out", "forward"]
"#,
        config_head(&endpoint),
        source("in", &queue, "receivers = 2\nmax_in_flight = 10"),
        file_sink("out", &out),
    ));
    eventually("a third of the messages in the sink file", Duration::from_secs(30), async || {
        let written = lines(&out).len();
        if written >= MESSAGES / 3 { Ok(()) } else { Err(format!("{written} lines")) }
    })
    .await;

    match stop {
        Stop::Term => {
            daemon.stop().await;
            let log = daemon.log();
            let shutdown = log.iter().find(|line| line["message"] == "shutting down: no more receives");
            let in_flight = shutdown.and_then(|line| line["in_flight"].as_u64());
            assert!(in_flight > Some(0), "SIGTERM found nothing in flight: {shutdown:?}");
            let stats = daemon.last_stats();
            let delivered = stats["delivered"].as_u64().expect("a delivered count");
            assert!(delivered < MESSAGES as u64, "stopped after the queue was done, not while busy: {stats}");
        }
        Stop::Kill => {
            daemon.signal("KILL");
            daemon.wait_exit(Duration::from_secs(5)).await;
        }
    }
    let at_stop = lines(&out).len();

    daemon.restart();
    eventually("every message in the sink file and none in the queue", Duration::from_secs(60), async || {
        let depth = aws.depth(&queue).await;
        let written: BTreeSet<String> = message_ids(&out).into_iter().collect();
        let missing = ids.difference(&written).count();
        if depth.total() == 0 && missing == 0 { Ok(()) } else { Err(format!("{missing} missing, queue {depth:?}")) }
    })
    .await;
    daemon.stop().await;

    let written = message_ids(&out);
    assert!(written.iter().all(|id| ids.contains(id)), "only the messages sent are written");
    let forwarded: BTreeSet<String> = aws
        .receive_all(&forward, MESSAGES)
        .await
        .iter()
        .map(|m| ses_message_id(m.body().unwrap_or_default()))
        .collect();
    let lost: Vec<&String> = ids.difference(&forwarded).collect();
    assert!(lost.is_empty() && forwarded.is_subset(&ids), "not forwarded by the slow sink: {lost:?}");
    let duplicates = written.len() - MESSAGES;
    eprintln!("{test}: {at_stop} lines at the stop, {} in the end: {duplicates} duplicates", written.len());
    if stop == Stop::Term {
        // The messages in flight at SIGTERM finish within the grace period
        // and are deleted; the others were never written: none is written twice.
        assert_eq!(duplicates, 0, "duplicates after a graceful stop (grace {GRACE_SECS} s)");
    }
}
