//! Unwrapping a queue body: SNS envelope, raw delivery, `EventBridge` event.
//!
//! The body is parsed once into [`Body`], whose fields cover all three
//! shapes; the SES record inside (the SNS `Message` string, the `EventBridge`
//! `detail`) is parsed the same way and turned into a [`Notification`].

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::ses::{self, Body, Recipient};
use super::{
    Detail, Envelope, Ignored, Kind, Notification, ParseError, Parsed, SnsEnvelope, address,
};

/// The plain-text message SES publishes when an SNS event destination is created.
const VALIDATION_MESSAGE: &str =
    "Successfully validated SNS topic for Amazon SES event publishing.";

/// Understands one SQS message body.
pub fn parse(body: &str) -> Result<Parsed, ParseError> {
    let text = body.trim();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    if text == VALIDATION_MESSAGE {
        return Ok(Parsed::Ignored(Ignored::EventDestinationValidated));
    }
    let top = parse_object(text, "body")?;
    if top.sns_type.is_some() || (top.sns_message.is_some() && top.topic_arn.is_some()) {
        sns(top)
    } else if top.detail_type.is_some() || (top.detail.is_some() && top.source.is_some()) {
        eventbridge(&top)
    } else {
        record(top, text, Envelope::Raw)
    }
}

/// Parses a JSON object into [`Body`], explaining any failure.
fn parse_object<'a>(text: &'a str, what: &'static str) -> Result<Body<'a>, ParseError> {
    if !text.starts_with('{') {
        return Err(match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => ParseError::NotAnObject(json_type(&value)),
            Err(e) => ParseError::NotJson(e.to_string()),
        });
    }
    serde_json::from_str(text).map_err(|e| explain(text, what, &e))
}

/// Turns a failed typed parse into an error a person understands: either the
/// text is not JSON at all, or some field has the wrong type (found again with
/// a path-tracking parse, which is only paid for on failure).
fn explain(text: &str, what: &'static str, error: &serde_json::Error) -> ParseError {
    if error.is_syntax() || error.is_eof() {
        return ParseError::NotJson(error.to_string());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Body>(&mut de) {
        Err(e) => ParseError::Invalid {
            what,
            path: e.path().to_string(),
            reason: e.into_inner().to_string(),
        },
        Ok(_) => ParseError::Invalid {
            what,
            path: ".".into(),
            reason: error.to_string(),
        },
    }
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

fn sns(top: Body<'_>) -> Result<Parsed, ParseError> {
    match top.sns_type.as_deref().unwrap_or("Notification") {
        "Notification" => {}
        "SubscriptionConfirmation" => {
            return Ok(Parsed::Ignored(Ignored::SnsSubscriptionConfirmation));
        }
        "UnsubscribeConfirmation" => {
            return Ok(Parsed::Ignored(Ignored::SnsUnsubscribeConfirmation));
        }
        other => return Err(ParseError::UnknownSnsType(other.to_owned())),
    }
    let message = top.sns_message.ok_or(ParseError::SnsWithoutMessage)?;
    let envelope = Envelope::Sns(Box::new(SnsEnvelope {
        message_id: owned(top.sns_message_id),
        topic_arn: owned(top.topic_arn),
        subject: owned(top.subject),
        timestamp: owned(top.sns_timestamp),
        signature_version: owned(top.signature_version),
        signature: owned(top.signature),
        signing_cert_url: owned(top.signing_cert_url),
        unsubscribe_url: owned(top.unsubscribe_url),
    }));
    let text: Cow<'_, str> = match message.get().as_bytes().first() {
        // Some emulators put the SES JSON in `Message` as an object, not a string.
        Some(b'{') => Cow::Borrowed(message.get()),
        Some(b'"') => ses::json_string(message).map_err(|e| ParseError::Invalid {
            what: "SNS envelope",
            path: "Message".into(),
            reason: e.to_string(),
        })?,
        _ => return Err(ParseError::SnsMessageNotSes(excerpt(message.get()))),
    };
    let text = text.trim();
    if text == VALIDATION_MESSAGE {
        return Ok(Parsed::Ignored(Ignored::EventDestinationValidated));
    }
    if !text.starts_with('{') {
        return Err(ParseError::SnsMessageNotSes(excerpt(text)));
    }
    record(parse_object(text, "SNS Message")?, text, envelope)
}

fn eventbridge(top: &Body<'_>) -> Result<Parsed, ParseError> {
    let source = top.source.as_deref().unwrap_or_default();
    if source != "aws.ses" {
        return Err(ParseError::NotSesEventBridge(source.to_owned()));
    }
    let detail_type = top.detail_type.as_deref().unwrap_or_default();
    // SES's sending events are all "Email ..."; the bus also carries account
    // and tenant events (advisor, sending status) that are not feedback.
    let about_email = detail_type.starts_with("Email ");
    let detail: &RawValue = match top.detail {
        Some(detail) => detail,
        None if about_email => {
            return Err(ParseError::NotSes(format!(
                "EventBridge {detail_type:?} event has no detail"
            )));
        }
        None => {
            return Ok(Parsed::Ignored(Ignored::EventBridgeNotEmail(
                detail_type.to_owned(),
            )));
        }
    };
    let text = detail.get();
    let inner = match parse_object(text, "EventBridge detail") {
        Ok(inner) => inner,
        Err(e) if about_email => return Err(e),
        Err(_) => {
            return Ok(Parsed::Ignored(Ignored::EventBridgeNotEmail(
                detail_type.to_owned(),
            )));
        }
    };
    if !about_email
        && inner.event_type.is_none()
        && inner.notification_type.is_none()
        && inner.mail.is_none()
    {
        return Ok(Parsed::Ignored(Ignored::EventBridgeNotEmail(
            detail_type.to_owned(),
        )));
    }
    let envelope = Envelope::EventBridge {
        id: top.id.as_deref().map(str::to_owned),
        detail_type: Some(detail_type.to_owned()),
    };
    record(inner, text, envelope)
}

/// Turns an SES record (identity notification or event) into a [`Notification`].
fn record(body: Body<'_>, ses_json: &str, envelope: Envelope) -> Result<Parsed, ParseError> {
    let kind = match kind(&body)? {
        Ok(kind) => kind,
        Err(ignored) => return Ok(Parsed::Ignored(ignored)),
    };
    let mail = body.mail.ok_or(ParseError::MissingMail(kind))?;

    let recipients = match kind {
        Kind::Bounce => bare_recipients(body.bounce.as_ref().map(|b| &b.bounced_recipients[..])),
        Kind::Complaint => bare_recipients(
            body.complaint
                .as_ref()
                .map(|c| &c.complained_recipients[..]),
        ),
        Kind::DeliveryDelay => bare_recipients(
            body.delivery_delay
                .as_ref()
                .map(|d| &d.delayed_recipients[..]),
        ),
        Kind::Delivery => bare_all(
            body.delivery
                .as_ref()
                .map_or(&[][..], |d| &d.recipients[..]),
        ),
        _ => bare_all(&mail.destination),
    };
    let source = mail
        .source
        .as_deref()
        .and_then(address::bare)
        .or_else(|| {
            mail.common_headers
                .as_ref()?
                .from
                .iter()
                .find_map(|from| address::bare(from))
        })
        .or_else(|| address_identity(mail.source_arn.as_deref()?))
        .unwrap_or_default();
    let mut detail = Detail::default();
    if let Some(bounce) = body.bounce {
        detail.bounce_type = owned(bounce.bounce_type);
        detail.bounce_subtype = owned(bounce.bounce_sub_type);
        detail.feedback_id = owned(bounce.feedback_id);
    }
    if let Some(complaint) = body.complaint {
        detail.complaint_type = owned(complaint.complaint_feedback_type);
        detail.feedback_id = detail.feedback_id.or(owned(complaint.feedback_id));
    }
    let tags = mail
        .tags
        .into_iter()
        .flatten()
        .map(|(name, values)| {
            (
                name.into_owned(),
                values.0.into_iter().map(Cow::into_owned).collect(),
            )
        })
        .collect();

    Ok(Parsed::Notification(Box::new(Notification {
        kind,
        source,
        message_id: owned(mail.message_id).unwrap_or_default(),
        timestamp: owned(mail.timestamp),
        source_arn: owned(mail.source_arn),
        tags,
        recipients,
        detail,
        ses_json: ses_json.into(),
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
    if let Some(kind) = event_type
        .and_then(Kind::from_ses)
        .or_else(|| notification_type.and_then(Kind::from_ses))
    {
        return Ok(Ok(kind));
    }
    if let Some(event_type) = event_type {
        return Err(ParseError::UnknownEventType(event_type.to_owned()));
    }
    // Some emulators write a placeholder `notificationType`; the payload key
    // then says what the notification is, when exactly one is present.
    let payloads = [
        (body.bounce.is_some(), Kind::Bounce),
        (body.complaint.is_some(), Kind::Complaint),
        (body.delivery.is_some(), Kind::Delivery),
    ];
    let mut present = payloads
        .iter()
        .filter(|(present, _)| *present)
        .map(|(_, kind)| *kind);
    match (present.next(), present.next(), notification_type) {
        (Some(kind), None, Some(_)) => Ok(Ok(kind)),
        (Some(kind), None, None) if body.mail.is_some() => Ok(Ok(kind)),
        (_, _, Some(other)) => Err(ParseError::UnknownNotificationType(other.to_owned())),
        _ if body.receipt.is_some() && body.mail.is_some() => Ok(Err(Ignored::InboundMail)),
        _ => Err(ParseError::NotSes(
            "no notificationType, eventType, SNS Type or EventBridge source".to_owned(),
        )),
    }
}

fn bare_recipients(list: Option<&[Recipient<'_>]>) -> Vec<String> {
    list.unwrap_or_default()
        .iter()
        .filter_map(|r| address::bare(r.email_address.as_deref()?))
        .collect()
}

fn bare_all(list: &[Cow<'_, str>]) -> Vec<String> {
    list.iter().filter_map(|r| address::bare(r)).collect()
}

/// The address of an email-address identity ARN (`...:identity/a@b.test`).
fn address_identity(arn: &str) -> Option<String> {
    let (_, identity) = arn.rsplit_once(":identity/")?;
    identity
        .contains('@')
        .then(|| address::bare(identity))
        .flatten()
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// The start of a long text, for an error message.
fn excerpt(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
