//! Property tests: no body, however broken, makes the parser or `route`
//! panic, and every body gives exactly one well-formed decision line.
//!
//! The number of cases follows `PROPTEST_CASES` (proptest's default config).

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use sesroute::cmd::route::{Outcome, decide, route_bytes};
use sesroute::config::Config;
use sesroute::notification::{Parsed, parse};

use crate::{config, read, sample_bodies, samples};

static SAMPLES_CONFIG: LazyLock<Config> = LazyLock::new(|| config(&read(&samples().join("config.toml"))));

static SAMPLE_BODIES: LazyLock<Vec<Vec<u8>>> =
    LazyLock::new(|| sample_bodies().iter().map(|path| read(path).into_bytes()).collect());

/// Keys of SNS envelopes, `EventBridge` events and SES records.
const KEYS: &[&str] = &[
    "Type",
    "Message",
    "MessageId",
    "TopicArn",
    "Subject",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "UnsubscribeURL",
    "SubscribeURL",
    "Token",
    "source",
    "detail",
    "detail-type",
    "id",
    "version",
    "account",
    "resources",
    "notificationType",
    "eventType",
    "message",
    "mail",
    "bounce",
    "complaint",
    "delivery",
    "send",
    "reject",
    "open",
    "click",
    "failure",
    "deliveryDelay",
    "subscription",
    "receipt",
    "timestamp",
    "messageId",
    "sourceArn",
    "destination",
    "tags",
    "commonHeaders",
    "from",
    "headers",
    "ses:configuration-set",
    "bounceType",
    "bounceSubType",
    "bouncedRecipients",
    "complainedRecipients",
    "complaintFeedbackType",
    "feedbackId",
    "recipients",
    "delayedRecipients",
    "delayType",
    "emailAddress",
    "reason",
];

/// The values of `Type`, `notificationType` and `eventType`.
const TYPE_NAMES: &[&str] = &[
    "Notification",
    "SubscriptionConfirmation",
    "UnsubscribeConfirmation",
    "Bounce",
    "Complaint",
    "Delivery",
    "Send",
    "Reject",
    "Open",
    "Click",
    "Rendering Failure",
    "DeliveryDelay",
    "Subscription",
    "Received",
    "AmazonSnsSubscriptionSucceeded",
];

/// Other values that steer the parser down its branches.
const STRINGS: &[&str] = &[
    "aws.ses",
    "Email Bounced",
    "Email Sent",
    "Sending Status Disabled",
    "Permanent",
    "Transient",
    "abuse",
    "a@example.net",
    "Jane Doe <Jane@Example.org>",
    "\"Doe, J\" <j@x.test>",
    "=?UTF-8?B?QWNtZQ==?= <receipts@acme.test>",
    "<>",
    "@",
    "",
    "arn:aws:ses:eu-west-1:111122223333:identity/a@acme.test",
    "arn:aws:sns:eu-west-1:111122223333:ses-bounces",
    "Successfully validated SNS topic for Amazon SES event publishing.",
];

/// A string from [`TYPE_NAMES`] or [`STRINGS`].
fn known_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(TYPE_NAMES).prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
    ]
}

/// JSON values shaped like queue bodies: objects keyed mostly by real key
/// names, and JSON documents inside strings, as SNS carries its `Message`.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        3 => known_string(),
        1 => any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        let key = prop_oneof![
            6 => prop::sample::select(KEYS).prop_map(str::to_owned),
            1 => any::<String>(),
        ];
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            4 => prop::collection::vec((key, inner.clone()), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
            1 => inner.prop_map(|value| Value::String(value.to_string())),
        ]
    })
}

/// Bodies shaped like real feedback (an SES record, bare or wrapped in an SNS
/// envelope or an `EventBridge` event) whose fields hold arbitrary values.
fn queue_body() -> impl Strategy<Value = Value> {
    let type_key = prop::sample::select(&["notificationType", "eventType"][..]);
    let type_name = prop_oneof![3 => prop::sample::select(TYPE_NAMES), 1 => prop::sample::select(STRINGS)];
    let text = || {
        prop_oneof![
            8 => known_string(),
            1 => json_value(),
        ]
    };
    let mail = prop::collection::vec((prop::sample::select(KEYS), text()), 0..8);
    let payload = prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..3);
    let wrapping = 0..4_u8;
    (type_key, type_name, mail, payload, wrapping).prop_map(|(type_key, type_name, mail, payload, wrapping)| {
        let mut record = Map::new();
        record.insert(type_key.to_owned(), type_name.into());
        let mail: Map<String, Value> = mail.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        record.insert("mail".to_owned(), Value::Object(mail));
        record.extend(payload.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let record = Value::Object(record);
        let topic = "arn:aws:sns:eu-west-1:111122223333:ses-bounces";
        match wrapping {
            0 => record,
            1 => json!({ "Type": "Notification", "TopicArn": topic, "Message": record.to_string() }),
            // The lenient form: `Message` as an object.
            2 => json!({ "Type": "Notification", "TopicArn": topic, "Message": record }),
            _ => json!({ "source": "aws.ses", "detail-type": "Email Bounced", "detail": record }),
        }
    })
}

/// What `text` parses to, leaving out the raw text it keeps and error wording.
fn meaning(text: &str) -> String {
    let mut scratch = String::new();
    match parse(text, &mut scratch) {
        Ok(Parsed::Notification(n)) => format!(
            "{} {:?} {:?} {:?} {:?} {:?} {:?}",
            n.kind,
            n.source,
            n.message_id,
            n.recipients,
            n.detail,
            n.source_arn,
            n.topic_arn()
        ),
        Ok(Parsed::Ignored(reason)) => format!("ignored: {reason}"),
        Err(_) => "error".to_owned(),
    }
}

/// Routes `bytes` as the file `name`, checks that every output line is one
/// decision about `name`, and gives the line numbers.
fn route_lines(name: &str, bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    route_bytes(&mut out, &SAMPLES_CONFIG, name, bytes, Some("feedback")).expect("writing to a Vec cannot fail");
    let out = String::from_utf8(out).expect("decisions are UTF-8");
    out.lines()
        .map(|line| {
            let decision: Value = serde_json::from_str(line).expect("a decision is JSON");
            let outcomes = ["kind", "ignored", "error"].iter().filter(|key| decision.get(**key).is_some()).count();
            assert_eq!(outcomes, 1, "{line}");
            let input = decision["input"].as_str().expect("an input");
            let number =
                input.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')).expect("the input names the file");
            number.parse().expect("a line number")
        })
        .collect()
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics_the_parser(text in ".*") {
        let _ = meaning(&text);
    }

    #[test]
    fn arbitrary_bytes_give_well_formed_decisions(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = meaning(&String::from_utf8_lossy(&bytes));
        let lines = route_lines("fuzz", &bytes);
        prop_assert!(!lines.is_empty(), "every input gives at least one decision");
        prop_assert!(lines.windows(2).all(|w| w[0] < w[1]), "in input order: {lines:?}");
    }

    #[test]
    fn arbitrary_json_never_panics_and_layout_does_not_change_its_meaning(
        value in prop_oneof![json_value(), queue_body()],
    ) {
        let compact = value.to_string();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let _ = decide(&SAMPLES_CONFIG, compact.as_bytes(), Some("events"), &mut String::new());
        prop_assert_eq!(meaning(&compact), meaning(&pretty));
    }

    #[test]
    fn json_lines_give_one_decision_per_line(values in prop::collection::vec(json_value(), 1..6)) {
        let jsonl: Vec<String> = values.iter().map(Value::to_string).collect();
        let lines = route_lines("bodies.jsonl", jsonl.join("\n").as_bytes());
        prop_assert_eq!(lines, (1..=values.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_truncated_sample_is_an_error_and_never_a_panic(body in any::<Index>(), cut in any::<Index>()) {
        let body = body.get(&SAMPLE_BODIES);
        let cut = cut.index(body.len() + 1);
        let truncated = &body[..cut];
        let mut scratch = String::new();
        let outcome = decide(&SAMPLES_CONFIG, truncated, None, &mut scratch);
        let significant = body.trim_ascii_end().len();
        if cut < significant {
            prop_assert!(matches!(outcome, Outcome::Error(_)), "cut at {}: {:?}", cut, outcome);
        }
    }

    #[test]
    fn a_sample_with_one_byte_replaced_never_panics(
        body in any::<Index>(),
        at in any::<Index>(),
        byte in any::<u8>(),
    ) {
        let mut body = body.get(&SAMPLE_BODIES).clone();
        let at = at.index(body.len());
        body[at] = byte;
        let _ = decide(&SAMPLES_CONFIG, &body, Some("events"), &mut String::new());
        route_lines("changed.json", &body);
    }
}
