//! The acme.test sample corpus through the daemon, each body in the form it
//! would have on its queue: SNS samples published through a topic (envelope
//! on the feedback queue, raw delivery on the events queue), the others sent
//! straight to their queue. The samples' own routes decide; `support` is an
//! `sns` sink and `payments` an `sqs` sink, the others are files.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::harness::{Aws, Daemon, attribute, config_head, file_sink, lines, message_ids, ses_message_id, source};
use crate::{file_name, read, sample_bodies, samples};

const FILE_SINKS: [&str; 4] = ["developers", "qa", "newsletter-team", "archive"];
/// The bodies that cannot be understood.
const MALFORMED: [&str; 2] = ["40-malformed-invalid-json.json", "41-malformed-not-ses.json"];

#[tokio::test(flavor = "multi_thread")]
async fn the_samples_reach_their_sinks_and_what_cannot_be_understood_stays() {
    corpus("corpus", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_dead_letter_sink_what_cannot_be_understood_goes_there() {
    corpus("corpus-dlq", true).await;
}

/// A sample body and where it goes.
struct Sample {
    file: String,
    body: String,
    /// Identity notifications (and what comes with them) arrive on the
    /// feedback queue, event publishing on the events queue (samples README).
    feedback: bool,
}

fn sample_list() -> Vec<Sample> {
    sample_bodies()
        .iter()
        .map(|path| {
            let file = file_name(path).to_owned();
            let number: u32 = file[..2].parse().expect("a two-digit prefix");
            let feedback = number <= 17 || [34, 38, 40].contains(&number);
            Sample { body: read(path), file, feedback }
        })
        .collect()
}

/// What `expected.jsonl` says of each routed body, by `mail.messageId`.
struct Expected {
    /// Sink name -> message ids, sorted.
    sinks: BTreeMap<String, Vec<String>>,
    /// Message id -> (kind, source).
    notifications: BTreeMap<String, (String, String)>,
    ignored: usize,
}

fn expected() -> Expected {
    let mut expected = Expected { sinks: BTreeMap::new(), notifications: BTreeMap::new(), ignored: 0 };
    for line in read(&samples().join("expected.jsonl")).lines() {
        let decision: Value = serde_json::from_str(line).expect("expected.jsonl is JSON Lines");
        if decision.get("ignored").is_some() {
            expected.ignored += 1;
        }
        let Some(id) = decision["message_id"].as_str() else { continue };
        let text = |value: &Value| value.as_str().unwrap_or_else(|| panic!("expected.jsonl: {line}")).to_owned();
        for sink in decision["sinks"].as_array().into_iter().flatten() {
            expected.sinks.entry(text(sink)).or_default().push(id.to_owned());
        }
        expected.notifications.insert(id.to_owned(), (text(&decision["kind"]), text(&decision["source"])));
    }
    for ids in expected.sinks.values_mut() {
        ids.sort();
    }
    expected
}

/// The `[[routes]]` of the samples' `config.toml`: everything from the first one on.
fn sample_routes() -> String {
    let config = read(&samples().join("config.toml"));
    let routes = &config[config.find("\n[[routes]]").expect("routes in the samples' config.toml")..];
    assert!(!routes.contains("[sinks") && !routes.contains("[[sources]]"), "the samples' routes come last");
    routes.to_owned()
}

async fn corpus(test: &str, dead_letter: bool) {
    let Some(aws) = Aws::connect(test).await else { return };
    let feedback = aws.create_queue("feedback").await;
    let events = aws.create_queue("events").await;
    let feedback_topic = aws.create_topic("feedback").await;
    let events_topic = aws.create_topic("events").await;
    aws.subscribe(&feedback_topic, &feedback, false).await;
    aws.subscribe(&events_topic, &events, true).await;
    let support_topic = aws.create_topic("support").await;
    let support_check = aws.create_queue("support-check").await;
    aws.subscribe(&support_topic, &support_check, true).await;
    let payments_check = aws.create_queue("payments-check").await;

    let samples = sample_list();
    for sample in &samples {
        let (queue, topic) = if sample.feedback { (&feedback, &feedback_topic) } else { (&events, &events_topic) };
        if sample.file.ends_with("-sns.json") {
            let envelope: Value = serde_json::from_str(&sample.body).expect("an SNS envelope");
            let message = envelope["Message"].as_str().expect("the envelope's Message string");
            aws.publish(topic, message, envelope["Subject"].as_str()).await;
        } else {
            aws.send(queue, &sample.body).await;
        }
    }
    let on_feedback = samples.iter().filter(|s| s.feedback).count();
    aws.wait_for_total(&feedback, on_feedback, Duration::from_secs(10)).await;
    aws.wait_for_total(&events, samples.len() - on_feedback, Duration::from_secs(10)).await;

    let mut daemon = Daemon::new();
    let files: String = FILE_SINKS.iter().map(|name| file_sink(name, &daemon.path(&format!("{name}.jsonl")))).collect();
    let (dead_letter_key, dead_letter_sink) = if dead_letter {
        ("dead_letter = \"dead\"\n", file_sink("dead", &daemon.path("dead.jsonl")))
    } else {
        ("", String::new())
    };
    daemon.start(&format!(
        r#"{dead_letter_key}{}{}{}{files}{dead_letter_sink}
[sinks.support]
type = "sns"
topic_arn = "{support_topic}"

[sinks.payments]
type = "sqs"
queue_url = "{payments_check}"
{}"#,
        config_head(&aws.endpoint),
        source("feedback", &feedback, ""),
        source("events", &events, ""),
        sample_routes(),
    ));

    // The malformed bodies stay (one on each queue) unless they can be dead-lettered.
    let left = usize::from(!dead_letter);
    aws.wait_for_total(&feedback, left, Duration::from_secs(30)).await;
    aws.wait_for_total(&events, left, Duration::from_secs(30)).await;

    let expected = expected();
    for name in FILE_SINKS {
        assert_eq!(message_ids(&daemon.path(&format!("{name}.jsonl"))), expected.sinks[name], "file sink {name}");
    }
    for (name, queue) in [("support", &support_check), ("payments", &payments_check)] {
        let want = &expected.sinks[name];
        let messages = aws.receive_all(queue, want.len()).await;
        let mut ids: Vec<String> = messages.iter().map(|m| ses_message_id(m.body().unwrap_or_default())).collect();
        ids.sort();
        assert_eq!(&ids, want, "{name} sink, as received from its check queue");
        for message in &messages {
            let (kind, source) = &expected.notifications[&ses_message_id(message.body().unwrap_or_default())];
            assert_eq!(attribute(message, "kind"), Some(kind.as_str()), "{name}: {message:?}");
            assert_eq!(attribute(message, "source"), Some(source.as_str()), "{name}: {message:?}");
        }
    }
    if dead_letter {
        let mut bodies: Vec<String> = lines(&daemon.path("dead.jsonl"))
            .iter()
            .map(|line| line["body"].as_str().unwrap_or_else(|| panic!("no body: {line}")).to_owned())
            .collect();
        bodies.sort();
        let mut malformed: Vec<String> = MALFORMED
            .iter()
            .map(|file| samples.iter().find(|s| s.file == *file).expect("a malformed sample").body.clone())
            .collect();
        malformed.sort();
        assert_eq!(bodies, malformed, "the dead-letter file holds the malformed bodies, as received");
    }
    assert_eq!((aws.depth(&feedback).await.total(), aws.depth(&events).await.total()), (left, left));

    daemon.stop().await;
    let stats = daemon.last_stats();
    let routed = expected.notifications.len();
    assert_eq!(stats["delivered"], routed, "{stats}");
    assert_eq!(stats["ignored"], expected.ignored, "{stats}");
    assert_eq!(stats["unrouted"], 0, "{stats}");
    assert_eq!(stats["dead_lettered"], if dead_letter { 2 } else { 0 }, "{stats}");
    assert!(stats["errors"].as_u64() >= Some(2), "{stats}");
}
