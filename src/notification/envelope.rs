//! Unwrapping a queue body: SNS envelope, raw delivery, `EventBridge` event.
//!
//! The body is parsed once into [`Body`], whose fields cover all three
//! shapes; the SES record inside (the SNS `Message` string, the `EventBridge`
//! `detail`) is parsed the same way and turned into a [`Notification`].

use std::borrow::Cow;

use super::bounce::{classify, recipient_status};
use super::reason::{self, Echo};
use super::ses::{Body, MessageField, RawMessage, Recipient};
use super::{Detail, Envelope, Ignored, Kind, Notification, ParseError, Parsed, SnsEnvelope, address, depth};

/// The plain-text message SES publishes when an SNS event destination is created.
const VALIDATION_MESSAGE: &str = "Successfully validated SNS topic for Amazon SES event publishing.";

/// Understands one SQS message body.
///
/// The result borrows from `body` and, for an SNS envelope, from the decoded
/// `Message`, which is kept in `scratch` (pass an empty string; it is reused
/// as the storage, so nothing is copied).
pub fn parse<'a>(body: &'a str, scratch: &'a mut String) -> Result<Parsed<'a>, ParseError> {
    let text = trim(body);
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    if text == VALIDATION_MESSAGE {
        return Ok(Parsed::Ignored(Ignored::EventDestinationValidated));
    }
    let top = parse_object(text, "body")?;
    if top.sns_type.is_some() || (top.sns_message.is_some() && top.topic_arn.is_some()) {
        sns(text, top, scratch)
    } else if top.detail_type.is_some() || (top.detail.is_some() && top.source.is_some()) {
        eventbridge(top, scratch)
    } else {
        record(top, text, Envelope::Raw)
    }
}

/// A decoded string that borrows from the body, or else lives in `scratch`.
fn keep<'a>(text: Cow<'a, str>, scratch: &'a mut String) -> &'a str {
    match text {
        Cow::Borrowed(text) => text,
        Cow::Owned(text) => {
            *scratch = text;
            scratch.as_str()
        }
    }
}

/// Whitespace and a UTF-8 byte-order mark around a body mean nothing.
fn trim(text: &str) -> &str {
    text.trim().trim_start_matches('\u{feff}').trim_start()
}

/// Parses a JSON object into [`Body`], explaining any failure.
///
/// Every text a parser reads (the body, an SNS `Message`, an `EventBridge`
/// `detail`) comes through here, and is first held against the nesting limit.
fn parse_object<'a>(text: &'a str, what: &'static str) -> Result<Body<'a>, ParseError> {
    if let Some(at) = depth::too_deep(text, depth::MAX_DEPTH) {
        return Err(ParseError::TooDeep { what, at });
    }
    if !text.starts_with('{') {
        return Err(match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => ParseError::NotAnObject(json_type(&value)),
            Err(e) => ParseError::NotJson(reason::located(&e.to_string(), e.line(), e.column())),
        });
    }
    sonic_rs::from_str(text).map_err(|e| explain(text, what, &e))
}

/// Turns a failed typed parse into an error a person understands: either the
/// text is not JSON at all, or some field has the wrong type (found again with
/// a path-tracking parse, which is only paid for on failure). The parser's
/// quote of the value and its excerpt of the text are left out.
fn explain(text: &str, what: &'static str, error: &sonic_rs::Error) -> ParseError {
    if error.is_syntax() || error.is_eof() {
        return ParseError::NotJson(reason::located(&error.to_string(), error.line(), error.column()));
    }
    let mut de = sonic_rs::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Body>(&mut de) {
        Err(e) => ParseError::Invalid {
            what,
            path: path(e.path()),
            reason: reason::parser_message(&e.into_inner().to_string()),
        },
        Ok(_) => ParseError::Invalid { what, path: ".".into(), reason: reason::parser_message(&error.to_string()) },
    }
}

/// A path into the JSON (`bounce.bouncedRecipients[0]`); keys that come from
/// the input (tag names) are clipped and masked like any echo.
fn path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    use std::fmt::Write;

    let mut out = String::new();
    for segment in path {
        let separator = if out.is_empty() { "" } else { "." };
        // Writing to a String cannot fail.
        let _ = match segment {
            Segment::Seq { index } => write!(out, "[{index}]"),
            Segment::Map { key } => write!(out, "{separator}{}", reason::key(key)),
            Segment::Enum { variant } => write!(out, "{separator}{}", reason::key(variant)),
            Segment::Unknown => write!(out, "{separator}?"),
        };
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn sns<'a>(body: &'a str, top: Body<'a>, scratch: &'a mut String) -> Result<Parsed<'a>, ParseError> {
    match top.sns_type.as_deref().unwrap_or("Notification") {
        "Notification" => {}
        "SubscriptionConfirmation" => return Ok(Parsed::Ignored(Ignored::SnsSubscriptionConfirmation)),
        "UnsubscribeConfirmation" => return Ok(Parsed::Ignored(Ignored::SnsUnsubscribeConfirmation)),
        other => return Err(ParseError::UnknownSnsType(Echo::new(other))),
    }
    let envelope = Envelope::Sns(Box::new(SnsEnvelope {
        message_id: top.sns_message_id,
        topic_arn: top.topic_arn,
        subject: top.subject,
        timestamp: top.sns_timestamp,
        signature_version: top.signature_version,
        signature: top.signature,
        signing_cert_url: top.signing_cert_url,
        unsubscribe_url: top.unsubscribe_url,
    }));
    let text: &'a str = match top.sns_message.ok_or(ParseError::SnsWithoutMessage)? {
        MessageField::Text(text) => keep(text, scratch),
        // Some emulators put the SES JSON in `Message` as an object, not a string.
        MessageField::Object => {
            let raw: RawMessage<'a> = sonic_rs::from_str(body).map_err(|e| explain(body, "SNS envelope", &e))?;
            keep(raw.message.as_raw_cow(), scratch)
        }
        MessageField::Other => return Err(ParseError::NotSes("SNS Message is not a string or an object".to_owned())),
    };
    let text = trim(text);
    if text == VALIDATION_MESSAGE {
        return Ok(Parsed::Ignored(Ignored::EventDestinationValidated));
    }
    if !text.starts_with('{') {
        return Err(ParseError::SnsMessageNotSes(Echo::new(text)));
    }
    record(parse_object(text, "SNS Message")?, text, envelope)
}

fn eventbridge<'a>(top: Body<'a>, scratch: &'a mut String) -> Result<Parsed<'a>, ParseError> {
    let source = top.source.as_deref().unwrap_or_default();
    if source != "aws.ses" {
        return Err(ParseError::NotSesEventBridge(Echo::new(source)));
    }
    let detail_type = top.detail_type.unwrap_or_default();
    // SES's sending events are all "Email ..."; the bus also carries account
    // and tenant events (advisor, sending status) that are not feedback.
    let about_email = detail_type.starts_with("Email ");
    let not_email =
        |detail_type: Cow<'_, str>| Ok(Parsed::Ignored(Ignored::EventBridgeNotEmail(Echo::new(&detail_type))));
    let Some(detail) = top.detail else {
        if about_email {
            return Err(ParseError::NotSes(format!("EventBridge {} event has no detail", Echo::new(&detail_type))));
        }
        return not_email(detail_type);
    };
    let text = keep(detail.as_raw_cow(), scratch);
    let inner = match parse_object(text, "EventBridge detail") {
        Ok(inner) => inner,
        Err(e) if about_email => return Err(e),
        Err(_) => return not_email(detail_type),
    };
    if !about_email && inner.event_type.is_none() && inner.notification_type.is_none() && inner.mail.is_none() {
        return not_email(detail_type);
    }
    record(inner, text, Envelope::EventBridge { id: top.id, detail_type: Some(detail_type) })
}

/// Turns an SES record (identity notification or event) into a [`Notification`].
fn record<'a>(body: Body<'a>, ses_json: &'a str, envelope: Envelope<'a>) -> Result<Parsed<'a>, ParseError> {
    let kind = match kind(&body)? {
        Ok(kind) => kind,
        Err(ignored) => return Ok(Parsed::Ignored(ignored)),
    };
    let Body { mail, bounce, complaint, delivery, delivery_delay, .. } = body;
    let mail = mail.ok_or(ParseError::MissingMail(kind))?;

    let mut detail = Detail::default();
    let mut recipients = Vec::new();
    // A stray payload of another kind must not make, say, a delivery match a
    // `bounce_type` route: only the notification's own payload counts.
    if let Some(bounce) = bounce.filter(|_| kind == Kind::Bounce) {
        detail.bounce_type = bounce.bounce_type;
        detail.bounce_subtype = bounce.bounce_sub_type;
        detail.feedback_id = bounce.feedback_id;
        let codes = bounce
            .bounced_recipients
            .iter()
            .map(|r| recipient_status(r.status.as_deref(), r.diagnostic_code.as_deref()));
        detail.bounce_verdict = Some(classify(detail.bounce_type.as_deref(), detail.bounce_subtype.as_deref(), codes));
        recipients = bare_recipients(bounce.bounced_recipients);
    }
    if let Some(complaint) = complaint.filter(|_| kind == Kind::Complaint) {
        detail.complaint_type = complaint.complaint_feedback_type;
        detail.feedback_id = complaint.feedback_id;
        recipients = bare_recipients(complaint.complained_recipients);
    }
    if kind == Kind::Bounce && detail.bounce_verdict.is_none() {
        // A bounce without its payload still has a class: SES said nothing.
        detail.bounce_verdict = Some(classify(None, None, []));
    }
    match kind {
        Kind::Bounce | Kind::Complaint => {}
        Kind::Delivery => recipients = bare_all(delivery.map(|d| d.recipients).unwrap_or_default()),
        Kind::DeliveryDelay => {
            recipients = bare_recipients(delivery_delay.map(|d| d.delayed_recipients).unwrap_or_default());
        }
        _ => recipients = bare_all(mail.destination),
    }
    // Only `mail.source` names the sender routing matches on: without an
    // address there, the notification is routed with an empty source.
    let source = mail.source.and_then(address::bare_cow).unwrap_or_default();

    Ok(Parsed::Notification(Box::new(Notification {
        kind,
        source,
        message_id: mail.message_id.unwrap_or_default(),
        timestamp: mail.timestamp,
        source_arn: mail.source_arn,
        sending_account_id: mail.sending_account_id,
        tags: mail.tags.map(|t| t.0).unwrap_or_default(),
        recipients,
        detail,
        ses_json: Cow::Borrowed(ses_json),
        envelope,
    })))
}

/// Decides the kind from `eventType` / `notificationType`, or says why the
/// record is ignored.
fn kind(body: &Body<'_>) -> Result<Result<Kind, Ignored>, ParseError> {
    let notification_type = body.notification_type.as_deref();
    let event_type = body.event_type.as_deref();
    if notification_type == Some("AmazonSnsSubscriptionSucceeded") {
        return Ok(Err(Ignored::SubscriptionSucceeded));
    }
    if notification_type == Some("Received") || event_type == Some("Received") {
        return Ok(Err(Ignored::InboundMail));
    }
    if let Some(kind) = event_type.and_then(Kind::from_ses).or_else(|| notification_type.and_then(Kind::from_ses)) {
        return Ok(Ok(kind));
    }
    if let Some(event_type) = event_type {
        return Err(ParseError::UnknownEventType(Echo::new(event_type)));
    }
    // Some emulators write a placeholder `notificationType`; the payload key
    // then says what the notification is, when exactly one is present.
    let payloads = [
        (body.bounce.is_some(), Kind::Bounce),
        (body.complaint.is_some(), Kind::Complaint),
        (body.delivery.is_some(), Kind::Delivery),
    ];
    let mut present = payloads.iter().filter(|(present, _)| *present).map(|(_, kind)| *kind);
    match (present.next(), present.next(), notification_type) {
        (Some(kind), None, Some(_)) => Ok(Ok(kind)),
        (Some(kind), None, None) if body.mail.is_some() => Ok(Ok(kind)),
        (_, _, Some(other)) => Err(ParseError::UnknownNotificationType(Echo::new(other))),
        _ if body.receipt.is_some() && body.mail.is_some() => Ok(Err(Ignored::InboundMail)),
        _ if body.mail.is_some() => {
            Err(ParseError::NotSes("a mail object without notificationType or eventType".to_owned()))
        }
        _ => Err(ParseError::NotSes("no notificationType, eventType, SNS Type or EventBridge source".to_owned())),
    }
}

fn bare_recipients(list: Vec<Recipient<'_>>) -> Vec<Cow<'_, str>> {
    list.into_iter().filter_map(|r| address::bare_cow(r.email_address?)).collect()
}

fn bare_all(list: Vec<Cow<'_, str>>) -> Vec<Cow<'_, str>> {
    list.into_iter().filter_map(address::bare_cow).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> Result<Parsed<'static>, ParseError> {
        let mut scratch = String::new();
        parse(body, &mut scratch).map(|p| match p {
            Parsed::Notification(n) => Parsed::Notification(Box::new(n.into_owned())),
            Parsed::Ignored(i) => Parsed::Ignored(i),
        })
    }

    fn notification(body: &str) -> Notification<'static> {
        match parsed(body) {
            Ok(Parsed::Notification(n)) => *n,
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    const BOUNCE: &str = r#"{"notificationType":"Bounce","mail":{"messageId":"m-1","source":"A <Billing@Acme.test>","destination":["x@y.test","z@y.test"]},"bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"Z@y.test"}]}}"#;

    #[test]
    fn a_bare_record_is_read_with_its_fields() {
        let n = notification(BOUNCE);
        assert_eq!(n.kind, Kind::Bounce);
        assert_eq!(n.source, "billing@acme.test");
        assert_eq!(n.message_id, "m-1");
        assert_eq!(n.recipients, ["z@y.test"]);
        assert_eq!(n.detail.bounce_type.as_deref(), Some("Permanent"));
        assert_eq!(n.envelope, Envelope::Raw);
        assert_eq!(n.ses_json, BOUNCE);
    }

    #[test]
    fn an_sns_envelope_is_unwrapped_and_its_fields_kept() {
        let message = serde_json::to_string(&format!("{BOUNCE}\n")).unwrap();
        let body = format!(
            r#"{{"Type":"Notification","MessageId":"sns-1","TopicArn":"arn:aws:sns:eu-west-1:1:t","Message":{message},"SignatureVersion":"2","SigningCertUrl":"https://sns.eu-west-1.amazonaws.com/x.pem"}}"#
        );
        let n = notification(&body);
        assert_eq!(n.message_id, "m-1");
        assert_eq!(n.ses_json, BOUNCE, "the Message, trimmed, is the SES JSON");
        assert_eq!(n.topic_arn(), Some("arn:aws:sns:eu-west-1:1:t"));
        let Envelope::Sns(sns) = &n.envelope else { panic!("not an SNS envelope") };
        assert_eq!(sns.signing_cert_url.as_deref(), Some("https://sns.eu-west-1.amazonaws.com/x.pem"));
        assert_eq!(sns.signature_version.as_deref(), Some("2"));
    }

    #[test]
    fn a_message_given_as_an_object_is_accepted() {
        let body = format!(r#"{{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":{BOUNCE}}}"#);
        let n = notification(&body);
        assert_eq!(n.kind, Kind::Bounce);
        assert_eq!(n.ses_json, BOUNCE);
    }

    #[test]
    fn a_placeholder_notification_type_takes_the_payloads_kind() {
        let body = BOUNCE.replace(r#""Bounce","mail""#, r#""Bounce, Complaint, or Delivery.","mail""#);
        assert_eq!(notification(&body).kind, Kind::Bounce);
    }

    #[test]
    fn event_types_are_read_in_every_spelling() {
        for (event_type, kind) in
            [("Rendering Failure", Kind::RenderingFailure), ("DeliveryDelay", Kind::DeliveryDelay)]
        {
            let body = format!(r#"{{"eventType":"{event_type}","mail":{{"messageId":"m","source":"a@b.test"}}}}"#);
            assert_eq!(notification(&body).kind, kind);
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let error = |body: &str| parsed(body).unwrap_err().to_string();
        assert_eq!(error("  "), "empty body");
        assert!(error("[1]").contains("array"));
        assert!(error("{").starts_with("not JSON"));
        assert!(error(r#"{"eventType":"Bounced","mail":{}}"#).contains("unknown eventType \"Bounced\""));
        assert!(error(r#"{"notificationType":"Bounce"}"#).contains("no mail object"));
        let wrong_type = error(r#"{"notificationType":"Bounce","mail":{},"bounce":"x"}"#);
        assert!(wrong_type.contains("at bounce"), "{wrong_type}");
        assert!(error(r#"{"Type":"Notification","Message":"Hello world!"}"#).contains("Hello world!"));
    }

    #[test]
    fn setup_and_confirmation_messages_are_ignored() {
        let ignored = |body: &str| matches!(parsed(body), Ok(Parsed::Ignored(_)));
        assert!(ignored("Successfully validated SNS topic for Amazon SES event publishing."));
        assert!(ignored(r#"{"Type":"SubscriptionConfirmation","Message":"confirm"}"#));
        assert!(ignored(r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"ok"}"#));
        assert!(ignored(r#"{"source":"aws.ses","detail-type":"Sending Status Enabled","detail":{"data":{}}}"#));
    }
}
