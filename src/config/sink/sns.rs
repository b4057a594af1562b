//! `type = "sns"`: the SES JSON published to an SNS topic.

use serde::Deserialize;

use crate::config::checks::Issues;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnsSink {
    /// The topic to publish to.
    pub topic_arn: String,
    /// The message subject; default "SES <kind> from <source>".
    pub subject: Option<String>,
    /// Deliveries per minute at most; the rest wait in SQS (visibility extended).
    pub max_per_minute: Option<u32>,
}

/// An `sns` sink's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sns {
    pub topic_arn: String,
    pub subject: Option<String>,
}

impl RawSnsSink {
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> Sns {
        if !(self.topic_arn.starts_with("arn:") && self.topic_arn.split(':').nth(2) == Some("sns")) {
            issues.push(format!("{key}.topic_arn"), format!("{:?} is not an SNS topic ARN", self.topic_arn));
        }
        if let Some(subject) = &self.subject {
            check_subject(issues, &format!("{key}.subject"), subject);
        }
        Sns { topic_arn: self.topic_arn, subject: self.subject }
    }
}

/// SNS subjects: 1 to 100 printable ASCII characters, no line breaks.
fn check_subject(issues: &mut Issues, key: &str, subject: &str) {
    if subject.is_empty() || subject.len() > 100 || !subject.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        issues.push(key, "must be 1 to 100 printable ASCII characters (an SNS rule)");
    }
}

impl Sns {
    pub(super) fn target(&self) -> String {
        self.topic_arn.clone()
    }

    pub(super) fn destination(&self) -> String {
        self.topic_arn.clone()
    }
}
