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

/// How deeply `value` nests objects and arrays (a scalar is 0).
fn depth_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(entries) => 1 + entries.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// A value `levels` deep, built without recursion: arrays and objects as
/// `shape`'s bits say, level by level from the outside in.
fn nested(levels: usize, shape: u64) -> Value {
    let mut value = Value::from("core");
    for level in 0..levels {
        value = if shape >> (level % 64) & 1 == 0 {
            Value::Array(vec![value])
        } else {
            let mut entries = Map::new();
            entries.insert("n".to_owned(), value);
            Value::Object(entries)
        };
    }
    value
}

/// A bounce from `dev@dev.example.com` to `count` recipients, each with a
/// diagnostic code of `field` bytes.
fn bounce_with(count: usize, field: usize) -> Value {
    let code = format!("smtp; 550 5.1.1 {}", "x".repeat(field));
    let recipients: Vec<Value> = (0..count)
        .map(|i| json!({ "emailAddress": format!("user{i}@example.org"), "status": "5.1.1", "diagnosticCode": code }))
        .collect();
    json!({
        "notificationType": "Bounce",
        "mail": { "source": "dev@dev.example.com", "messageId": "m-1", "destination": ["x@example.org"] },
        "bounce": { "bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": recipients },
    })
}

proptest! {
    #[test]
    fn nesting_anywhere_is_routed_as_before_or_refused_for_its_depth(
        body in any::<Index>(),
        levels in 0..100_usize,
        shape in any::<u64>(),
        inside_message in any::<bool>(),
    ) {
        let sample: &Vec<u8> = body.get(&SAMPLE_BODIES);
        let text = String::from_utf8_lossy(sample).into_owned();
        let Ok(Value::Object(mut outer)) = serde_json::from_str::<Value>(&text) else {
            return Ok(());
        };
        let extra = nested(levels, shape);
        // The layer the parser measures on its own: the SNS `Message` text
        // when it holds JSON and was chosen, else the body.
        let inner = outer.get("Message").and_then(Value::as_str).and_then(|m| serde_json::from_str::<Value>(m).ok());
        let layer_depth = if let (true, Some(Value::Object(mut message))) = (inside_message, inner) {
            message.insert("zzUnknown".to_owned(), extra);
            let depth = depth_of(&Value::Object(message.clone()));
            outer.insert("Message".to_owned(), Value::String(Value::Object(message).to_string()));
            depth
        } else {
            outer.insert("zzUnknown".to_owned(), extra);
            depth_of(&Value::Object(outer.clone()))
        };
        let changed = Value::Object(outer).to_string();
        let (outcome, changed_meaning) = on_worker_stack(|| {
            let mut scratch = String::new();
            let outcome = match decide(&SAMPLES_CONFIG, changed.as_bytes(), Some("events"), &mut scratch) {
                Outcome::Error(reason) => Err(reason.to_string()),
                other => Ok(format!("{other:?}")),
            };
            (outcome, meaning(&changed))
        });
        if layer_depth > sesroute::notification::depth::MAX_DEPTH {
            let reason = outcome.err().unwrap_or_else(|| format!("depth {layer_depth} was accepted"));
            prop_assert!(reason.contains("nests deeper than 64 levels"), "{reason}");
        } else {
            // An unknown field changes nothing, at any depth the limit allows.
            let original = meaning(&text);
            if !original.starts_with("error") {
                prop_assert_eq!(changed_meaning, original);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.min(24), ..ProptestConfig::default() })]

    #[test]
    fn thousands_of_recipients_and_long_fields_are_all_read(
        (count, field) in prop_oneof![(0..8_usize, 50_000..200_000_usize), (900..2500_usize, 0..64_usize)],
        wrapped in any::<bool>(),
    ) {
        let record = bounce_with(count, field);
        let body = if wrapped {
            json!({ "Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:111122223333:ses-bounces", "Message": record.to_string() })
        } else {
            record
        }
        .to_string();
        let mut scratch = String::new();
        match parse(&body, &mut scratch) {
            Ok(Parsed::Notification(n)) => {
                // A bounce's affected recipients are its bounced recipients
                // alone, also when there are none.
                prop_assert_eq!(n.recipients.len(), count, "bounced recipients");
                prop_assert_eq!(n.source.as_ref(), "dev@dev.example.com");
            }
            other => return Err(TestCaseError::fail(format!("{count} recipients, {field} bytes: {other:?}"))),
        }
        let lines = route_lines("big.json", body.as_bytes());
        prop_assert_eq!(lines, vec![1]);
    }
}
/// Runs `f` on a thread with the stack of the daemon's workers.
fn on_worker_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(sesroute::cmd::run::WORKER_STACK)
            .spawn_scoped(scope, f)
            .expect("a thread")
            .join()
            .expect("no panic")
    })
}

/// A body at the nesting limit, with an unknown field nested all the way
/// down (the parser skips it by recursion), parses on a daemon worker's stack.
#[test]
fn a_body_at_the_nesting_limit_parses_on_a_worker_stack() {
    let limit = sesroute::notification::depth::MAX_DEPTH;
    let outcomes = on_worker_stack(move || {
        [0xAAAA_AAAA_AAAA_AAAA_u64, 0, u64::MAX]
            .into_iter()
            .map(|shape| {
                let mut record = bounce_with(1, 10);
                record["mail"]["zzUnknown"] = nested(limit - 2, shape);
                let body = record.to_string();
                let mut scratch = String::new();
                matches!(parse(&body, &mut scratch), Ok(Parsed::Notification(_)))
            })
            .collect::<Vec<bool>>()
    });
    assert_eq!(outcomes, [true, true, true]);
}
