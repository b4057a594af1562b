//! The SES notification as sesroute understands it, whatever form it came in.
//!
//! [`parse`] takes one SQS message body and returns a [`Notification`] (the
//! typed domain view routing and sinks work on), an [`Ignored`] body (valid
//! but not feedback), or a [`ParseError`] naming what could not be understood.

pub mod address;
pub mod bounce;
pub mod depth;
mod envelope;
pub mod reason;
pub mod ses;

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

pub use envelope::parse;
pub use reason::Echo;

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
///
/// Strings borrow from the queue body (or from the decoded SNS `Message`)
/// wherever they can; [`Notification::into_owned`] detaches it when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    pub kind: Kind,
    /// The bare, lowercased sender address of `mail.source`; empty when
    /// `mail.source` is missing or holds no address.
    pub source: Str<'a>,
    /// `mail.messageId`; empty when SES left it out.
    pub message_id: Str<'a>,
    /// `mail.timestamp` exactly as written (SES's forms vary, so it is not parsed).
    pub timestamp: Option<Str<'a>>,
    /// `mail.sourceArn`: the identity used to send.
    pub source_arn: Option<Str<'a>>,
    /// `mail.sendingAccountId`: the account that sent the email.
    pub sending_account_id: Option<Str<'a>>,
    /// `mail.tags` in the order written: name and values.
    pub tags: Vec<(Str<'a>, Vec<Str<'a>>)>,
    /// The affected recipients, bare and lowercased: bounced, complained,
    /// delivered or delayed recipients, else `mail.destination`.
    pub recipients: Vec<Str<'a>>,
    pub detail: Detail<'a>,
    /// The SES JSON as received: the whole body, the SNS `Message`, or the `EventBridge` `detail`.
    pub ses_json: Str<'a>,
    pub envelope: Envelope<'a>,
}

type Str<'a> = Cow<'a, str>;

/// The kind-specific fields sesroute routes and reports on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail<'a> {
    pub bounce_type: Option<Str<'a>>,
    pub bounce_subtype: Option<Str<'a>>,
    /// `complaint.complaintFeedbackType`.
    pub complaint_type: Option<Str<'a>>,
    /// `bounce.feedbackId` or `complaint.feedbackId`.
    pub feedback_id: Option<Str<'a>>,
    /// A bounce's class and why (every bounce has one; no other kind does).
    pub bounce_verdict: Option<bounce::Verdict>,
}

/// How the SES JSON reached the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// Raw message delivery: the body is the SES JSON.
    Raw,
    Sns(Box<SnsEnvelope<'a>>),
    EventBridge {
        id: Option<Str<'a>>,
        detail_type: Option<Str<'a>>,
    },
}

/// The SNS envelope's own fields, kept for sinks and for signature verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnsEnvelope<'a> {
    pub message_id: Option<Str<'a>>,
    pub topic_arn: Option<Str<'a>>,
    pub subject: Option<Str<'a>>,
    pub timestamp: Option<Str<'a>>,
    pub signature_version: Option<Str<'a>>,
    pub signature: Option<Str<'a>>,
    pub signing_cert_url: Option<Str<'a>>,
    pub unsubscribe_url: Option<Str<'a>>,
}

fn own(s: Str<'_>) -> Str<'static> {
    Cow::Owned(s.into_owned())
}

fn own_opt(s: Option<Str<'_>>) -> Option<Str<'static>> {
    s.map(own)
}

impl Notification<'_> {
    /// The SNS topic the notification was published to, when it came in an envelope.
    pub fn topic_arn(&self) -> Option<&str> {
        match &self.envelope {
            Envelope::Sns(sns) => sns.topic_arn.as_deref(),
            _ => None,
        }
    }

    /// The values of one `mail.tags` entry.
    pub fn tag(&self, name: &str) -> Option<&[Str<'_>]> {
        self.tags.iter().find(|(key, _)| key == name).map(|(_, values)| values.as_slice())
    }

    /// A bounce's class; `None` for every other kind.
    pub fn bounce_class(&self) -> Option<bounce::BounceClass> {
        self.detail.bounce_verdict.map(|v| v.class)
    }

    /// A bounce's class in words for people, with why when it differs from
    /// SES's type; `None` for every other kind.
    pub fn bounce_explanation(&self) -> Option<String> {
        let verdict = self.detail.bounce_verdict?;
        Some(verdict.explain(self.detail.bounce_type.as_deref(), self.detail.bounce_subtype.as_deref()))
    }

    /// What only people read, from the SES JSON with the parser's own types
    /// (see [`ses::Details`]); a field that cannot be read is left out.
    pub fn details(&self) -> ses::Details<'_> {
        // The typed parse already accepted this JSON; a failure here only loses the extras.
        serde_json::from_str(&self.ses_json).unwrap_or_default()
    }

    /// The configuration set the mail was sent with (`ses:configuration-set`).
    pub fn configuration_set(&self) -> Option<&[Str<'_>]> {
        self.tag("ses:configuration-set")
    }

    /// A copy that borrows nothing, to outlive the body it was parsed from.
    pub fn into_owned(self) -> Notification<'static> {
        Notification {
            kind: self.kind,
            source: own(self.source),
            message_id: own(self.message_id),
            timestamp: own_opt(self.timestamp),
            source_arn: own_opt(self.source_arn),
            sending_account_id: own_opt(self.sending_account_id),
            tags: self.tags.into_iter().map(|(k, v)| (own(k), v.into_iter().map(own).collect())).collect(),
            recipients: self.recipients.into_iter().map(own).collect(),
            detail: Detail {
                bounce_type: own_opt(self.detail.bounce_type),
                bounce_subtype: own_opt(self.detail.bounce_subtype),
                complaint_type: own_opt(self.detail.complaint_type),
                feedback_id: own_opt(self.detail.feedback_id),
                bounce_verdict: self.detail.bounce_verdict,
            },
            ses_json: own(self.ses_json),
            envelope: match self.envelope {
                Envelope::Raw => Envelope::Raw,
                Envelope::Sns(sns) => Envelope::Sns(Box::new(SnsEnvelope {
                    message_id: own_opt(sns.message_id),
                    topic_arn: own_opt(sns.topic_arn),
                    subject: own_opt(sns.subject),
                    timestamp: own_opt(sns.timestamp),
                    signature_version: own_opt(sns.signature_version),
                    signature: own_opt(sns.signature),
                    signing_cert_url: own_opt(sns.signing_cert_url),
                    unsubscribe_url: own_opt(sns.unsubscribe_url),
                })),
                Envelope::EventBridge { id, detail_type } => {
                    Envelope::EventBridge { id: own_opt(id), detail_type: own_opt(detail_type) }
                }
            },
        }
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
    /// An `aws.ses` `EventBridge` event that is not about a sent email, with its `detail-type`.
    EventBridgeNotEmail(Echo),
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::SubscriptionSucceeded => f.write_str("SES setup message AmazonSnsSubscriptionSucceeded"),
            Ignored::EventDestinationValidated => f.write_str("SES event publishing validation message"),
            Ignored::SnsSubscriptionConfirmation => f.write_str("SNS SubscriptionConfirmation"),
            Ignored::SnsUnsubscribeConfirmation => f.write_str("SNS UnsubscribeConfirmation"),
            Ignored::InboundMail => f.write_str("inbound mail Received notification"),
            Ignored::EventBridgeNotEmail(detail_type) => {
                write!(f, "EventBridge aws.ses event {detail_type} is not about a sent email")
            }
        }
    }
}

/// What one body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    Notification(Box<Notification<'a>>),
    Ignored(Ignored),
}

/// Why a body is not understood. The text is meant for the person reading the
/// log: it names the path and the kind of problem, and quotes input only
/// through [`Echo`] (clipped, addresses masked), never a parser's quote of a
/// value or an excerpt of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty body")]
    Empty,
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("{what} nests deeper than {max} levels (at byte {at})", max = depth::MAX_DEPTH)]
    TooDeep { what: &'static str, at: usize },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("JSON {0}, not an SES notification")]
    NotAnObject(&'static str),
    #[error("not SES feedback: {0}")]
    NotSes(String),
    #[error("invalid {what} at {path}: {reason}")]
    Invalid { what: &'static str, path: String, reason: String },
    #[error("unknown SNS message Type {0}")]
    UnknownSnsType(Echo),
    #[error("SNS notification has no Message")]
    SnsWithoutMessage,
    #[error("SNS Message is not SES JSON: {0}")]
    SnsMessageNotSes(Echo),
    #[error("EventBridge event from {0}, not aws.ses")]
    NotSesEventBridge(Echo),
    #[error("unknown eventType {0}")]
    UnknownEventType(Echo),
    #[error("unknown notificationType {0}")]
    UnknownNotificationType(Echo),
    #[error("{0} notification has no mail object")]
    MissingMail(Kind),
}
