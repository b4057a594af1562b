//! The bounce class end to end: bounces of every class, in each of the three
//! body forms, on one queue; a route on `bounce_class = ["hard", "suppressed"]`
//! gets exactly the dead addresses, the file records carry the class, and
//! `/metrics` counts notifications and recipients by route, kind and class.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{Aws, Daemon, config_head, eventually, file_sink, lines, source};
use super::ops::{get, listen_address, metric};

/// An SES bounce record: `bounce_type`/`subtype` and one recipient per
/// `(status, diagnosticCode)` pair (either may be absent).
fn bounce(id: &str, bounce_type: &str, subtype: &str, recipients: &[(Option<&str>, Option<&str>)]) -> Value {
    let bounced: Vec<Value> = recipients
        .iter()
        .enumerate()
        .map(|(i, (status, diagnostic))| {
            let mut r = json!({ "emailAddress": format!("r{i}@customer.test"), "action": "failed" });
            if let Some(status) = status {
                r["status"] = json!(status);
            }
            if let Some(diagnostic) = diagnostic {
                r["diagnosticCode"] = json!(diagnostic);
            }
            r
        })
        .collect();
    json!({
        "notificationType": "Bounce",
        "mail": { "timestamp": "2026-01-01T00:00:00.000Z", "source": "app@acme.test", "messageId": id,
                  "destination": ["r0@customer.test"] },
        "bounce": { "bounceType": bounce_type, "bounceSubType": subtype, "bouncedRecipients": bounced,
                    "timestamp": "2026-01-01T00:00:01.000Z", "feedbackId": format!("fb-{id}") }
    })
}

fn delivery(id: &str) -> Value {
    json!({
        "notificationType": "Delivery",
        "mail": { "source": "app@acme.test", "messageId": id, "destination": ["a@customer.test", "b@customer.test"] },
        "delivery": { "timestamp": "2026-01-01T00:00:01.000Z", "recipients": ["a@customer.test", "b@customer.test"] }
    })
}

/// The record as the n-th form: bare, in an SNS envelope, or as an
/// `EventBridge` event (which spells the type `eventType`).
fn wrapped(record: &Value, form: usize) -> String {
    match form % 3 {
        0 => record.to_string(),
        1 => json!({ "Type": "Notification", "MessageId": "sns-1",
                     "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-feedback",
                     "Message": record.to_string() })
        .to_string(),
        _ => {
            let mut detail = record.clone();
            let kind = detail["notificationType"].take();
            detail["eventType"] = kind;
            detail.as_object_mut().expect("an object").remove("notificationType");
            json!({ "version": "0", "id": "eb-1", "detail-type": "Email Bounced", "source": "aws.ses",
                    "account": "123456789012", "time": "2026-01-01T00:00:02Z", "region": "us-east-1",
                    "resources": [], "detail": detail })
            .to_string()
        }
    }
}

/// Bounces of every class: (message id, record, the class it must get).
fn cases() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("permanent-general", bounce("permanent-general", "Permanent", "General", &[(Some("5.1.1"), None)]), "hard"),
        ("permanent-noemail", bounce("permanent-noemail", "Permanent", "NoEmail", &[(None, None)]), "hard"),
        ("suppressed", bounce("suppressed", "Permanent", "Suppressed", &[(Some("5.1.1"), None)]), "suppressed"),
        ("account-list", bounce("account-list", "Permanent", "OnAccountSuppressionList", &[]), "suppressed"),
        (
            "transient-dead",
            bounce("transient-dead", "Transient", "General", &[(None, Some("smtp; 550 5.1.1 user unknown"))]),
            "hard",
        ),
        (
            "transient-unroutable",
            bounce("transient-unroutable", "Transient", "General", &[(Some("5.4.4"), None)]),
            "hard",
        ),
        (
            "transient-malformed-status",
            bounce("transient-malformed-status", "Transient", "General", &[(Some("5.2"), Some("550 5.2.1 disabled"))]),
            "hard",
        ),
        (
            "transient-mixed",
            bounce(
                "transient-mixed",
                "Transient",
                "MailboxFull",
                &[(Some("4.2.2"), None), (Some("4.4.7"), None), (None, Some("smtp; 550-5.1.1 gone"))],
            ),
            "hard",
        ),
        (
            "undetermined-dead",
            bounce("undetermined-dead", "Undetermined", "Undetermined", &[(Some("5.1.10"), None)]),
            "hard",
        ),
        (
            "transient-full",
            bounce("transient-full", "Transient", "MailboxFull", &[(Some("4.2.2"), Some("smtp; 452 4.2.2 full"))]),
            "soft",
        ),
        ("transient-5.0.0", bounce("transient-5.0.0", "Transient", "General", &[(Some("5.0.0"), None)]), "soft"),
        ("undetermined", bounce("undetermined", "Undetermined", "Undetermined", &[(None, None)]), "undetermined"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_on_hard_and_suppressed_gets_exactly_the_dead_addresses_and_metrics_count_them() {
    let Some(aws) = Aws::connect("bounce-class").await else { return };
    let queue = aws.create_queue("in").await;
    let mut daemon = Daemon::new();
    let (dead, rest) = (daemon.path("dead.jsonl"), daemon.path("rest.jsonl"));
    let config = format!(
        "{}{}{}{}\n[[routes]]\nname = \"dead-addresses\"\nsinks = [\"dead\"]\n[routes.match]\nbounce_class = [\"hard\", \"suppressed\"]\n\n[[routes]]\nname = \"rest\"\nsinks = [\"rest\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        file_sink("dead", &dead),
        file_sink("rest", &rest),
    );
    daemon.start(&config);
    let base = format!("http://{}", listen_address(&daemon).await);

    let cases = cases();
    let mut bodies: Vec<String> = Vec::new();
    // Every case in every form, the id telling them apart.
    let mut expected: BTreeMap<String, &str> = BTreeMap::new();
    for (form, form_name) in ["bare", "sns", "eventbridge"].iter().enumerate() {
        for (id, record, class) in &cases {
            let mut record = record.clone();
            let id = format!("{id}-{form_name}");
            record["mail"]["messageId"] = json!(id);
            bodies.push(wrapped(&record, form));
            expected.insert(id, class);
        }
    }
    bodies.push(wrapped(&delivery("delivered"), 0));
    aws.send_all(&queue, &bodies).await;

    let total = bodies.len();
    eventually("every body in a sink", Duration::from_secs(30), async || {
        let n = lines(&dead).len() + lines(&rest).len();
        if n == total { Ok(()) } else { Err(format!("{n} of {total} lines")) }
    })
    .await;

    let classes = |path| -> BTreeMap<String, String> {
        lines(path)
            .iter()
            .filter(|l| l["kind"] == "bounce")
            .map(|l| {
                (
                    l["message_id"].as_str().expect("an id").to_owned(),
                    l["bounce_class"].as_str().unwrap_or("(none)").to_owned(),
                )
            })
            .collect()
    };
    let (got_dead, got_rest) = (classes(&dead), classes(&rest));
    for (id, class) in &expected {
        let dead_address = matches!(*class, "hard" | "suppressed");
        let (ours, other) = if dead_address { (&got_dead, &got_rest) } else { (&got_rest, &got_dead) };
        assert_eq!(ours.get(id).map(String::as_str), Some(*class), "{id}: dead {got_dead:?}, rest {got_rest:?}");
        assert!(!other.contains_key(id), "{id} went to both");
    }
    let delivered = lines(&rest).into_iter().find(|l| l["kind"] == "delivery").expect("the delivery");
    assert!(delivered.get("bounce_class").is_none(), "only bounces carry a class: {delivered}");
    let record = lines(&dead).into_iter().find(|l| l["message_id"] == "transient-dead-sns").expect("a record");
    assert_eq!(record["notification"]["bounce"]["bounceType"], "Transient", "SES's own fields stay as they are");

    let count = |class: &str| as_f64(expected.values().filter(|c| **c == class).count());
    let text = eventually("the counts in /metrics", Duration::from_secs(20), async || {
        let (_, text) = get(&format!("{base}/metrics")).await;
        let hard = metric(
            &text,
            "sesroute_notifications_total",
            &[("route", "dead-addresses"), ("kind", "bounce"), ("bounce_class", "hard")],
        );
        if hard == Some(count("hard")) { Ok(text) } else { Err(format!("hard: {hard:?}")) }
    })
    .await;
    let notifications = |route, kind, class: Option<&str>| {
        let mut labels = vec![("route", route), ("kind", kind)];
        labels.extend(class.map(|c| ("bounce_class", c)));
        metric(&text, "sesroute_notifications_total", &labels)
    };
    assert_eq!(notifications("dead-addresses", "bounce", Some("suppressed")), Some(count("suppressed")), "{text}");
    assert_eq!(notifications("rest", "bounce", Some("soft")), Some(count("soft")), "{text}");
    assert_eq!(notifications("rest", "bounce", Some("undetermined")), Some(count("undetermined")), "{text}");
    assert_eq!(notifications("rest", "delivery", None), Some(1.0), "{text}");
    // Exported at 0 from the start, so that a first one is a rise the rules see.
    assert_eq!(notifications("dead-addresses", "complaint", None), Some(0.0), "{text}");
    assert_eq!(notifications("dead-addresses", "send", None), Some(0.0), "{text}");
    assert_eq!(notifications("rest", "bounce", Some("hard")), Some(0.0), "the rest route saw no hard bounce: {text}");
    // Recipients: the delivery had two; the soft bounces one each.
    let recipients = |route, kind, class: Option<&str>| {
        let mut labels = vec![("route", route), ("kind", kind)];
        labels.extend(class.map(|c| ("bounce_class", c)));
        metric(&text, "sesroute_notification_recipients_total", &labels)
    };
    assert_eq!(recipients("rest", "delivery", None), Some(2.0), "{text}");
    assert_eq!(recipients("rest", "bounce", Some("soft")), Some(count("soft")), "{text}");
    // The three-recipient bounce counts three, in each of its three forms.
    let hard_recipients: f64 = cases
        .iter()
        .filter(|(_, _, class)| *class == "hard")
        .map(|(_, record, _)| as_f64(record["bounce"]["bouncedRecipients"].as_array().map_or(0, Vec::len)))
        .sum::<f64>()
        * 3.0;
    assert_eq!(recipients("dead-addresses", "bounce", Some("hard")), Some(hard_recipients), "{text}");
    daemon.stop().await;
}

fn as_f64(n: usize) -> f64 {
    f64::from(u32::try_from(n).expect("a small count"))
}
