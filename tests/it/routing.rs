//! The contract's routing rules, one test each, from TOML snippets such as
//! users write and small inline SES bodies; then the parser's leniencies and
//! the bodies it must refuse.

use serde_json::{Value, json};

use crate::{route_on, route_one};

/// A `mail` object sent by `source` to two recipients, without tags or `sourceArn`.
fn mail_from(source: &str) -> Value {
    json!({
        "timestamp": "2025-10-14T09:30:00.004Z",
        "messageId": "0102-test-message",
        "source": source,
        "destination": ["a@example.net", "b@example.net"],
    })
}

/// A bare SES record: `type_key` is `notificationType` or `eventType`, and
/// `payload` (when given) its kind's object, such as `("bounce", {...})`.
fn record(type_key: &str, type_name: &str, mail: Value, payload: Option<(&str, Value)>) -> String {
    let mut record = json!({ type_key: type_name });
    record["mail"] = mail;
    if let Some((key, value)) = payload {
        record[key] = value;
    }
    record.to_string()
}

/// A bounce notification of `bounce_type` from `source`; only b@example.net bounced.
fn bounce(source: &str, bounce_type: &str) -> String {
    let payload = json!({
        "bounceType": bounce_type,
        "bounceSubType": "General",
        "bouncedRecipients": [{ "emailAddress": "b@example.net" }],
    });
    record("notificationType", "Bounce", mail_from(source), Some(("bounce", payload)))
}

/// A complaint notification from `source`, without a feedback type; about b@example.net.
fn complaint(source: &str) -> String {
    let payload = json!({ "complainedRecipients": [{ "emailAddress": "b@example.net" }] });
    record("notificationType", "Complaint", mail_from(source), Some(("complaint", payload)))
}

/// A delivery notification from `source`, delivered to b@example.net.
fn delivery(source: &str) -> String {
    let payload = json!({ "recipients": ["b@example.net"] });
    record("notificationType", "Delivery", mail_from(source), Some(("delivery", payload)))
}

/// A send event with this `mail`.
fn send(mail: Value) -> String {
    record("eventType", "Send", mail, Some(("send", json!({}))))
}

/// `mail_from(source)` with these `mail.tags`.
fn tagged(source: &str, tags: Value) -> Value {
    let mut mail = mail_from(source);
    mail["tags"] = tags;
    mail
}

/// Whether a route whose `[routes.match]` holds `match_toml` takes `body`.
fn takes(match_toml: &str, body: &str) -> bool {
    takes_on(None, match_toml, body)
}

fn takes_on(queue: Option<&str>, match_toml: &str, body: &str) -> bool {
    let toml = format!(
        r#"
sinks = {{ team = {{ type = "log" }} }}

[[routes]]
name = "team"
sinks = ["team"]

[routes.match]
{match_toml}
"#
    );
    let decision = route_on(queue, &toml, body);
    assert!(decision.get("kind").is_some(), "not feedback: {decision}");
    decision["routes"] == json!(["team"])
}

#[test]
fn the_first_matching_route_takes_the_notification() {
    let config = r#"
sinks = { bounces = { type = "log" }, acme = { type = "log" }, archive = { type = "log" } }

[[routes]]
name = "bounces"
sinks = ["bounces"]
[routes.match]
kind = ["bounce"]

[[routes]]
name = "acme"
sinks = ["acme"]
[routes.match]
source = ["*@acme.test"]

[[routes]]
name = "archive"
sinks = ["archive"]
"#;
    let decision = route_one(config, &bounce("billing@acme.test", "Permanent"));
    assert_eq!(decision["routes"], json!(["bounces"]));
    assert_eq!(decision["sinks"], json!(["bounces"]));
    let decision = route_one(config, &delivery("billing@acme.test"));
    assert_eq!(decision["routes"], json!(["acme"]));
    let decision = route_one(config, &delivery("someone@example.com"));
    assert_eq!(decision["routes"], json!(["archive"]));
}

#[test]
fn continue_collects_the_sinks_of_every_matching_route_each_once_in_route_order() {
    let config = r#"
sinks = { a = { type = "log" }, b = { type = "log" }, c = { type = "log" }, d = { type = "log" } }

[[routes]]
name = "copy"
sinks = ["b", "a"]
continue = true

[[routes]]
name = "complaints"
sinks = ["d"]
continue = true
[routes.match]
kind = ["complaint"]

[[routes]]
name = "also"
sinks = ["a", "c"]
continue = true

[[routes]]
name = "last"
sinks = ["c", "b"]

[[routes]]
name = "never"
sinks = ["d"]
"#;
    let decision = route_one(config, &bounce("billing@acme.test", "Transient"));
    assert_eq!(decision["routes"], json!(["copy", "also", "last"]));
    assert_eq!(decision["sinks"], json!(["b", "a", "c"]));
    let decision = route_one(config, &complaint("billing@acme.test"));
    assert_eq!(decision["routes"], json!(["copy", "complaints", "also", "last"]));
    assert_eq!(decision["sinks"], json!(["b", "a", "d", "c"]));
}

#[test]
fn every_key_must_hold_and_any_pattern_of_a_key_may() {
    let both = r#"
source = ["billing@acme.test", "alerts@acme.test"]
kind = ["bounce", "complaint"]
"#;
    assert!(takes(both, &bounce("alerts@acme.test", "Permanent")));
    assert!(takes(both, &complaint("billing@acme.test")));
    assert!(!takes(both, &delivery("billing@acme.test")), "kind does not hold");
    assert!(!takes(both, &bounce("receipts@acme.test", "Permanent")), "source does not hold");
}

#[test]
fn a_key_whose_field_is_absent_does_not_hold() {
    let plain = send(mail_from("billing@acme.test"));
    assert!(!takes(r#"bounce_type = ["*"]"#, &delivery("billing@acme.test")));
    assert!(!takes(r#"bounce_subtype = ["*"]"#, &plain));
    assert!(!takes(r#"complaint_type = ["*"]"#, &complaint("billing@acme.test")));
    assert!(!takes(r#"identity = ["*"]"#, &plain));
    assert!(!takes(r#"configuration_set = ["*"]"#, &plain));
    assert!(!takes(r#"topic = ["*"]"#, &plain));
    assert!(!takes(r#"tags = { team = ["*"] }"#, &plain));
    assert!(!takes_on(None, r#"queue = ["*"]"#, &plain));
    // The same keys hold once the field is there.
    assert!(takes(r#"bounce_type = ["*"]"#, &bounce("billing@acme.test", "Permanent")));
    assert!(takes_on(Some("events"), r#"queue = ["*"]"#, &plain));
}

#[test]
fn bounce_and_complaint_keys_never_match_another_kind() {
    let mut body: Value = serde_json::from_str(&delivery("billing@acme.test")).unwrap();
    body["bounce"] = json!({ "bounceType": "Permanent", "bounceSubType": "General" });
    body["complaint"] = json!({ "complaintFeedbackType": "abuse" });
    let body = body.to_string();
    assert_eq!(route_one("", &body)["kind"], "delivery");
    assert!(!takes(r#"bounce_type = ["Permanent"]"#, &body));
    assert!(!takes(r#"bounce_subtype = ["General"]"#, &body));
    assert!(!takes(r#"complaint_type = ["abuse"]"#, &body));
}

#[test]
fn star_matches_any_run_also_dots_ats_and_nothing() {
    let from = |source: &str| send(mail_from(source));
    for (pattern, source, holds) in [
        ("*@acme.test", "billing@acme.test", true),
        ("*@acme.test", "ci@dev.acme.test", false),
        ("*acme.test", "ci@dev.acme.test", true),
        ("ci*test", "ci@dev.acme.test", true),
        ("billing*@acme.test", "billing@acme.test", true),
        ("*", "billing@acme.test", true),
    ] {
        let match_toml = format!("source = [{pattern:?}]");
        assert_eq!(takes(&match_toml, &from(source)), holds, "{pattern} on {source}");
    }
    let empty_tag = send(tagged("billing@acme.test", json!({ "team": [""] })));
    assert!(takes(r#"tags = { team = ["*"] }"#, &empty_tag));
}

#[test]
fn question_mark_matches_exactly_one_character() {
    let from = |source: &str| send(mail_from(source));
    for (source, holds) in
        [("bot@acme.test", true), ("bat@acme.test", true), ("bt@acme.test", false), ("boot@acme.test", false)]
    {
        assert_eq!(takes(r#"source = ["b?t@acme.test"]"#, &from(source)), holds, "{source}");
    }
    let umlaut = send(tagged("billing@acme.test", json!({ "owner": ["jürgen"] })));
    assert!(takes(r#"tags = { owner = ["j?rgen"] }"#, &umlaut));
}

#[test]
fn brackets_braces_and_backslash_are_literal() {
    let team = |value: &str| send(tagged("billing@acme.test", json!({ "team": [value] })));
    for (pattern, value, holds) in [
        (r"[ops]{eu}\1", r"[OPS]{eu}\1", true),
        ("[a-z]", "b", false),
        ("[a-z]", "[A-Z]", true),
        ("{a,b}", "a", false),
        ("{a,b}", "{a,b}", true),
        (r"\*", "*", false),
        (r"\*", r"\anything", true),
    ] {
        let match_toml = format!("[routes.match.tags]\nteam = ['{pattern}']");
        assert_eq!(takes(&match_toml, &team(value)), holds, "{pattern} on {value}");
    }
}

#[test]
fn matching_ignores_case() {
    assert!(takes(r#"source = ["*@DEV.Acme.TEST"]"#, &send(mail_from("ci@dev.acme.test"))));
    assert!(takes(r#"source = ["build-bot@dev.acme.test"]"#, &send(mail_from("Build-Bot@DEV.Acme.Test"))));
    assert!(takes(r#"bounce_type = ["PERMANENT"]"#, &bounce("billing@acme.test", "Permanent")));
}

#[test]
fn kind_accepts_the_contract_and_ses_spellings() {
    let rendering_failure = record(
        "eventType",
        "Rendering Failure",
        mail_from("receipts@acme.test"),
        Some(("failure", json!({ "templateName": "receipt", "errorMessage": "x" }))),
    );
    let delay = record(
        "eventType",
        "DeliveryDelay",
        mail_from("alerts@acme.test"),
        Some(("deliveryDelay", json!({ "delayType": "TransientCommunicationFailure" }))),
    );
    for pattern in ["Rendering Failure", "rendering-failure", "RENDERING FAILURE"] {
        let match_toml = format!("kind = [{pattern:?}]");
        assert!(takes(&match_toml, &rendering_failure), "{pattern}");
        assert!(!takes(&match_toml, &delay), "{pattern}");
    }
    for pattern in ["DeliveryDelay", "delivery-delay"] {
        let match_toml = format!("kind = [{pattern:?}]");
        assert!(takes(&match_toml, &delay), "{pattern}");
        assert!(!takes(&match_toml, &rendering_failure), "{pattern}");
    }
    assert_eq!(route_one("", &rendering_failure)["kind"], "rendering-failure");
    assert_eq!(route_one("", &delay)["kind"], "delivery-delay");
}

#[test]
fn tag_names_are_exact_and_tag_values_ignore_case() {
    let payments = send(tagged("billing@acme.test", json!({ "team": ["Payments"] })));
    assert!(takes("[routes.match.tags]\nteam = [\"payments\"]", &payments));
    assert!(!takes("[routes.match.tags]\nTeam = [\"payments\"]", &payments));
    assert!(!takes("[routes.match.tags]\nteam = [\"shipping\"]", &payments));
}

#[test]
fn recipient_is_the_affected_recipients_of_each_kind() {
    let only_b = |kind: &str, key: &str, payload: Value| {
        record("eventType", kind, mail_from("alerts@acme.test"), Some((key, payload)))
    };
    let affected_b = [
        bounce("alerts@acme.test", "Permanent"),
        complaint("alerts@acme.test"),
        delivery("alerts@acme.test"),
        only_b("DeliveryDelay", "deliveryDelay", json!({ "delayedRecipients": [{ "emailAddress": "b@example.net" }] })),
    ];
    for body in &affected_b {
        assert!(takes(r#"recipient = ["b@example.net"]"#, body), "{body}");
        assert!(!takes(r#"recipient = ["a@example.net"]"#, body), "{body}");
    }
    // The other kinds have no list of their own: mail.destination is used.
    let to_both = [
        send(mail_from("alerts@acme.test")),
        only_b("Open", "open", json!({ "ipAddress": "192.0.2.1" })),
        only_b("Reject", "reject", json!({ "reason": "Bad content" })),
    ];
    for body in &to_both {
        assert!(takes(r#"recipient = ["a@example.net"]"#, body), "{body}");
        assert!(takes(r#"recipient = ["b@example.net"]"#, body), "{body}");
        assert!(!takes(r#"recipient = ["c@example.net"]"#, body), "{body}");
    }
}

#[test]
fn recipients_with_a_display_name_are_taken_bare() {
    let bounced = record(
        "notificationType",
        "Bounce",
        mail_from("alerts@acme.test"),
        Some((
            "bounce",
            json!({
                "bounceType": "Permanent",
                "bouncedRecipients": [{ "emailAddress": "Jane Doe <Jane@Example.org>" }],
            }),
        )),
    );
    assert!(takes(r#"recipient = ["jane@example.org"]"#, &bounced));
    let mut mail = mail_from("alerts@acme.test");
    mail["destination"] = json!(["\"Doe, Mary\" <mary@example.org>"]);
    assert!(takes(r#"recipient = ["mary@example.org"]"#, &send(mail)));
}

#[test]
fn identity_matches_mail_source_arn() {
    let mut mail = mail_from("billing@acme.test");
    mail["sourceArn"] = json!("arn:aws:ses:eu-west-1:111122223333:identity/acme.test");
    let body = send(mail);
    assert!(takes(r#"identity = ["arn:aws:ses:*:*:identity/acme.test"]"#, &body));
    assert!(!takes(r#"identity = ["arn:aws:ses:*:*:identity/example.com"]"#, &body));
}

#[test]
fn configuration_set_matches_the_ses_configuration_set_tag() {
    let newsletter = send(tagged(
        "letters@acme.test",
        json!({ "ses:configuration-set": ["newsletter-weekly"], "configuration-set": ["other"] }),
    ));
    assert!(takes(r#"configuration_set = ["newsletter-*"]"#, &newsletter));
    assert!(!takes(r#"configuration_set = ["other"]"#, &newsletter));
    let untagged_name = send(tagged("letters@acme.test", json!({ "configuration-set": ["newsletter-weekly"] })));
    assert!(!takes(r#"configuration_set = ["newsletter-*"]"#, &untagged_name));
}

#[test]
fn topic_matches_the_sns_topic_only_when_enveloped() {
    let bare = bounce("billing@acme.test", "Permanent");
    let enveloped = json!({
        "Type": "Notification",
        "MessageId": "9b2f0ac1-2c4d-4c53-9a55-6a0b3d1f2e11",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:ses-bounces",
        "Message": bare,
    })
    .to_string();
    let eventbridge = json!({
        "source": "aws.ses",
        "detail-type": "Email Bounced",
        "resources": ["arn:aws:sns:eu-west-1:111122223333:ses-bounces"],
        "detail": serde_json::from_str::<Value>(&bare).unwrap(),
    })
    .to_string();
    let topic = r#"topic = ["arn:aws:sns:*:*:ses-bounces"]"#;
    assert!(takes(topic, &enveloped));
    assert!(!takes(r#"topic = ["arn:aws:sns:*:*:ses-complaints"]"#, &enveloped));
    assert!(!takes(topic, &bare));
    assert!(!takes(topic, &eventbridge));
}

#[test]
fn queue_matches_the_source_the_body_arrived_on() {
    let body = delivery("alerts@acme.test");
    assert!(takes_on(Some("events"), r#"queue = ["events"]"#, &body));
    assert!(!takes_on(Some("feedback"), r#"queue = ["events"]"#, &body));
    assert!(!takes_on(None, r#"queue = ["events"]"#, &body));
}

#[test]
fn a_notification_no_route_matches_is_unrouted() {
    let config = r#"
sinks = { support = { type = "log" } }

[[routes]]
name = "complaints"
sinks = ["support"]
[routes.match]
kind = ["complaint"]
"#;
    let decision = route_one(config, &bounce("billing@acme.test", "Permanent"));
    assert_eq!(decision["kind"], "bounce");
    assert_eq!(decision["routes"], json!([]));
    assert_eq!(decision["sinks"], json!([]));
}

#[test]
fn a_route_without_match_matches_everything() {
    let config = r#"
sinks = { archive = { type = "log" } }

[[routes]]
name = "archive"
sinks = ["archive"]
"#;
    let mut bare = mail_from("");
    bare.as_object_mut().unwrap().remove("source");
    for body in [
        bounce("billing@acme.test", "Transient"),
        complaint("x@example.com"),
        delivery("alerts@acme.test"),
        send(tagged("billing@acme.test", json!({ "team": ["x"] }))),
        send(bare),
    ] {
        assert_eq!(route_one(config, &body)["routes"], json!(["archive"]), "{body}");
    }
}

// The parser: leniencies the contract asks for, and what must be refused.

/// The decision for `body` under a catch-all config.
fn outcome(body: &str) -> Value {
    let config = r#"
sinks = { all = { type = "log" } }

[[routes]]
name = "all"
sinks = ["all"]
"#;
    route_one(config, body)
}

fn assert_error(body: &str) {
    let decision = outcome(body);
    assert!(decision["error"].is_string(), "{body}\n=> {decision}");
}

fn assert_ignored(body: &str) {
    let decision = outcome(body);
    assert!(decision["ignored"].is_string(), "{body}\n=> {decision}");
}

#[test]
fn an_envelope_whose_message_is_an_object_is_understood() {
    let record = bounce("billing@acme.test", "Permanent");
    let envelope = |message: Value| {
        json!({
            "Type": "Notification",
            "TopicArn": "arn:aws:sns:eu-west-1:111122223333:ses-bounces",
            "Message": message,
        })
        .to_string()
    };
    let as_string = outcome(&envelope(json!(record)));
    let as_object = outcome(&envelope(serde_json::from_str(&record).unwrap()));
    assert_eq!(as_string["kind"], "bounce");
    assert_eq!(as_object, as_string);
}

#[test]
fn an_unknown_notification_type_with_one_payload_takes_the_payload_kind() {
    let mail = mail_from("billing@acme.test");
    let with = |payloads: &[(&str, Value)]| {
        let mut body = json!({ "notificationType": "Notification", "mail": mail });
        for (key, value) in payloads {
            body[*key] = value.clone();
        }
        body.to_string()
    };
    let bounce = ("bounce", json!({ "bounceType": "Permanent" }));
    let complaint = ("complaint", json!({ "complaintFeedbackType": "abuse" }));
    let delivery = ("delivery", json!({ "recipients": ["a@example.net"] }));
    assert_eq!(outcome(&with(std::slice::from_ref(&bounce)))["kind"], "bounce");
    assert_eq!(outcome(&with(std::slice::from_ref(&complaint)))["kind"], "complaint");
    assert_eq!(outcome(&with(&[delivery]))["kind"], "delivery");
    assert_error(&with(&[bounce, complaint]));
    assert_error(&with(&[]));
}

#[test]
fn an_odd_timestamp_is_never_an_error() {
    for timestamp in [
        "2025-10-15T22:41:09 +0000",
        "Tue, 14 Oct 2025 09:30:00 +0000",
        "2009-12-03T04:24:21.000-05:00",
        "yesterday",
        "",
    ] {
        let mut mail = mail_from("billing@acme.test");
        mail["timestamp"] = json!(timestamp);
        let body = record(
            "notificationType",
            "Bounce",
            mail,
            Some(("bounce", json!({ "bounceType": "Permanent", "timestamp": timestamp }))),
        );
        assert_eq!(outcome(&body)["kind"], "bounce", "{timestamp:?}");
    }
}

#[test]
fn a_timestamp_written_as_a_number_is_never_an_error() {
    for timestamp in [json!(1_760_434_200_004_u64), json!(1_760_434_200.5)] {
        let mut mail = mail_from("billing@acme.test");
        mail["timestamp"] = timestamp.clone();
        let body = record(
            "notificationType",
            "Bounce",
            mail,
            Some(("bounce", json!({ "bounceType": "Permanent", "timestamp": timestamp }))),
        );
        assert_eq!(outcome(&body)["kind"], "bounce", "{timestamp}");
    }
}

#[test]
fn bodies_that_are_valid_but_not_feedback_are_ignored() {
    let mut received = mail_from("someone@example.org");
    received["destination"] = json!(["replies@acme.test"]);
    for body in [
        "Successfully validated SNS topic for Amazon SES event publishing.".to_owned(),
        json!({
            "notificationType": "AmazonSnsSubscriptionSucceeded",
            "message": "You have successfully subscribed your Amazon SNS topic to receive 'Bounce' notifications.",
        })
        .to_string(),
        record("notificationType", "Received", received, Some(("receipt", json!({})))),
        json!({
            "version": "0",
            "id": "0bbf1c9e-0b5c-4bd1-a0a0-2f3f5d4d3c11",
            "detail-type": "Sending Status Disabled",
            "source": "aws.ses",
            "detail": { "tenant": "acme" },
        })
        .to_string(),
    ] {
        assert_ignored(&body);
    }
}

#[test]
fn a_payload_of_the_wrong_json_type_is_an_error() {
    let body = record("notificationType", "Bounce", mail_from("billing@acme.test"), Some(("bounce", json!("x"))));
    assert_error(&body);
}

#[test]
fn bodies_that_are_not_ses_feedback_are_errors() {
    for body in [
        String::new(),
        "not json".to_owned(),
        "[1, 2]".to_owned(),
        json!({ "Records": [{ "eventSource": "aws:s3" }] }).to_string(),
        record("eventType", "Bounced", mail_from("billing@acme.test"), None),
        record("notificationType", "Bounced", mail_from("billing@acme.test"), None),
        json!({ "notificationType": "Bounce", "bounce": { "bounceType": "Permanent" } }).to_string(),
        json!({ "source": "aws.s3", "detail-type": "Object Created", "detail": {} }).to_string(),
    ] {
        assert_error(&body);
    }
}
