//! The `[routes.match]` keys whose values are patterns over text the
//! notification holds: their names, and where each reads that text.
//!
//! `kind` (a set of kinds, resolved once) and `tags` (a table of names) are
//! shaped differently and stay with the [`Matcher`](super::Matcher). A new key
//! is a variant here, its name in [`Key::name`] and its arm in [`Key::holds`].

use super::Patterns;
use crate::notification::Notification;
use crate::notification::bounce::BounceClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Source,
    BounceType,
    BounceSubtype,
    BounceClass,
    ComplaintType,
    Identity,
    ConfigurationSet,
    Recipient,
    Queue,
    Topic,
}

impl Key {
    /// Every key, in the order `check` shows them.
    pub const ALL: [Key; 10] = [
        Key::Source,
        Key::BounceType,
        Key::BounceSubtype,
        Key::BounceClass,
        Key::ComplaintType,
        Key::Identity,
        Key::ConfigurationSet,
        Key::Recipient,
        Key::Queue,
        Key::Topic,
    ];

    /// The key as written in the config.
    pub const fn name(self) -> &'static str {
        match self {
            Key::Source => "source",
            Key::BounceType => "bounce_type",
            Key::BounceSubtype => "bounce_subtype",
            Key::BounceClass => "bounce_class",
            Key::ComplaintType => "complaint_type",
            Key::Identity => "identity",
            Key::ConfigurationSet => "configuration_set",
            Key::Recipient => "recipient",
            Key::Queue => "queue",
            Key::Topic => "topic",
        }
    }

    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }

    /// Whether any of `patterns` matches a value `n` holds for this key
    /// (any of them, for the keys with several). A notification that lacks
    /// the field does not hold. `queue` is the source the body came from.
    pub fn holds(self, patterns: &Patterns, n: &Notification<'_>, queue: Option<&str>) -> bool {
        let one = |value: Option<&str>| value.is_some_and(|v| patterns.is_match(v));
        match self {
            Key::Source => !n.source.is_empty() && patterns.is_match(&n.source),
            Key::BounceType => one(n.detail.bounce_type.as_deref()),
            Key::BounceSubtype => one(n.detail.bounce_subtype.as_deref()),
            Key::BounceClass => one(n.bounce_class().map(BounceClass::as_str)),
            Key::ComplaintType => one(n.detail.complaint_type.as_deref()),
            Key::Identity => one(n.source_arn.as_deref()),
            Key::ConfigurationSet => {
                n.configuration_set().is_some_and(|sets| patterns.any_match(sets.iter().map(AsRef::as_ref)))
            }
            Key::Recipient => patterns.any_match(n.recipients.iter().map(AsRef::as_ref)),
            Key::Queue => one(queue),
            Key::Topic => one(n.topic_arn()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_found_by_its_name_and_names_are_distinct() {
        for key in Key::ALL {
            assert_eq!(Key::from_name(key.name()), Some(key));
        }
        let mut names: Vec<&str> = Key::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Key::ALL.len());
        assert_eq!(Key::from_name("kind"), None, "kind is the matcher's own");
    }

    #[test]
    fn all_is_in_declaration_order() {
        assert!(Key::ALL.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
