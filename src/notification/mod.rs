//! The SES notification as sesroute understands it, whatever form it came in.
//!
//! [`parse`] takes one SQS message body and returns a [`Notification`] (the
//! typed domain view routing and sinks work on), an [`Ignored`] body (valid
//! but not feedback), or a [`ParseError`] naming what could not be understood.

pub mod address;
mod envelope;
pub mod ses;

use std::fmt;

use serde::Serialize;

pub use envelope::parse;

/// What happened to a sent email: one per SES notification or event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Bounce,
    Complaint,
    Delivery,
    Send,
    Reject,
    Open,
    Click,
    RenderingFailure,
    DeliveryDelay,
    Subscription,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Bounce,
        Kind::Complaint,
        Kind::Delivery,
        Kind::Send,
        Kind::Reject,
        Kind::Open,
        Kind::Click,
        Kind::RenderingFailure,
        Kind::DeliveryDelay,
        Kind::Subscription,
    ];

    /// The name in sesroute's output and config (`rendering-failure`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::Complaint => "complaint",
            Kind::Delivery => "delivery",
            Kind::Send => "send",
            Kind::Reject => "reject",
            Kind::Open => "open",
            Kind::Click => "click",
            Kind::RenderingFailure => "rendering-failure",
            Kind::DeliveryDelay => "delivery-delay",
            Kind::Subscription => "subscription",
        }
    }

    /// SES's own spelling in `eventType` (`Rendering Failure`, `DeliveryDelay`).
    pub fn ses_name(self) -> &'static str {
        match self {
            Kind::Bounce => "Bounce",
            Kind::Complaint => "Complaint",
            Kind::Delivery => "Delivery",
            Kind::Send => "Send",
            Kind::Reject => "Reject",
            Kind::Open => "Open",
            Kind::Click => "Click",
            Kind::RenderingFailure => "Rendering Failure",
            Kind::DeliveryDelay => "DeliveryDelay",
            Kind::Subscription => "Subscription",
        }
    }

    /// Every spelling a person or SES might use for this kind.
    pub fn spellings(self) -> [&'static str; 2] {
        [self.as_str(), self.ses_name()]
    }

    /// Reads an SES type name leniently: case, spaces, dashes and underscores
    /// do not matter (`Rendering Failure`, `RenderingFailure`, `delivery-delay`).
    pub fn from_ses(name: &str) -> Option<Kind> {
        let mut key = [0u8; 24];
        let mut len = 0;
        for b in name.bytes().filter(|b| !matches!(b, b' ' | b'-' | b'_')) {
            *key.get_mut(len)? = b.to_ascii_lowercase();
            len += 1;
        }
        Some(match &key[..len] {
            b"bounce" => Kind::Bounce,
            b"complaint" => Kind::Complaint,
            b"delivery" => Kind::Delivery,
            b"send" => Kind::Send,
            b"reject" => Kind::Reject,
            b"open" => Kind::Open,
            b"click" => Kind::Click,
            b"renderingfailure" => Kind::RenderingFailure,
            b"deliverydelay" => Kind::DeliveryDelay,
            b"subscription" => Kind::Subscription,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SES feedback notification, with the fields routing and sinks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: Kind,
    /// The bare, lowercased sender address (`mail.source`, else `commonHeaders.from`,
    /// else an address identity in `sourceArn`); empty when there is none.
    pub source: String,
    /// `mail.messageId`; empty when SES left it out.
    pub message_id: String,
    /// `mail.timestamp` exactly as written (SES's forms vary, so it is not parsed).
    pub timestamp: Option<String>,
    /// `mail.sourceArn`: the identity used to send.
    pub source_arn: Option<String>,
    /// `mail.tags`, in no particular order.
    pub tags: Vec<(String, Vec<String>)>,
    /// The affected recipients, bare and lowercased (see [`Notification::recipients`]).
    pub recipients: Vec<String>,
    pub detail: Detail,
    /// The SES JSON as received: the whole body, the SNS `Message`, or the `EventBridge` `detail`.
    pub ses_json: Box<str>,
    pub envelope: Envelope,
}

/// The kind-specific fields sesroute routes and reports on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    pub bounce_type: Option<String>,
    pub bounce_subtype: Option<String>,
    /// `complaint.complaintFeedbackType`.
    pub complaint_type: Option<String>,
    /// `bounce.feedbackId` or `complaint.feedbackId`.
    pub feedback_id: Option<String>,
}

/// How the SES JSON reached the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// Raw message delivery: the body is the SES JSON.
    Raw,
    Sns(Box<SnsEnvelope>),
    EventBridge {
        id: Option<String>,
        detail_type: Option<String>,
    },
}

/// The SNS envelope's own fields, kept for sinks and for signature verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnsEnvelope {
    pub message_id: Option<String>,
    pub topic_arn: Option<String>,
    pub subject: Option<String>,
    pub timestamp: Option<String>,
    pub signature_version: Option<String>,
    pub signature: Option<String>,
    pub signing_cert_url: Option<String>,
    pub unsubscribe_url: Option<String>,
}

impl Notification {
    /// The SNS topic the notification was published to, when it came in an envelope.
    pub fn topic_arn(&self) -> Option<&str> {
        match &self.envelope {
            Envelope::Sns(sns) => sns.topic_arn.as_deref(),
            _ => None,
        }
    }

    /// The values of one `mail.tags` entry.
    pub fn tag(&self, name: &str) -> Option<&[String]> {
        self.tags
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, values)| values.as_slice())
    }

    /// The configuration set the mail was sent with (`ses:configuration-set`).
    pub fn configuration_set(&self) -> Option<&[String]> {
        self.tag("ses:configuration-set")
    }
}

/// A body that is valid and expected on a feedback queue, but is not feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// SES's `AmazonSnsSubscriptionSucceeded` setup message.
    SubscriptionSucceeded,
    /// The plain-text event-publishing validation message.
    EventDestinationValidated,
    SnsSubscriptionConfirmation,
    SnsUnsubscribeConfirmation,
    /// An inbound-mail `Received` notification from a receipt rule.
    InboundMail,
    /// An `aws.ses` `EventBridge` event that is not about a sent email.
    EventBridgeNotEmail(String),
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::SubscriptionSucceeded => {
                f.write_str("SES setup message AmazonSnsSubscriptionSucceeded")
            }
            Ignored::EventDestinationValidated => {
                f.write_str("SES event publishing validation message")
            }
            Ignored::SnsSubscriptionConfirmation => f.write_str("SNS SubscriptionConfirmation"),
            Ignored::SnsUnsubscribeConfirmation => f.write_str("SNS UnsubscribeConfirmation"),
            Ignored::InboundMail => f.write_str("inbound mail Received notification"),
            Ignored::EventBridgeNotEmail(detail_type) => {
                write!(
                    f,
                    "EventBridge aws.ses event {detail_type:?} is not about a sent email"
                )
            }
        }
    }
}

/// What one body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Notification(Box<Notification>),
    Ignored(Ignored),
}

/// Why a body is not understood. The text is meant for the person reading the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty body")]
    Empty,
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("JSON {0}, not an SES notification")]
    NotAnObject(&'static str),
    #[error("not SES feedback: {0}")]
    NotSes(String),
    #[error("invalid {what} at {path}: {reason}")]
    Invalid {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("unknown SNS message Type {0:?}")]
    UnknownSnsType(String),
    #[error("SNS notification has no Message")]
    SnsWithoutMessage,
    #[error("SNS Message is not SES JSON: {0:?}")]
    SnsMessageNotSes(String),
    #[error("EventBridge event from {0:?}, not aws.ses")]
    NotSesEventBridge(String),
    #[error("unknown eventType {0:?}")]
    UnknownEventType(String),
    #[error("unknown notificationType {0:?}")]
    UnknownNotificationType(String),
    #[error("{0} notification has no mail object")]
    MissingMail(Kind),
}
