//! A notification as a person reads it: what happened, when, from which
//! sender, to whom, and why. The email and Slack sinks render these.
//!
//! Routing needs only a few fields, so [`Notification`] keeps only those; the
//! rest (per-recipient status and diagnostic code, the subject, a reject
//! reason) is read by [`Notification::details`], with the parser's own wire
//! types, once per delivery to a people sink.
//!
//! Every field of a report is cut to a length a person can read (see the
//! `MAX_*` limits below), whatever the notification carries: a 150 KB
//! diagnostic code or a thousand recipients make an email, a digest row or
//! a Slack message of ordinary size, and a digest that waits for its window
//! keeps only these short reports in memory.

use std::borrow::Cow;

use serde::Serialize;

use super::Origin;
use crate::notification::address;
use crate::notification::bounce::BounceClass;
use crate::notification::ses::Details;
use crate::notification::{Kind, Notification};
use crate::text::clip;

/// A diagnostic code, a reason (an SMTP answer is a line; SES quotes whole
/// remote answers).
pub const MAX_DIAGNOSTIC_CHARS: usize = 1000;
/// The sent mail's subject line.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// An address, a time, a status, a bounce or complaint type, a message id.
pub const MAX_FIELD_CHARS: usize = 256;
/// Recipients a report lists; the rest are counted in `omitted_recipients`.
pub const MAX_RECIPIENTS: usize = 50;

/// One notification, owned and ready for a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `bounce`, `complaint`, `delivery-delay`, ...
    pub kind: &'static str,
    /// A short headline: "Permanent bounce (General)", "Complaint (abuse)", ...
    pub headline: String,
    /// When it happened, as SES wrote it (the event's own time, else the mail's).
    pub time: String,
    /// The bare sender address; empty when SES gave none.
    pub sender: String,
    /// The part of `sender` after the `@`.
    pub sender_domain: String,
    /// The sent mail's subject line, when SES included the headers.
    pub subject: Option<String>,
    /// SES's message id of the sent mail.
    pub message_id: String,
    /// The recipients this is about, with what their servers said: the first
    /// [`MAX_RECIPIENTS`].
    pub recipients: Vec<RecipientReport>,
    /// Affected recipients not listed in `recipients`.
    pub omitted_recipients: usize,
    pub bounce_type: Option<String>,
    pub bounce_subtype: Option<String>,
    /// A bounce's class (`hard`, `suppressed`, `soft`, `undetermined`).
    pub bounce_class: Option<&'static str>,
    /// The class in words, and why when it differs from SES's type:
    /// "hard: SES says Transient/General, but 5.1.1 no such mailbox: ...".
    pub bounce_class_text: Option<String>,
    pub complaint_type: Option<String>,
    /// Why, when the event says so and no recipient does: a reject reason, a
    /// rendering error, a delay type, a clicked link.
    pub reason: Option<String>,
    /// The routes that sent it here.
    pub routes: Vec<String>,
    /// The `[[sources]]` name it was received from.
    pub queue: String,
}

/// One affected recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientReport {
    pub address: String,
    /// The DSN status, such as `5.1.1`.
    pub status: Option<String>,
    /// The remote server's answer, such as `smtp; 550 5.1.1 user unknown`.
    pub diagnostic_code: Option<String>,
}

impl Report {
    pub fn new(origin: Origin<'_>, notification: &Notification<'_>, routes: &[&str]) -> Report {
        let details = notification.details();
        let sender = notification.source.to_string();
        let sender_domain = sender.rsplit_once('@').map(|(_, domain)| domain.to_owned()).unwrap_or_default();
        let detail = &notification.detail;
        let owned = |s: &Option<Cow<'_, str>>| s.as_deref().map(str::to_owned);
        let (event_time, mut recipients, reason) = event_of(&details, notification.kind);
        if recipients.is_empty() {
            recipients = notification
                .recipients
                .iter()
                .take(MAX_RECIPIENTS + 1)
                .map(|a| RecipientReport { address: a.to_string(), status: None, diagnostic_code: None })
                .collect();
        }
        let affected = recipients.len().max(notification.recipients.len());
        recipients.truncate(MAX_RECIPIENTS);
        for recipient in &mut recipients {
            recipient.address = clip(&recipient.address, MAX_FIELD_CHARS);
        }
        let field = |s: &Option<Cow<'_, str>>| s.as_deref().map(|s| clip(s, MAX_FIELD_CHARS));
        Report {
            kind: notification.kind.as_str(),
            headline: clip(&headline(notification), MAX_FIELD_CHARS),
            time: clip(&event_time.or_else(|| owned(&notification.timestamp)).unwrap_or_default(), MAX_FIELD_CHARS),
            sender: clip(&sender, MAX_FIELD_CHARS),
            sender_domain: clip(&sender_domain, MAX_FIELD_CHARS),
            subject: details.mail.common_headers.subject.as_deref().map(|s| clip(s, MAX_SUBJECT_CHARS)),
            message_id: clip(&notification.message_id, MAX_FIELD_CHARS),
            omitted_recipients: affected - recipients.len(),
            recipients,
            bounce_type: field(&detail.bounce_type),
            bounce_subtype: field(&detail.bounce_subtype),
            bounce_class: notification.bounce_class().map(BounceClass::as_str),
            bounce_class_text: notification.bounce_explanation().map(|t| clip(&t, MAX_DIAGNOSTIC_CHARS)),
            complaint_type: field(&detail.complaint_type),
            reason: reason.as_deref().map(|r| clip(r, MAX_DIAGNOSTIC_CHARS)),
            routes: routes.iter().map(|r| (*r).to_owned()).collect(),
            queue: origin.queue.to_owned(),
        }
    }

    /// Bytes this report keeps in memory, near enough to budget by.
    pub fn size(&self) -> usize {
        let optional = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let recipients: usize = self
            .recipients
            .iter()
            .map(|r| {
                size_of::<RecipientReport>() + r.address.len() + optional(&r.status) + optional(&r.diagnostic_code)
            })
            .sum();
        let routes: usize = self.routes.iter().map(|r| size_of::<String>() + r.len()).sum();
        size_of::<Report>()
            + self.headline.len()
            + self.time.len()
            + self.sender.len()
            + self.sender_domain.len()
            + optional(&self.subject)
            + self.message_id.len()
            + recipients
            + optional(&self.bounce_type)
            + optional(&self.bounce_subtype)
            + optional(&self.bounce_class_text)
            + optional(&self.complaint_type)
            + optional(&self.reason)
            + routes
            + self.queue.len()
    }

    /// The recipients' addresses, comma-separated.
    pub fn recipient_list(&self) -> String {
        self.recipients.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn headline(n: &Notification<'_>) -> String {
    let d = &n.detail;
    match n.kind {
        Kind::Bounce => {
            let kind = d.bounce_type.as_deref().unwrap_or("Undetermined");
            match d.bounce_subtype.as_deref() {
                Some(sub) => format!("{kind} bounce ({sub})"),
                None => format!("{kind} bounce"),
            }
        }
        Kind::Complaint => match d.complaint_type.as_deref() {
            Some(t) => format!("Complaint ({t})"),
            None => "Complaint".to_owned(),
        },
        Kind::Delivery => "Delivered".to_owned(),
        Kind::Send => "Sent".to_owned(),
        Kind::Reject => "Rejected by SES".to_owned(),
        Kind::Open => "Opened".to_owned(),
        Kind::Click => "Link clicked".to_owned(),
        Kind::RenderingFailure => "Template rendering failed".to_owned(),
        Kind::DeliveryDelay => "Delivery delayed".to_owned(),
        Kind::Subscription => "Subscription preferences changed".to_owned(),
    }
}

/// The event's time, its recipients with details, and a reason, for `kind`.
fn event_of(details: &Details<'_>, kind: Kind) -> (Option<String>, Vec<RecipientReport>, Option<String>) {
    let event = match kind {
        Kind::Bounce => &details.bounce,
        Kind::Complaint => &details.complaint,
        Kind::Delivery => &details.delivery,
        Kind::DeliveryDelay => &details.delivery_delay,
        Kind::Reject => &details.reject,
        Kind::RenderingFailure => &details.failure,
        Kind::Open => &details.open,
        Kind::Click => &details.click,
        Kind::Subscription => &details.subscription,
        Kind::Send => &None,
    };
    let Some(event) = event else { return (None, Vec::new(), None) };
    let listed = match kind {
        Kind::Bounce => &event.bounced_recipients,
        Kind::Complaint => &event.complained_recipients,
        _ => &event.delayed_recipients,
    };
    // One more than is listed, so that the report knows some were left out.
    let mut recipients: Vec<RecipientReport> = listed
        .iter()
        .filter_map(|r| {
            Some(RecipientReport {
                address: address::bare(r.email_address.as_deref()?)?.into_owned(),
                status: r.status.as_deref().map(|s| clip(s, MAX_FIELD_CHARS)),
                diagnostic_code: r.diagnostic_code.as_deref().map(|d| clip(d, MAX_DIAGNOSTIC_CHARS)),
            })
        })
        .take(MAX_RECIPIENTS + 1)
        .collect();
    if kind == Kind::Delivery {
        recipients = event
            .recipients
            .iter()
            .filter_map(|a| address::bare(a))
            .map(|a| RecipientReport {
                address: a.into_owned(),
                status: None,
                diagnostic_code: event.smtp_response.as_deref().map(|d| clip(d, MAX_DIAGNOSTIC_CHARS)),
            })
            .take(MAX_RECIPIENTS + 1)
            .collect();
    }
    let reason = [&event.reason, &event.error_message, &event.delay_type, &event.link, &event.complaint_sub_type]
        .into_iter()
        .find_map(|r| r.as_deref().map(|r| clip(r, MAX_DIAGNOSTIC_CHARS)));
    (event.timestamp.as_deref().map(str::to_owned), recipients, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{Parsed, parse};

    fn report(body: &str) -> Report {
        let mut scratch = String::new();
        let Ok(Parsed::Notification(n)) = parse(body, &mut scratch) else { panic!("a notification") };
        Report::new(Origin { queue: "q", sqs_message_id: "m" }, &n, &["r"])
    }

    #[test]
    fn a_bounce_names_each_recipient_with_status_and_diagnostic() {
        let r = report(
            r#"{"notificationType":"Bounce","mail":{"timestamp":"2026-01-01T00:00:00.000Z","source":"App <App@Dev.Acme.test>",
            "messageId":"m1","destination":["a@x.test"],"commonHeaders":{"subject":"Hi"}},
            "bounce":{"bounceType":"Permanent","bounceSubType":"General","timestamp":"2026-01-01T00:00:01.000Z",
            "bouncedRecipients":[{"emailAddress":"A@x.test","status":"5.1.1","diagnosticCode":"smtp; 550 no"}]}}"#,
        );
        assert_eq!(r.headline, "Permanent bounce (General)");
        assert_eq!(r.sender, "app@dev.acme.test");
        assert_eq!(r.sender_domain, "dev.acme.test");
        assert_eq!(r.time, "2026-01-01T00:00:01.000Z");
        assert_eq!(r.subject.as_deref(), Some("Hi"));
        assert_eq!(
            r.recipients,
            [RecipientReport {
                address: "a@x.test".into(),
                status: Some("5.1.1".into()),
                diagnostic_code: Some("smtp; 550 no".into())
            }]
        );
    }

    #[test]
    fn an_event_without_recipient_details_falls_back_to_the_mails_destination() {
        let r = report(
            r#"{"eventType":"Reject","mail":{"timestamp":"2026-01-01T00:00:00.000Z","source":"a@b.test","messageId":"m",
            "destination":["x@y.test"]},"reject":{"reason":"Bad content"}}"#,
        );
        assert_eq!(r.headline, "Rejected by SES");
        assert_eq!(r.time, "2026-01-01T00:00:00.000Z");
        assert_eq!(r.reason.as_deref(), Some("Bad content"));
        assert_eq!(r.recipient_list(), "x@y.test");
    }

    #[test]
    fn long_fields_and_many_recipients_are_cut_to_readable_lengths() {
        let recipients: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    r#"{{"emailAddress":"r{i}@x.test","status":"5.1.1","diagnosticCode":"smtp; 550 {}"}}"#,
                    "d".repeat(150_000 / 300)
                )
            })
            .collect();
        let long = "x".repeat(150_000);
        let body = format!(
            r#"{{"notificationType":"Bounce","mail":{{"timestamp":"2026-01-01T00:00:00.000Z","source":"a@b.test","messageId":"m",
            "destination":["r0@x.test"],"commonHeaders":{{"subject":"{long}"}}}},
            "bounce":{{"bounceType":"Transient","bounceSubType":"{long}","bouncedRecipients":[
            {{"emailAddress":"one@x.test","diagnosticCode":"smtp; 554 {long}"}},{}]}}}}"#,
            recipients.join(",")
        );
        let r = report(&body);
        assert_eq!(r.subject.as_deref().map(|s| s.chars().count()), Some(MAX_SUBJECT_CHARS));
        assert!(r.subject.as_deref().is_some_and(|s| s.ends_with('…')));
        assert_eq!(r.headline.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(r.bounce_subtype.as_deref().map(|s| s.chars().count()), Some(MAX_FIELD_CHARS));
        let first = r.recipients[0].diagnostic_code.as_deref().unwrap();
        assert_eq!(first.chars().count(), MAX_DIAGNOSTIC_CHARS);
        assert!(first.starts_with("smtp; 554 xxx"), "{first}");
        assert_eq!((r.recipients.len(), r.omitted_recipients), (MAX_RECIPIENTS, 301 - MAX_RECIPIENTS));
        assert!(r.size() < 100 * 1024, "a report of {} bytes from a body of {}", r.size(), body.len());
    }
}
