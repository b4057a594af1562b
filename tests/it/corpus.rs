//! The fixture corpora run through the binary: the acme.test samples against
//! their `expected.jsonl`, and AWS's own documentation payloads against a
//! table written from that folder's README.

use std::path::Path;

use serde_json::Value;

use crate::{Run, file_name, fixtures, json_files, read, samples, sesroute, temp_file};

/// The decision keys compared exactly for a body that is feedback.
const ROUTED_KEYS: [&str; 5] = ["kind", "source", "message_id", "routes", "sinks"];

/// `sesroute route --config config.toml ARGS bodies/...json...` in a corpus folder.
fn route_corpus(dir: &Path, args: &[&str]) -> Run {
    let bodies: Vec<String> =
        json_files(&dir.join("bodies")).iter().map(|path| format!("bodies/{}", file_name(path))).collect();
    Run::of(sesroute().current_dir(dir).args(["route", "--config", "config.toml"]).args(args).args(&bodies))
}

/// `sesroute route` in the samples folder.
fn route_samples(args: &[&str]) -> Run {
    route_corpus(&samples(), args)
}

fn expected(dir: &Path) -> Vec<Value> {
    read(&dir.join("expected.jsonl"))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("expected.jsonl: {e}: {line}")))
        .collect()
}

/// Asserts that a decision for a body that is not feedback carries `key`
/// (`ignored` or `error`) as a non-empty reason, and nothing of a decision.
fn assert_not_feedback(decision: &Value, key: &str) {
    let reason = decision[key].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "expected a {key:?} reason: {decision}");
    for absent in ROUTED_KEYS {
        assert!(decision.get(absent).is_none(), "{key} with {absent}: {decision}");
    }
    let other = if key == "error" { "ignored" } else { "error" };
    assert!(decision.get(other).is_none(), "both {key} and {other}: {decision}");
}

/// Routes every body of the corpus in `dir` (`count` of them) and compares
/// each decision with its line of `expected.jsonl`.
fn corpus_routes_as_expected(dir: &Path, count: usize, args: &[&str]) {
    let expected = expected(dir);
    let bodies = json_files(&dir.join("bodies"));
    assert_eq!(bodies.len(), count, "the corpus has {count} bodies");
    let run = route_corpus(dir, args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(decisions.len(), expected.len(), "{}", run.stdout);

    for ((decision, want), body) in decisions.iter().zip(&expected).zip(&bodies) {
        let file = want["file"].as_str().expect("each expectation names its file");
        assert_eq!(file, file_name(body), "expected.jsonl is in file order");
        assert_eq!(decision["input"], format!("bodies/{file}:1"));
        if want.get("kind").is_some() {
            for key in ROUTED_KEYS {
                assert_eq!(decision[key], want[key], "{file}: {key}");
            }
        } else if want.get("ignored").is_some() {
            assert_not_feedback(decision, "ignored");
        } else {
            assert_eq!(want["error"], true, "{file}: an unknown expectation");
            assert_not_feedback(decision, "error");
        }
    }
}

#[test]
fn samples_route_as_expected() {
    corpus_routes_as_expected(&samples(), 41, &[]);
}

/// Bodies from public projects' test fixtures (their README names each
/// one's origin), all arriving on the `feedback` queue.
#[test]
fn real_world_bodies_route_as_expected() {
    corpus_routes_as_expected(&fixtures().join("real-world"), 57, &["--queue", "feedback"]);
}

#[test]
fn samples_config_checks_without_warnings() {
    let run = Run::of(sesroute().current_dir(samples()).args(["check", "--config", "config.toml"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    for route in ["dev", "newsletter-sender", "production-hard-bounces", "archive"] {
        assert!(run.stdout.contains(route), "summary lacks {route}: {}", run.stdout);
    }
}

/// No sample route uses the `queue` matcher, so naming the queue changes nothing.
#[test]
fn samples_route_the_same_whichever_queue_they_arrived_on() {
    let unqueued = route_samples(&[]);
    for queue in ["feedback", "events"] {
        let queued = route_samples(&["--queue", queue]);
        assert_eq!(queued.code, 0, "{}", queued.stderr);
        assert_eq!(queued.decisions(), unqueued.decisions(), "--queue {queue}");
    }
}

/// What each AWS documentation payload must give.
enum Doc {
    /// SES feedback: its kind, its bare sender, and the route it takes in [`DOC_CONFIG`].
    Feedback(&'static str, &'static str, &'static str),
    Ignored,
    Error,
}

/// The documentation examples, from `aws-doc-examples/README.md`.
const DOC_EXAMPLES: [(&str, Doc); 22] = [
    ("01-notif-bounce-with-dsn.json", Doc::Feedback("bounce", "john@example.com", "identity")),
    ("02-notif-bounce-no-dsn.json", Doc::Feedback("bounce", "john@example.com", "identity")),
    ("03-notif-complaint-with-feedback.json", Doc::Feedback("complaint", "john@example.com", "identity")),
    ("04-notif-complaint-no-feedback.json", Doc::Feedback("complaint", "john@example.com", "identity")),
    ("05-notif-delivery.json", Doc::Feedback("delivery", "john@example.com", "identity")),
    // 07 and 08: `mail.source` is "Sender Name <sender@example.com>".
    ("07-ep-bounce.json", Doc::Feedback("bounce", "sender@example.com", "events")),
    ("08-ep-complaint.json", Doc::Feedback("complaint", "sender@example.com", "events")),
    ("09-ep-delivery.json", Doc::Feedback("delivery", "sender@example.com", "events")),
    ("10-ep-send.json", Doc::Feedback("send", "sender@example.com", "events")),
    ("11-ep-reject.json", Doc::Feedback("reject", "sender@example.com", "events")),
    ("12-ep-open.json", Doc::Feedback("open", "sender@example.com", "events")),
    ("13-ep-click.json", Doc::Feedback("click", "sender@example.com", "events")),
    ("14-ep-rendering-failure.json", Doc::Feedback("rendering-failure", "sender@example.com", "events")),
    ("15-ep-delivery-delay.json", Doc::Feedback("delivery-delay", "sender@example.com", "events")),
    ("16-ep-subscription.json", Doc::Feedback("subscription", "sender@example.com", "events")),
    // Inbound mail (`notificationType: "Received"`).
    ("20-rcv-received-sns-action.json", Doc::Ignored),
    ("21-rcv-received-s3-alert.json", Doc::Ignored),
    // SNS envelopes: two confirmations, and three whose Message is plain text.
    ("30-sns-subscription-confirmation.json", Doc::Ignored),
    ("31-sns-notification.json", Doc::Error),
    ("32-sns-unsubscribe-confirmation.json", Doc::Ignored),
    ("33-sns-sqs-notification.json", Doc::Error),
    ("34-sns-raw-off-notification.json", Doc::Error),
];

/// Identity notifications (01-05) are sent from the `example.com` identity;
/// event publishing (07-16) uses the configuration set `ConfigSet`.
const DOC_CONFIG: &str = r#"
[sinks.events]
type = "log"

[sinks.notifications]
type = "log"

[sinks.rest]
type = "log"

[[routes]]
name = "events"
sinks = ["events"]
[routes.match]
configuration_set = ["configset"]

[[routes]]
name = "identity"
sinks = ["notifications"]
[routes.match]
identity = ["arn:aws:ses:*:*:identity/example.com"]

[[routes]]
name = "rest"
sinks = ["rest"]
"#;

/// `sesroute route` over `files` (relative to `dir`) with [`DOC_CONFIG`].
fn route_docs(dir: &Path, files: &[String]) -> Run {
    let config = temp_file(".toml", DOC_CONFIG);
    Run::of(sesroute().current_dir(dir).args(["route", "--config"]).arg(config.path()).args(files))
}

/// The names of the `*.json` files directly in `dir`, sorted.
fn json_names(dir: &Path) -> Vec<String> {
    json_files(dir).iter().map(|path| file_name(path).to_owned()).collect()
}

#[test]
fn aws_doc_examples_give_the_documented_outcome() {
    let dir = fixtures().join("aws-doc-examples");
    let files = json_names(&dir);
    let table: Vec<&str> = DOC_EXAMPLES.iter().map(|(file, _)| *file).collect();
    assert_eq!(files, table, "every top-level example has a row in the table");

    let run = route_docs(&dir, &files);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(decisions.len(), DOC_EXAMPLES.len(), "{}", run.stdout);
    for (decision, (file, doc)) in decisions.iter().zip(&DOC_EXAMPLES) {
        assert_eq!(decision["input"], format!("{file}:1"));
        match doc {
            Doc::Feedback(kind, source, route) => {
                let body: Value = serde_json::from_str(&read(&dir.join(file))).unwrap();
                assert_eq!(decision["kind"], *kind, "{file}");
                assert_eq!(decision["source"], *source, "{file}");
                assert_eq!(decision["message_id"], body["mail"]["messageId"], "{file}");
                assert_eq!(decision["routes"], serde_json::json!([route]), "{file}");
            }
            Doc::Ignored => assert_not_feedback(decision, "ignored"),
            Doc::Error => assert_not_feedback(decision, "error"),
        }
    }
}

/// `fragments/` holds sub-objects (a `mail`, a `bounce`, ...), not notifications.
#[test]
fn aws_doc_fragments_are_errors() {
    let dir = fixtures().join("aws-doc-examples/fragments");
    let files = json_names(&dir);
    assert_eq!(files.len(), 6);
    let run = route_docs(&dir, &files);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(decisions.len(), files.len(), "{}", run.stdout);
    for (decision, file) in decisions.iter().zip(&files) {
        assert_eq!(decision["input"], format!("{file}:1"));
        assert_not_feedback(decision, "error");
    }
}

/// The bounce class of every bounce in the three corpora, read off each
/// body by hand against the contract's table (type, subtype, and each
/// recipient's status or diagnostic code).
#[test]
fn every_bounce_of_the_corpora_has_the_class_the_contract_gives_it() {
    let table: [(&str, &str); 35] = [
        ("samples/bodies/01-bounce-permanent-general-bare.json", "hard"),
        ("samples/bodies/02-bounce-permanent-noemail-sns.json", "hard"),
        ("samples/bodies/07-bounce-transient-mailboxfull-sns.json", "soft"), // 5.2.2 mailbox full
        ("samples/bodies/08-bounce-undetermined-bare.json", "undetermined"),
        ("samples/bodies/09-bounce-permanent-suppressed-sns.json", "suppressed"),
        ("samples/bodies/10-bounce-on-account-suppression-list-bare.json", "suppressed"),
        ("samples/bodies/11-bounce-transient-general-dev-sns.json", "soft"),
        ("samples/bodies/14-bounce-display-name-qa-sns.json", "hard"),
        ("samples/bodies/16-bounce-multi-recipient-newsletter-sns.json", "hard"),
        ("samples/bodies/20-event-bounce-permanent-payments-sns.json", "hard"),
        ("samples/bodies/28-event-bounce-message-too-large-eventbridge.json", "soft"), // 5.3.4
        ("samples/bodies/29-event-bounce-content-rejected-bare.json", "soft"),         // 5.7.1
        ("samples/bodies/30-event-bounce-attachment-rejected-payments-sns.json", "soft"), // 5.7.0
        ("aws-doc-examples/01-notif-bounce-with-dsn.json", "hard"),
        ("aws-doc-examples/02-notif-bounce-no-dsn.json", "hard"),
        ("aws-doc-examples/07-ep-bounce.json", "hard"),
        ("real-world/bodies/001-relay-sns-bounce-onaccount-suppression-rfc2047-source.json", "suppressed"),
        // Transient with an invented subtype, and a recipient status of 5.1.1: dead.
        ("real-world/bodies/002-relay-sns-bounce-transient-invented-subtype.json", "hard"),
        ("real-world/bodies/003-relay-sns-bounce-transient-spam-subtype.json", "hard"),
        ("real-world/bodies/007-relay-raw-bounce-simulator.json", "hard"),
        // The simulator's out-of-office: Transient, no status.
        ("real-world/bodies/011-relay-raw-bounce-simulator-ooto-transient.json", "soft"),
        ("real-world/bodies/012-relay-raw-bounce-simulator-suppressionlist.json", "hard"),
        ("real-world/bodies/013-mailcoach-sns-ep-bounce-escaped-slashes.json", "hard"),
        ("real-world/bodies/021-juhasev-sns-bounce-simulator.json", "hard"),
        ("real-world/bodies/026-oliveready7-sns-bounce-simulator-odd-sourceip.json", "hard"),
        ("real-world/bodies/027-sesevent-sns-object-message-ep-bounce.json", "hard"),
        ("real-world/bodies/029-djangoses-sns-bounce-signed-no-subject.json", "hard"),
        ("real-world/bodies/032-keila-sns-ep-bounce-signed.json", "hard"),
        ("real-world/bodies/041-ag84ark-raw-bounce-simulator.json", "hard"),
        ("real-world/bodies/042-ag84ark-sns-object-message-minimal-envelope.json", "hard"),
        ("real-world/bodies/044-bhwp-sns-bounce-display-name-plus-address.json", "hard"),
        ("real-world/bodies/045-sesbouncerecorder-lambda-sns-bounce-mail-without-source.json", "hard"),
        ("real-world/bodies/046-goamz-raw-bounce-minimal-mail.json", "hard"),
        ("real-world/bodies/049-janis-lambda-sns-bounce-empty-diagnostic.json", "hard"),
        ("real-world/bodies/051-wraps-eventbridge-bounce.json", "hard"),
    ];
    let root = fixtures();
    let mut all: Vec<String> = Vec::new();
    for dir in ["samples/bodies", "aws-doc-examples", "real-world/bodies"] {
        all.extend(json_files(&root.join(dir)).iter().map(|p| format!("{dir}/{}", file_name(p))));
    }
    let run = Run::of(sesroute().current_dir(&root).args(["route", "--config", "real-world/config.toml"]).args(&all));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: Vec<(String, String)> = run
        .decisions()
        .iter()
        .filter_map(|d| {
            let input = d["input"].as_str()?.trim_end_matches(":1").to_owned();
            Some((input, d.get("bounce_class")?.as_str()?.to_owned()))
        })
        .collect();
    let want: Vec<(String, String)> = table.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want;
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "every bounce, and only bounces, with its class");
    for d in run.decisions() {
        let is_bounce = d["kind"] == "bounce";
        assert_eq!(d.get("bounce_class").is_some(), is_bounce, "{d}");
    }
}
