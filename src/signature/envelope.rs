//! The signed fields of an SNS envelope and the string SNS signed over them.
//!
//! The fields are read from the body as it arrived, escapes decoded and
//! nothing trimmed: the routing parser trims what it reads, a signature
//! covers the exact text.

use std::borrow::Cow;

use serde::Deserialize;

use super::Refusal;
use crate::notification::reason;

type Str<'a> = Cow<'a, str>;

/// What SNS signs, and how it says it signed it. A key written twice is an
/// error here as in the routing parser, so both read the same `Message`.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope<'a> {
    #[serde(rename = "Type", borrow)]
    pub kind: Option<Str<'a>>,
    #[serde(rename = "Message", borrow)]
    pub message: Option<Str<'a>>,
    #[serde(rename = "MessageId", borrow)]
    pub message_id: Option<Str<'a>>,
    #[serde(rename = "Subject", borrow)]
    pub subject: Option<Str<'a>>,
    #[serde(rename = "Timestamp", borrow)]
    pub timestamp: Option<Str<'a>>,
    #[serde(rename = "TopicArn", borrow)]
    pub topic_arn: Option<Str<'a>>,
    #[serde(rename = "Token", borrow)]
    pub token: Option<Str<'a>>,
    #[serde(rename = "SubscribeURL", alias = "SubscribeUrl", borrow)]
    pub subscribe_url: Option<Str<'a>>,
    #[serde(rename = "SignatureVersion", borrow)]
    pub signature_version: Option<Str<'a>>,
    #[serde(rename = "Signature", borrow)]
    pub signature: Option<Str<'a>>,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl", borrow)]
    pub signing_cert_url: Option<Str<'a>>,
}

/// The signature algorithms of SNS's `SignatureVersion`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `1`: RSA with SHA-1, the topic default.
    Sha1,
    /// `2`: RSA with SHA-256.
    Sha256,
}

impl<'a> Envelope<'a> {
    /// Reads the signed fields of `body`; a body that is not an SNS envelope
    /// (raw delivery, `EventBridge`) is refused as unsigned.
    pub fn parse(body: &'a str) -> Result<Envelope<'a>, Refusal> {
        let text = body.trim_start_matches('\u{feff}');
        let envelope: Envelope<'a> = serde_json::from_str(text).map_err(|e| {
            Refusal::NotSigned(if e.is_data() {
                format!("not an SNS envelope: {}", reason::parser_message(&e.to_string()))
            } else {
                "not an SNS envelope: not a JSON object".to_owned()
            })
        })?;
        if envelope.kind.is_none() && envelope.signature.is_none() {
            return Err(Refusal::NotSigned("not an SNS envelope (raw delivery or EventBridge)".to_owned()));
        }
        Ok(envelope)
    }

    pub fn version(&self) -> Result<Version, Refusal> {
        match self.signature_version.as_deref() {
            Some("1") => Ok(Version::Sha1),
            Some("2") => Ok(Version::Sha256),
            Some(other) => Err(Refusal::Version(reason::Echo::new(other))),
            None => Err(Refusal::NotSigned("no SignatureVersion".to_owned())),
        }
    }

    /// `Key\nValue\n` for each signed key of the envelope's `Type`, in byte
    /// order; every value ends with a line break, the last one too.
    pub fn string_to_sign(&self) -> Result<String, Refusal> {
        let kind = self.kind.as_deref().ok_or_else(|| Refusal::NotSigned("no Type".to_owned()))?;
        let fields: Vec<(&str, Option<&str>)> = match kind {
            "Notification" => vec![
                ("Message", self.message.as_deref()),
                ("MessageId", self.message_id.as_deref()),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", self.timestamp.as_deref()),
                ("TopicArn", self.topic_arn.as_deref()),
                ("Type", Some(kind)),
            ],
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => vec![
                ("Message", self.message.as_deref()),
                ("MessageId", self.message_id.as_deref()),
                ("SubscribeURL", self.subscribe_url.as_deref()),
                ("Timestamp", self.timestamp.as_deref()),
                ("Token", self.token.as_deref()),
                ("TopicArn", self.topic_arn.as_deref()),
                ("Type", Some(kind)),
            ],
            other => return Err(Refusal::NotSigned(format!("unknown SNS Type {}", reason::Echo::new(other)))),
        };
        let mut text = String::with_capacity(fields.iter().map(|(k, v)| k.len() + v.map_or(0, str::len) + 2).sum());
        for (key, value) in fields {
            match value {
                Some(value) => {
                    for part in [key, "\n", value, "\n"] {
                        text.push_str(part);
                    }
                }
                // Only a Notification's Subject is signed when present and skipped when not.
                None if key == "Subject" => {}
                None => return Err(Refusal::NotSigned(format!("no {key}"))),
            }
        }
        Ok(text)
    }

    /// The signature's bytes; SNS's base64 may be wrapped over lines.
    pub fn signature_bytes(&self) -> Result<Vec<u8>, Refusal> {
        use base64::Engine as _;
        let text = self.signature.as_deref().ok_or_else(|| Refusal::NotSigned("no Signature".to_owned()))?;
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| Refusal::NotSigned("Signature is not base64".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_signs_its_six_keys_in_order_each_value_ending_in_a_line_break() {
        let body = r#"{"Type":"Notification","MessageId":"m-1","TopicArn":"arn:aws:sns:eu-west-1:1:t",
            "Subject":"Hi","Message":"{\"a\":\"b\\n\"} ","Timestamp":"2025-01-01T00:00:00.000Z",
            "SignatureVersion":"2","Signature":"AAAA","SigningCertURL":"https://x","UnsubscribeURL":"u"}"#;
        let envelope = Envelope::parse(body).unwrap();
        assert_eq!(
            envelope.string_to_sign().unwrap(),
            "Message\n{\"a\":\"b\\n\"} \nMessageId\nm-1\nSubject\nHi\nTimestamp\n2025-01-01T00:00:00.000Z\n\
             TopicArn\narn:aws:sns:eu-west-1:1:t\nType\nNotification\n"
        );
        assert_eq!(envelope.version().unwrap(), Version::Sha256);
    }

    #[test]
    fn a_notification_without_subject_leaves_it_out_and_lambda_spellings_are_read() {
        let body = r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Subject":null,"Message":"x",
            "Timestamp":"ts","SignatureVersion":"1","Signature":"AA\nAA","SigningCertUrl":"https://c"}"#;
        let envelope = Envelope::parse(body).unwrap();
        assert_eq!(
            envelope.string_to_sign().unwrap(),
            "Message\nx\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
        );
        assert_eq!(envelope.signing_cert_url.as_deref(), Some("https://c"));
        assert_eq!(envelope.signature_bytes().unwrap(), vec![0, 0, 0]);
    }

    #[test]
    fn confirmations_sign_their_own_keys_and_need_every_one() {
        let body = r#"{"Type":"UnsubscribeConfirmation","MessageId":"m","TopicArn":"t","Message":"x",
            "Timestamp":"ts","Token":"tok","SubscribeUrl":"https://s","SignatureVersion":"1","Signature":"AA=="}"#;
        assert_eq!(
            Envelope::parse(body).unwrap().string_to_sign().unwrap(),
            "Message\nx\nMessageId\nm\nSubscribeURL\nhttps://s\nTimestamp\nts\nToken\ntok\nTopicArn\nt\nType\nUnsubscribeConfirmation\n"
        );
        let no_token = body.replace(r#""Token":"tok","#, "");
        assert_eq!(Envelope::parse(&no_token).unwrap().string_to_sign().unwrap_err().label(), "not-signed");
    }

    #[test]
    fn bodies_that_are_not_signed_envelopes_are_refused_with_a_reason_that_quotes_no_value() {
        for body in
            [r#"{"notificationType":"Bounce"}"#, "[1]", "not json", r#"{"Type":"Notification","Message":{"a":1}}"#]
        {
            let refusal = Envelope::parse(body).and_then(|e| e.string_to_sign().map(|_| ())).unwrap_err();
            assert_eq!(refusal.label(), "not-signed", "{body}");
        }
        let twice = r#"{"Type":"Notification","Message":"a","Message":"b","Signature":"x"}"#;
        assert!(Envelope::parse(twice).is_err());
        let odd = r#"{"Type":"Nope","Signature":"x","SignatureVersion":"3"}"#;
        let envelope = Envelope::parse(odd).unwrap();
        assert_eq!(envelope.version().unwrap_err().label(), "bad-version");
        assert_eq!(envelope.string_to_sign().unwrap_err().label(), "not-signed");
    }
}
