//! The daemon's loop (`runtime::run`) driven in process: the inputs
//! `sesroute run` gives it, built here, and the stats it returns asserted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sesroute::runtime::{Routing, run};
use sesroute::server::Health;
use sesroute::sink::Sinks;
use tokio_util::sync::CancellationToken;

use super::harness::{Aws, config_head, eventually, file_sink, message_ids, ses_message_id, source};
use crate::{read, samples};

#[tokio::test(flavor = "multi_thread")]
async fn run_in_process_delivers_dead_letters_and_returns_its_stats() {
    let Some(aws) = Aws::connect("in_process").await else { return };
    let queue = aws.create_queue("in").await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (team, dead) = (dir.path().join("team.jsonl"), dir.path().join("dead.jsonl"));
    // `dead_letter` is a top-level key: it comes before the first table.
    let text = format!(
        "dead_letter = \"dead\"\n{}{}{}{}\n[[routes]]\nname = \"all\"\nsinks = [\"team\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        file_sink("team", &team),
        file_sink("dead", &dead),
    );
    let config = Arc::new(sesroute::config::from_toml(&text).expect("a valid config"));

    let bodies: Vec<String> = ["bodies/01-bounce-permanent-general-bare.json", "bodies/03-complaint-abuse-bare.json"]
        .iter()
        .map(|name| read(&samples().join(name)))
        .collect();
    for body in &bodies {
        aws.send(&queue, body).await;
    }
    aws.send(&queue, "not json at all").await;

    let (sinks, unopened) = Sinks::open(&config, &aws.sdk).await;
    assert!(unopened.is_empty(), "every sink opens: {unopened:?}");
    let stats =
        drain(&aws, &queue, Routing { config, sinks, certs: sesroute::signature::Certificates::default() }).await;

    let count = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    assert_eq!(count(&stats.received), 3);
    assert_eq!(count(&stats.delivered), 2);
    assert_eq!(count(&stats.errors), 1);
    assert_eq!(count(&stats.dead_lettered), 1);
    assert_eq!(count(&stats.retried), 0);
    let mut expected: Vec<String> = bodies.iter().map(|b| ses_message_id(b)).collect();
    expected.sort();
    assert_eq!(message_ids(&team), expected, "the team has both notifications, once each");
    let dead_lines = std::fs::read_to_string(&dead).expect("the dead-letter file");
    assert_eq!(dead_lines.lines().count(), 1);
    assert!(dead_lines.contains("not json at all"), "the dead letter keeps the body");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_require_source_routes_only_verified_envelopes_and_dead_letters_the_rest() {
    use crate::signature::{TEST_CERT_URL, signed, test_pem};
    use sesroute::signature::{Certificate, Certificates};

    let Some(aws) = Aws::connect("in_process_signed").await else { return };
    let queue = aws.create_queue("signed").await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (team, dead) = (dir.path().join("team.jsonl"), dir.path().join("dead.jsonl"));
    let text = format!(
        "dead_letter = \"dead\"\n{}{}{}{}\n[[routes]]\nname = \"all\"\nsinks = [\"team\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, "signature = \"require\"\ntopics = [\"arn:aws:sns:eu-west-1:123456789012:ses-*\"]"),
        file_sink("team", &team),
        file_sink("dead", &dead),
    );
    let config = Arc::new(sesroute::config::from_toml(&text).expect("a valid config"));
    let ses = read(&samples().join("bodies/01-bounce-permanent-general-bare.json"));
    let genuine = signed("Notification", &ses, Some("Amazon SES Email Event Notification"));
    let forged = genuine.replace("\"Subject\":\"Amazon SES", "\"Subject\":\"Forged SES");
    let off_topic = signed("Notification", &ses, None).replace("ses-bounces", "marketing");
    for body in [&genuine, &forged, &off_topic, &ses] {
        aws.send(&queue, body).await;
    }

    let cert = Arc::new(Certificate::from_pem(test_pem().as_bytes()).expect("the test certificate"));
    let certs = Certificates::new([(TEST_CERT_URL.to_owned(), Ok(cert))].into_iter().collect(), None);
    let (sinks, unopened) = Sinks::open(&config, &aws.sdk).await;
    assert!(unopened.is_empty(), "every sink opens: {unopened:?}");
    let stats = drain(&aws, &queue, Routing { config, sinks, certs }).await;

    let count = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    assert_eq!(count(&stats.received), 4);
    assert_eq!(count(&stats.delivered), 1, "only the genuine envelope is routed");
    assert_eq!(count(&stats.refused), 3);
    assert_eq!(count(&stats.dead_lettered), 3);
    assert_eq!(message_ids(&team), vec![ses_message_id(&ses)]);
    let dead_lines = std::fs::read_to_string(&dead).expect("the dead-letter file");
    assert_eq!(dead_lines.lines().count(), 3);
    for reason in ["does not verify", "not one of the source's topics", "not an SNS envelope"] {
        assert!(dead_lines.contains(reason), "a dead letter says {reason:?}: {dead_lines}");
    }
}

/// Runs the daemon in process until `queue` is empty, stops it and returns its stats.
async fn drain(aws: &Aws, queue: &str, routing: Routing) -> Arc<sesroute::runtime::Stats> {
    let (_reload, reloads) = tokio::sync::mpsc::channel(1);
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(routing, aws.sqs.clone(), Arc::new(Health::default()), reloads, shutdown.clone()));
    eventually("every message to be deleted", Duration::from_secs(30), async || {
        let depth = aws.depth(queue).await;
        if depth.total() == 0 { Ok(()) } else { Err(format!("{depth:?}")) }
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), daemon)
        .await
        .expect("run returns within the grace period")
        .expect("run does not panic")
}
