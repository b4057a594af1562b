//! Patterns and the per-route matcher, compiled once when the config loads.
//!
//! A pattern is literal except for `*` (any run of characters, also none) and
//! `?` (exactly one character); matching ignores case. `[`, `]`, `{`, `}` and
//! `\` are literal, which is exactly `wildmatch`'s dialect.

use wildmatch::WildMatch;

use super::Key;
use crate::notification::{Kind, Notification};

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    compiled: Compiled,
}

#[derive(Debug, Clone)]
enum Compiled {
    /// `*`: everything, also the empty string.
    Any,
    /// No wildcard: a case-insensitive comparison is enough.
    Literal(String),
    Glob(WildMatch),
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        let compiled = if text.bytes().all(|b| b == b'*') && !text.is_empty() {
            Compiled::Any
        } else if text.contains(['*', '?']) {
            Compiled::Glob(WildMatch::new_case_insensitive(text))
        } else {
            Compiled::Literal(text.to_lowercase())
        };
        Pattern { text: text.to_owned(), compiled }
    }

    pub fn is_match(&self, value: &str) -> bool {
        match &self.compiled {
            Compiled::Any => true,
            Compiled::Literal(literal) => {
                if value.is_ascii() {
                    literal.eq_ignore_ascii_case(value)
                } else {
                    *literal == value.to_lowercase()
                }
            }
            Compiled::Glob(glob) => glob.matches(value),
        }
    }

    /// Whether the pattern matches every string.
    pub fn is_any(&self) -> bool {
        matches!(self.compiled, Compiled::Any)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A key's list of patterns: holds when any of them matches.
#[derive(Debug, Clone)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    pub fn new<S: AsRef<str>>(texts: &[S]) -> Patterns {
        Patterns(texts.iter().map(|t| Pattern::new(t.as_ref())).collect())
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.0.iter().any(|p| p.is_match(value))
    }

    /// Holds when any pattern matches any of the values.
    pub fn any_match<'v>(&self, values: impl IntoIterator<Item = &'v str>) -> bool {
        values.into_iter().any(|v| self.is_match(v))
    }

    pub fn is_any(&self) -> bool {
        self.0.iter().any(Pattern::is_any)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pattern> {
        self.0.iter()
    }
}

impl std::fmt::Display for Patterns {
    /// The patterns as written, separated by `|`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(p.as_str())?;
        }
        Ok(())
    }
}

/// A set of kinds, resolved from the `kind` patterns once at load time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet(u16);

impl KindSet {
    pub const ALL: KindSet = KindSet((1 << Kind::ALL.len()) - 1);

    /// The kinds any of the patterns names, in any of its spellings.
    pub fn from_patterns(patterns: &Patterns) -> KindSet {
        let mut set = KindSet::default();
        for kind in Kind::ALL {
            if kind.spellings().iter().any(|s| patterns.is_match(s)) {
                set.insert(kind);
            }
        }
        set
    }

    pub fn insert(&mut self, kind: Kind) {
        self.0 |= 1 << kind as u16;
    }

    pub fn contains(self, kind: Kind) -> bool {
        self.0 & (1 << kind as u16) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The `match` table of one route. Every key present must hold (AND); a key
/// whose field the notification lacks does not hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub kind: Option<KindSet>,
    /// The pattern keys present, each once, in [`Key`] order.
    keys: Vec<(Key, Patterns)>,
    /// Tag name (compared exactly) and the patterns for its values.
    pub tags: Vec<(String, Patterns)>,
}

impl Matcher {
    /// Adds `key`'s patterns; a key given again replaces its patterns.
    pub fn set(&mut self, key: Key, patterns: Patterns) {
        match self.keys.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(at) => self.keys[at].1 = patterns,
            Err(at) => self.keys.insert(at, (key, patterns)),
        }
    }

    /// The pattern keys present, in [`Key`] order.
    pub fn keys(&self) -> impl Iterator<Item = (Key, &Patterns)> {
        self.keys.iter().map(|(key, patterns)| (*key, patterns))
    }

    pub fn is_match(&self, n: &Notification<'_>, queue: Option<&str>) -> bool {
        self.kind.is_none_or(|set| set.contains(n.kind))
            && self.keys.iter().all(|(key, patterns)| key.holds(patterns, n, queue))
            && self
                .tags
                .iter()
                .all(|(name, p)| n.tag(name).is_some_and(|values| p.any_match(values.iter().map(AsRef::as_ref))))
    }

    /// Whether the matcher holds for every notification, whatever its fields.
    pub fn matches_everything(&self) -> bool {
        self.kind.is_none_or(|set| set == KindSet::ALL) && self.keys.is_empty() && self.tags.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark_are_the_only_wildcards() {
        let p = Pattern::new("*@dev.example.com");
        assert!(p.is_match("a@dev.example.com"));
        assert!(p.is_match("@dev.example.com"));
        assert!(p.is_match("A.B@DEV.Example.COM"));
        assert!(!p.is_match("a@xdev.example.comx"));
        assert!(Pattern::new("b?t@x").is_match("bot@x"));
        assert!(!Pattern::new("b?t@x").is_match("bt@x"));
        assert!(Pattern::new("[a]{b}\\").is_match("[A]{B}\\"));
        assert!(!Pattern::new("[a]").is_match("a"));
        assert!(Pattern::new("*").is_match(""));
        assert!(Pattern::new("**").is_any());
    }

    #[test]
    fn literal_matching_ignores_case_also_outside_ascii() {
        assert!(Pattern::new("Jürgen@X.test").is_match("JÜRGEN@x.TEST"));
        assert!(!Pattern::new("a@x").is_match("a@y"));
    }

    #[test]
    fn kind_patterns_accept_every_spelling() {
        let set = KindSet::from_patterns(&Patterns::new(&["Rendering Failure", "DeliveryDelay", "bounce"]));
        assert!(set.contains(Kind::RenderingFailure));
        assert!(set.contains(Kind::DeliveryDelay));
        assert!(set.contains(Kind::Bounce));
        assert!(!set.contains(Kind::Complaint));
        assert_eq!(KindSet::from_patterns(&Patterns::new(&["*"])), KindSet::ALL);
        assert!(KindSet::from_patterns(&Patterns::new(&["bounced"])).is_empty());
    }
}
