//! Wire types for the SES JSON as it appears on a queue, whatever wraps it.
//!
//! Tolerant by design: SES "reserves the right to add fields", so nothing here
//! denies unknown fields, almost everything is optional, and strings borrow
//! from the input when they carry no escapes. One struct, [`Body`], covers the
//! three top-level shapes (SNS envelope, bare SES record, `EventBridge` event)
//! so that a body is parsed once whatever it turns out to be.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use sonic_rs::LazyValue;

type Str<'a> = Cow<'a, str>;

/// Every top-level key sesroute looks at, of every shape a body can take.
#[derive(Debug, Default, Deserialize)]
pub struct Body<'a> {
    // SNS envelope (`Type`, `Message`, ... and the Lambda spellings).
    #[serde(rename = "Type", borrow)]
    pub sns_type: Option<Str<'a>>,
    #[serde(rename = "Message", borrow)]
    pub sns_message: Option<MessageField<'a>>,
    #[serde(rename = "MessageId", borrow)]
    pub sns_message_id: Option<Str<'a>>,
    #[serde(rename = "TopicArn", borrow)]
    pub topic_arn: Option<Str<'a>>,
    #[serde(rename = "Subject", borrow)]
    pub subject: Option<Str<'a>>,
    #[serde(rename = "Timestamp", borrow)]
    pub sns_timestamp: Option<Str<'a>>,
    #[serde(rename = "SignatureVersion", borrow)]
    pub signature_version: Option<Str<'a>>,
    #[serde(rename = "Signature", borrow)]
    pub signature: Option<Str<'a>>,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl", borrow)]
    pub signing_cert_url: Option<Str<'a>>,
    #[serde(rename = "UnsubscribeURL", alias = "UnsubscribeUrl", borrow)]
    pub unsubscribe_url: Option<Str<'a>>,

    // EventBridge event.
    #[serde(borrow)]
    pub source: Option<Str<'a>>,
    #[serde(rename = "detail-type", borrow)]
    pub detail_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub detail: Option<LazyValue<'a>>,
    #[serde(borrow)]
    pub id: Option<Str<'a>>,

    // SES record: identity notifications and event publishing.
    #[serde(rename = "notificationType", borrow)]
    pub notification_type: Option<Str<'a>>,
    #[serde(rename = "eventType", borrow)]
    pub event_type: Option<Str<'a>>,
    /// The text of the `AmazonSnsSubscriptionSucceeded` setup message.
    #[serde(borrow)]
    pub message: Option<Str<'a>>,
    #[serde(borrow)]
    pub mail: Option<Mail<'a>>,
    #[serde(borrow)]
    pub bounce: Option<Bounce<'a>>,
    #[serde(borrow)]
    pub complaint: Option<Complaint<'a>>,
    #[serde(borrow)]
    pub delivery: Option<Delivery<'a>>,
    pub send: Option<Empty>,
    #[serde(borrow)]
    pub reject: Option<Reject<'a>>,
    pub open: Option<Empty>,
    pub click: Option<Empty>,
    pub failure: Option<Empty>,
    #[serde(rename = "deliveryDelay", borrow)]
    pub delivery_delay: Option<DeliveryDelay<'a>>,
    pub subscription: Option<Empty>,
    /// Inbound mail (`Received`) carries a receipt; only its presence matters.
    pub receipt: Option<IgnoredAny>,
}

/// The SNS `Message`: a string (as SNS writes it) or, from some emulators, an
/// object. The string is decoded in the same pass as the envelope; an object
/// is only noted here and read again from the body (a rare, lenient path).
#[derive(Debug)]
pub enum MessageField<'a> {
    Text(Str<'a>),
    Object,
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for MessageVisitor<'a> {
            type Value = MessageField<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an object")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MessageField::Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MessageField::Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(MessageField::Text(Cow::Owned(v)))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MessageField::Object)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MessageField::Other)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
        }

        deserializer.deserialize_any(MessageVisitor(std::marker::PhantomData))
    }
}

/// The raw `Message` object of an envelope, for [`MessageField::Object`].
#[derive(Deserialize)]
pub struct RawMessage<'a> {
    #[serde(rename = "Message", borrow)]
    pub message: LazyValue<'a>,
}

/// An object whose content sesroute does not route on (it is kept verbatim in
/// the SES JSON); deserializing it still rejects a string or a number.
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mail<'a> {
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    pub message_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub source: Option<Str<'a>>,
    #[serde(borrow)]
    pub source_arn: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub sending_account_id: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "one_or_many")]
    pub destination: Vec<Str<'a>>,
    #[serde(borrow)]
    pub tags: Option<Tags<'a>>,
}

/// `mail.tags`: each name with its values (an array of strings, or leniently
/// one string), kept in the order written without building a hash map.
#[derive(Debug, Default)]
pub struct Tags<'a>(pub Vec<(Str<'a>, Vec<Str<'a>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for TagsVisitor<'a> {
            type Value = Tags<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of tag names and values")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut tags = Vec::with_capacity(map.size_hint().unwrap_or(6));
                while let Some(Borrowable(name)) = map.next_key()? {
                    let TagValues(values) = map.next_value()?;
                    tags.push((name, values));
                }
                Ok(Tags(tags))
            }
        }

        deserializer.deserialize_map(TagsVisitor(std::marker::PhantomData))
    }
}

struct TagValues<'a>(Vec<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for TagValues<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_or_many(deserializer).map(TagValues)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient<'a> {
    #[serde(borrow)]
    pub email_address: Option<Str<'a>>,
    #[serde(borrow)]
    pub status: Option<Str<'a>>,
    #[serde(borrow)]
    pub diagnostic_code: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bounce<'a> {
    #[serde(borrow)]
    pub bounce_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub bounce_sub_type: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub bounced_recipients: Vec<Recipient<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub feedback_id: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Complaint<'a> {
    #[serde(default, borrow)]
    pub complained_recipients: Vec<Recipient<'a>>,
    #[serde(borrow)]
    pub complaint_feedback_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub complaint_sub_type: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub feedback_id: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery<'a> {
    #[serde(default, borrow, deserialize_with = "one_or_many")]
    pub recipients: Vec<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDelay<'a> {
    #[serde(borrow)]
    pub delay_type: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub delayed_recipients: Vec<Recipient<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Reject<'a> {
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
}

/// The fields of the SES JSON only people read (the subject, each event's
/// time, reason and per-recipient detail), every one optional: read on
/// demand by [`Notification::details`](super::Notification::details), so
/// routing never pays for them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Details<'a> {
    #[serde(borrow)]
    pub mail: DetailsMail<'a>,
    #[serde(borrow)]
    pub bounce: Option<Event<'a>>,
    #[serde(borrow)]
    pub complaint: Option<Event<'a>>,
    #[serde(borrow)]
    pub delivery: Option<Event<'a>>,
    #[serde(borrow)]
    pub delivery_delay: Option<Event<'a>>,
    #[serde(borrow)]
    pub reject: Option<Event<'a>>,
    #[serde(borrow)]
    pub failure: Option<Event<'a>>,
    #[serde(borrow)]
    pub open: Option<Event<'a>>,
    #[serde(borrow)]
    pub click: Option<Event<'a>>,
    #[serde(borrow)]
    pub subscription: Option<Event<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DetailsMail<'a> {
    #[serde(borrow)]
    pub common_headers: Headers<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Headers<'a> {
    #[serde(borrow)]
    pub subject: Option<Str<'a>>,
}

/// Any event payload: the union of the fields read from them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Event<'a> {
    #[serde(borrow, deserialize_with = "lenient_text")]
    pub timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    pub bounced_recipients: Vec<Recipient<'a>>,
    #[serde(borrow)]
    pub complained_recipients: Vec<Recipient<'a>>,
    #[serde(borrow)]
    pub delayed_recipients: Vec<Recipient<'a>>,
    /// Delivery: plain addresses, one SMTP response for all.
    #[serde(borrow)]
    pub recipients: Vec<Str<'a>>,
    #[serde(borrow)]
    pub smtp_response: Option<Str<'a>>,
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
    #[serde(borrow)]
    pub error_message: Option<Str<'a>>,
    #[serde(borrow)]
    pub delay_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub link: Option<Str<'a>>,
    #[serde(borrow)]
    pub complaint_sub_type: Option<Str<'a>>,
}

/// A field sesroute only passes along (timestamps, ids): a string as it is, a
/// number as written, anything else as absent; never an error.
fn lenient_text<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Str<'a>>, D::Error> {
    struct Lenient<'a>(std::marker::PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for Lenient<'a> {
        type Value = Option<Str<'a>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }

    deserializer.deserialize_any(Lenient(std::marker::PhantomData))
}

/// A list of strings; a lone string is taken as a list of one, `null` as empty.
fn one_or_many<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Str<'a>>, D::Error> {
    struct OneOrMany<'a>(std::marker::PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for OneOrMany<'a> {
        type Value = Vec<Str<'a>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(vec![Cow::Borrowed(v)])
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![Cow::Owned(v.to_owned())])
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(2));
            while let Some(Borrowable(s)) = seq.next_element()? {
                out.push(s);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(OneOrMany(std::marker::PhantomData))
}

/// A string that borrows from the input when it has no escapes.
struct Borrowable<'a>(Str<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowable<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Inner<'a>(#[serde(borrow)] Str<'a>);
        Inner::deserialize(deserializer).map(|Inner(s)| Borrowable(s))
    }
}
