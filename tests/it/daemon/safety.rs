//! The daemon's safety promises end to end: a sink that cannot open stops
//! no other sink and gets its messages once it can; a queue whose own
//! visibility timeout is 0 never redelivers a message its sinks still work on.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;

use super::harness::{Aws, Daemon, config_head, eventually, file_sink, message_ids, ses_message_id, source};
use crate::{read, samples};

const BOUNCE: &str = "bodies/01-bounce-permanent-general-bare.json";

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_that_cannot_open_stops_no_other_and_gets_its_messages_once_it_opens() {
    let Some(aws) = Aws::connect("unopened_sink").await else { return };
    let queue = aws.create_queue("in").await;
    let body = read(&samples().join(BOUNCE));
    let id = ses_message_id(&body);
    let mut daemon = Daemon::new();
    let (good, later_dir) = (daemon.path("good.jsonl"), daemon.path("not-yet"));
    let broken = later_dir.join("broken.jsonl");
    daemon.start(&format!(
        "{}{}{}{}\n[[routes]]\nname = \"all\"\nsinks = [\"good\", \"broken\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        file_sink("good", &good),
        file_sink("broken", &broken),
    ));
    aws.send(&queue, &body).await;
    eventually("the open sink to have it", Duration::from_secs(15), async || {
        if message_ids(&good).is_empty() { Err("no line".to_owned()) } else { Ok(()) }
    })
    .await;
    assert_eq!(aws.depth(&queue).await.total(), 1, "kept in SQS for the sink that cannot open");
    let named = daemon.log().iter().any(|line| {
        line["message"].as_str().is_some_and(|m| m.starts_with("cannot open the sink"))
            && line["sink"] == "broken"
            && line["error"].as_str().is_some_and(|e| e.contains("does not exist"))
    });
    assert!(named, "the log names the sink and why it cannot open");

    std::fs::create_dir(&later_dir).expect("the directory is made");
    aws.wait_for_total(&queue, 0, Duration::from_secs(60)).await;
    daemon.stop().await;
    assert_eq!(message_ids(&broken), [id.as_str()], "opened on a later try, it gets the message");
    assert_eq!(message_ids(&good), [id.as_str()], "the sink that had it is not sent it again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_with_a_zero_visibility_timeout_does_not_redeliver_what_is_being_worked_on() {
    let Some(aws) = Aws::connect("zero_visibility").await else { return };
    let name = aws.name("in");
    let created = aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .expect("SQS CreateQueue");
    let queue = created.queue_url.expect("a queue URL");
    let body = read(&samples().join(BOUNCE));
    let mut daemon = Daemon::new();
    let copy = daemon.path("copy.jsonl");
    // The forward sink's queue does not exist: every try fails and asks again.
    let missing = aws.queue_url(&aws.name("missing"));
    let source = source("in", &queue, "").replace("visibility_timeout_secs = 5\n", "");
    daemon.start(&format!(
        "{}{source}{}\n[sinks.forward]\ntype = \"sqs\"\nqueue_url = \"{missing}\"\n\n[[routes]]\nname = \"all\"\nsinks = [\"copy\", \"forward\"]\n",
        config_head(&aws.endpoint),
        file_sink("copy", &copy),
    ));
    aws.send(&queue, &body).await;
    eventually("the first try", Duration::from_secs(15), async || {
        let tried = daemon.log().iter().any(|l| l["message"] == "not delivered everywhere: will retry");
        if tried { Ok(()) } else { Err("no retry logged yet".to_owned()) }
    })
    .await;
    // The retry delay is 10 s: within 5 s nothing may come again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    daemon.stop().await;
    let stats = daemon.last_stats();
    assert_eq!(stats["received"].as_u64(), Some(1), "received once, not again and again: {stats}");
    assert_eq!(message_ids(&copy).len(), 1);
    let warned = daemon.log().iter().any(|l| {
        l["message"].as_str().is_some_and(|m| m.contains("visibility timeout is too short"))
            && l["queue_visibility_timeout_secs"] == 0
    });
    assert!(warned, "the log says the queue's own timeout was replaced");
}

/// A webhook whose receiver takes the connection and never answers, so a
/// message stays in flight as long as the test wants.
async fn silent_receiver() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}/hook", listener.local_addr().expect("its address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            open.push(connection);
        }
    });
    (url, held)
}

/// A daemon with a 1 s grace period, a 60 s visibility timeout and one
/// message held by a webhook that never answers.
async fn daemon_holding_one_message(aws: &Aws, queue: &str) -> (Daemon, tokio::task::JoinHandle<()>) {
    let (url, receiver) = silent_receiver().await;
    let mut daemon = Daemon::new();
    let head = config_head(&aws.endpoint)
        .replace(&format!("shutdown_grace_secs = {}", super::harness::GRACE_SECS), "shutdown_grace_secs = 1");
    let source = source("in", queue, "").replace("visibility_timeout_secs = 5", "visibility_timeout_secs = 60");
    daemon.start(&format!(
        "{head}{source}\n[sinks.hook]\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout_secs = 60\n\n[[routes]]\nname = \"all\"\nsinks = [\"hook\"]\n"
    ));
    aws.send(queue, &read(&samples().join(BOUNCE))).await;
    eventually("the message to be in flight", Duration::from_secs(15), async || {
        let depth = aws.depth(queue).await;
        if depth.in_flight == 1 { Ok(()) } else { Err(format!("{depth:?}")) }
    })
    .await;
    (daemon, receiver)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_end_of_the_grace_period_makes_an_unfinished_message_visible_at_once() {
    let Some(aws) = Aws::connect("grace_end").await else { return };
    let queue = aws.create_queue("in").await;
    let (mut daemon, _receiver) = daemon_holding_one_message(&aws, &queue).await;
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "a clean exit after the grace period: {status}");
    // Its visibility timeout is 60 s: visible now only if it was given back.
    let depth = aws.depth(&queue).await;
    assert_eq!((depth.visible, depth.in_flight), (1, 0), "given back to the queue: {depth:?}");
    let said = daemon.log().iter().any(|l| l["message"] == "shutdown: unfinished, made visible again");
    assert!(said, "the log says the message was made visible again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_stops_at_once_with_130_and_loses_nothing() {
    let Some(aws) = Aws::connect("second_signal").await else { return };
    let queue = aws.create_queue("in").await;
    let (mut daemon, _receiver) = daemon_holding_one_message(&aws, &queue).await;
    daemon.signal("TERM");
    eventually("the first signal to be seen", Duration::from_secs(10), async || {
        let seen =
            daemon.log().iter().any(|l| l["message"].as_str().is_some_and(|m| m.starts_with("shutdown requested")));
        if seen { Ok(()) } else { Err("not logged yet".to_owned()) }
    })
    .await;
    daemon.signal("INT");
    let status = daemon.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(130), "a second signal exits 130: {status}");
    let depth = aws.depth(&queue).await;
    assert_eq!(depth.total(), 1, "still in the queue, back when its visibility timeout ends: {depth:?}");
}
