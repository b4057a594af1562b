//! Hostile and oversized bodies through `sesroute route`: each one is routed
//! or is an error with a short reason, never a crash, and no reason quotes a
//! recipient address or a long piece of the body.

use serde_json::Value;

use crate::{Run, samples, sesroute, temp_file};

/// One decision for `body`, given as a single-document file.
fn route_one(body: impl AsRef<[u8]>) -> Value {
    let file = temp_file(".json", body);
    let run = Run::of(sesroute().args(["route", "--config"]).arg(samples().join("config.toml")).arg(file.path()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut decisions = run.decisions();
    assert_eq!(decisions.len(), 1, "{}", run.stdout);
    decisions.remove(0)
}

fn error_of(body: impl AsRef<[u8]>) -> String {
    let decision = route_one(body);
    decision["error"].as_str().unwrap_or_else(|| panic!("expected an error: {decision}")).to_owned()
}

const BOUNCE_HEAD: &str = r#"{"notificationType":"Bounce","mail":{"messageId":"m-1","source":"dev@dev.acme.test","destination":["x@y.test"]},"bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"x@y.test"}]}"#;

#[test]
fn deeply_nested_bodies_are_errors_at_any_depth_and_in_any_layer() {
    for depth in [200, 20_000, 1_000_000] {
        let nest = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let bare = format!("{BOUNCE_HEAD},\"x\":{nest}}}");
        let reason = error_of(&bare);
        assert!(reason.contains("nests deeper than"), "{depth}: {reason}");
        let sns = serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": bare});
        let reason = error_of(sns.to_string());
        assert!(reason.contains("nests deeper than"), "{depth} in an SNS Message: {reason}");
        let unclosed = "[".repeat(depth);
        assert!(!error_of(&unclosed).is_empty());
    }
}

#[test]
fn odd_content_is_routed_or_an_error_never_a_crash() {
    let bodies: Vec<Vec<u8>> = vec![
        format!("{BOUNCE_HEAD},\"x\":\"a\\u0000b\"}}").into_bytes(),
        format!("{BOUNCE_HEAD},\"x\":\"\\ud800\"}}").into_bytes(),
        format!("{BOUNCE_HEAD},\"x\":1e999999}}").into_bytes(),
        b"{\"notificationType\":\"Bounce\",\xff\xfe}".to_vec(),
        format!("{BOUNCE_HEAD},\"x\":\"{}\"}}", "y".repeat(200_000)).into_bytes(),
        format!(
            r#"{{"notificationType":"Delivery","mail":{{"messageId":"m","source":"dev@dev.acme.test","destination":[{}]}},"delivery":{{}}}}"#,
            (0..5_000).map(|i| format!("\"r{i}@y.test\"")).collect::<Vec<_>>().join(",")
        )
        .into_bytes(),
    ];
    for body in bodies {
        let decision = route_one(&body);
        let routed = decision.get("kind").is_some();
        let error = decision["error"].as_str().unwrap_or_default();
        assert!(routed || !error.is_empty(), "{decision}");
        assert!(error.len() < 300, "a short reason: {error}");
    }
}

#[test]
fn reasons_quote_no_address_and_no_long_piece_of_the_body() {
    let wrong_type = r#"{"notificationType":"Bounce","mail":{"messageId":"m","source":"dev@dev.acme.test"},"bounce":{"bouncedRecipients":"secret.person@customer.test"}}"#;
    let reason = error_of(wrong_type);
    assert!(!reason.contains("secret.person"), "{reason}");
    let long = format!(r#"{{"eventType":"{}","mail":{{}}}}"#, "B".repeat(10_000));
    let reason = error_of(&long);
    assert!(reason.contains("unknown eventType") && reason.len() < 200, "{reason}");
    let reason = error_of(r#"{"Type":"Notification","Message":"hello from secret.person@customer.test"}"#);
    assert!(!reason.contains("secret.person@customer.test"), "{reason}");
}
