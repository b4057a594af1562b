//! What a bounce means for the address: the bounce class.
//!
//! SES's `bounceType` says whether SES will retry, not whether the address is
//! dead: a `Transient` bounce whose recipient status is `5.1.1` (no such
//! mailbox) is a dead address all the same. [`classify`] reads SES's type and
//! subtype together with each bounced recipient's enhanced status code
//! (RFC 3463) and gives a [`BounceClass`], with the [`Verdict`] that says why.

use std::fmt;

use serde::Serialize;

/// The bounce class, as the contract's table defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BounceClass {
    /// The mailbox or its domain does not exist, is disabled or cannot be routed to.
    Hard,
    /// SES did not try: the address is on a suppression list.
    Suppressed,
    /// A temporary failure (a full mailbox, a refused message, a timeout).
    Soft,
    /// SES could not tell.
    Undetermined,
}

impl BounceClass {
    /// Every class, the most severe first.
    pub const ALL: [BounceClass; 4] =
        [BounceClass::Hard, BounceClass::Suppressed, BounceClass::Soft, BounceClass::Undetermined];

    /// The name in the config, the output and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            BounceClass::Hard => "hard",
            BounceClass::Suppressed => "suppressed",
            BounceClass::Soft => "soft",
            BounceClass::Undetermined => "undetermined",
        }
    }

    /// What the class means for the address, in words for people.
    pub const fn meaning(self) -> &'static str {
        match self {
            BounceClass::Hard => "the address is dead, stop mailing it",
            BounceClass::Suppressed => {
                "SES did not send, the address is on a suppression list: the application should not mail it"
            }
            BounceClass::Soft => "a temporary failure, the address may work later",
            BounceClass::Undetermined => "SES could not tell why the mail bounced",
        }
    }
}

impl fmt::Display for BounceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 3463 enhanced status code, `class.subject.detail` (`5.1.1`, `5.1.10`, `4.7.650`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl StatusCode {
    /// Reads a whole field as a code: `5.1.1`, surrounding whitespace allowed;
    /// anything else (`5.1`, `5.1.1 user unknown`, `failed`) is not one.
    pub fn parse(text: &str) -> Option<StatusCode> {
        let text = text.trim();
        match code_at(text.as_bytes(), 0) {
            Some((code, end)) if end == text.len() => Some(code),
            _ => None,
        }
    }

    /// The first code in an SMTP diagnostic that follows a three-digit reply
    /// code (`smtp; 550 5.1.1 user unknown`, `550-5.1.1 ...`, `452 4.2.2`).
    pub fn in_diagnostic(text: &str) -> Option<StatusCode> {
        let bytes = text.as_bytes();
        let mut at = 0;
        while at + 3 <= bytes.len() {
            let starts_token = at == 0 || !is_code_byte(bytes[at - 1]);
            // An SMTP reply code: 2xx to 5xx.
            let reply = starts_token
                && matches!(bytes[at], b'2'..=b'5')
                && bytes[at + 1..at + 3].iter().all(u8::is_ascii_digit);
            if !reply {
                at += 1;
                continue;
            }
            // Spaces, tabs, line breaks (a folded diagnostic) or the dash of a
            // multi-line reply, then optionally `#` or `(` (`550 #5.1.0`, `550 (5.1.1)`).
            let mut next = at + 3;
            let separators =
                bytes[next..].iter().take_while(|b| matches!(b, b' ' | b'-' | b'\t' | b'\r' | b'\n')).count();
            next += separators;
            if separators > 0 && matches!(bytes.get(next), Some(b'#' | b'(')) {
                next += 1;
            }
            if separators > 0 {
                if let Some((code, _)) = code_at(bytes, next) {
                    return Some(code);
                }
            }
            at += 3;
        }
        None
    }

    /// Whether the code says the address itself is dead: `5.1.x` (bad
    /// mailbox or domain), `5.2.1` (mailbox disabled), `5.4.4` (unroutable).
    pub fn is_dead_address(self) -> bool {
        matches!((self.class, self.subject, self.detail), (5, 1, _) | (5, 2, 1) | (5, 4, 4))
    }

    /// What the code means, for the codes that make a bounce hard.
    pub fn meaning(self) -> &'static str {
        match (self.class, self.subject, self.detail) {
            (5, 1, 1) => "no such mailbox",
            (5, 1, 2) => "no such domain",
            (5, 1, 3) => "a malformed address",
            (5, 1, 6) => "the mailbox has moved",
            (5, 1, 10) => "the domain accepts no mail (null MX)",
            (5, 1, _) => "a bad destination address",
            (5, 2, 1) => "the mailbox is disabled",
            (5, 4, 4) => "the domain cannot be routed to",
            _ => "a permanent failure",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

fn is_code_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.'
}

/// A code starting at `at` and ending where digits and dots do (a trailing
/// sentence dot is allowed): the code and the index after it.
fn code_at(bytes: &[u8], at: usize) -> Option<(StatusCode, usize)> {
    let digits = |from: usize, max: usize| -> Option<(u16, usize)> {
        let n = bytes.get(from..)?.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > max {
            return None;
        }
        let value = bytes[from..from + n].iter().fold(0u16, |v, b| v * 10 + u16::from(b - b'0'));
        Some((value, from + n))
    };
    let dot = |at: usize| (bytes.get(at) == Some(&b'.')).then_some(at + 1);
    let (class, end) = digits(at, 1)?;
    let (subject, end) = digits(dot(end)?, 3)?;
    let (detail, end) = digits(dot(end)?, 3)?;
    // `5.1.1.3` is an address or a version, not a code; `5.1.1.` ends a sentence.
    let followed_by_more = match bytes.get(end) {
        Some(b) if b.is_ascii_alphanumeric() => true,
        Some(b'.') => bytes.get(end + 1).is_some_and(u8::is_ascii_alphanumeric),
        _ => false,
    };
    if followed_by_more || !matches!(class, 2 | 4 | 5) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // one digit
    let class = class as u8;
    Some((StatusCode { class, subject, detail }, end))
}

/// A recipient's enhanced status code: its `status` when that is one, else
/// the first code after a reply code in its `diagnosticCode`.
pub fn recipient_status(status: Option<&str>, diagnostic_code: Option<&str>) -> Option<StatusCode> {
    status.and_then(StatusCode::parse).or_else(|| diagnostic_code.and_then(StatusCode::in_diagnostic))
}

/// Why a bounce has its class: the class, and the recipient code that made a
/// `Transient` or `Undetermined` bounce hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub class: BounceClass,
    /// The first dead-address code among the bounced recipients, when it
    /// decided the class against SES's type.
    pub code: Option<StatusCode>,
}

/// SES's `bounceType` as the table reads it; a missing or unknown type is
/// `Undetermined`, since SES did not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BounceType {
    Permanent,
    Transient,
    Undetermined,
}

fn bounce_type(text: Option<&str>) -> BounceType {
    match text.map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("Permanent") => BounceType::Permanent,
        Some(t) if t.eq_ignore_ascii_case("Transient") => BounceType::Transient,
        _ => BounceType::Undetermined,
    }
}

/// The class of a bounce from its type, subtype and the status codes of its
/// bounced recipients.
pub fn classify(
    bounce_type_text: Option<&str>,
    subtype: Option<&str>,
    codes: impl IntoIterator<Item = Option<StatusCode>>,
) -> Verdict {
    let verdict = |class, code| Verdict { class, code };
    match bounce_type(bounce_type_text) {
        BounceType::Permanent => {
            let suppressed = subtype.map(str::trim).is_some_and(|s| {
                s.eq_ignore_ascii_case("Suppressed") || s.eq_ignore_ascii_case("OnAccountSuppressionList")
            });
            verdict(if suppressed { BounceClass::Suppressed } else { BounceClass::Hard }, None)
        }
        other => match codes.into_iter().flatten().find(|c| c.is_dead_address()) {
            Some(code) => verdict(BounceClass::Hard, Some(code)),
            None if other == BounceType::Transient => verdict(BounceClass::Soft, None),
            None => verdict(BounceClass::Undetermined, None),
        },
    }
}

impl Verdict {
    /// One line for people: the class, what it means, and, when it differs
    /// from what SES's type suggests, why ("SES says Transient, but 5.1.1 no
    /// such mailbox: the address is dead").
    pub fn explain(&self, bounce_type: Option<&str>, subtype: Option<&str>) -> String {
        let ses = match (bounce_type, subtype) {
            (Some(t), Some(s)) => format!("{t}/{s}"),
            (Some(t), None) => t.to_owned(),
            (None, _) => "no bounce type".to_owned(),
        };
        match self.code {
            Some(code) => {
                format!("{}: SES says {ses}, but {code} {}: {}", self.class, code.meaning(), self.class.meaning())
            }
            None => format!("{}: {}", self.class, self.class.meaning()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> StatusCode {
        StatusCode::parse(text).expect("a code")
    }

    fn class(bounce_type: &str, subtype: &str, statuses: &[(&str, &str)]) -> BounceClass {
        let codes = statuses.iter().map(|(status, diag)| {
            recipient_status(Some(*status).filter(|s| !s.is_empty()), Some(*diag).filter(|d| !d.is_empty()))
        });
        classify(Some(bounce_type), Some(subtype), codes).class
    }

    #[test]
    fn every_row_of_the_contract_table() {
        use BounceClass::{Hard, Soft, Suppressed, Undetermined};
        assert_eq!(class("Permanent", "Suppressed", &[]), Suppressed);
        assert_eq!(class("Permanent", "OnAccountSuppressionList", &[("5.1.1", "")]), Suppressed);
        for subtype in ["General", "NoEmail", "UnsubscribedRecipient", ""] {
            assert_eq!(class("Permanent", subtype, &[]), Hard, "{subtype}");
        }
        assert_eq!(class("Permanent", "General", &[("4.2.2", "")]), Hard);
        for status in ["5.1.1", "5.1.0", "5.1.10", "5.2.1", "5.4.4"] {
            assert_eq!(class("Transient", "General", &[(status, "")]), Hard, "{status}");
            assert_eq!(class("Undetermined", "Undetermined", &[(status, "")]), Hard, "{status}");
        }
        for status in ["5.0.0", "5.2.2", "5.4.1", "5.7.1", "4.1.1", "4.4.4", "4.2.2", ""] {
            assert_eq!(class("Transient", "MailboxFull", &[(status, "")]), Soft, "{status}");
            assert_eq!(class("Undetermined", "Undetermined", &[(status, "")]), Undetermined, "{status}");
        }
        assert_eq!(class("Transient", "General", &[]), Soft);
        assert_eq!(class("Undetermined", "Undetermined", &[]), Undetermined);
    }

    #[test]
    fn any_bounced_recipient_can_make_it_hard() {
        let statuses = [("4.2.2", ""), ("", "smtp; 550 5.1.1 user unknown"), ("4.4.7", "")];
        let verdict = classify(
            Some("Transient"),
            Some("General"),
            statuses.iter().map(|(s, d)| recipient_status(Some(*s).filter(|s| !s.is_empty()), Some(*d))),
        );
        assert_eq!(verdict, Verdict { class: BounceClass::Hard, code: Some(code("5.1.1")) });
    }

    #[test]
    fn the_status_field_wins_when_it_is_a_code() {
        assert_eq!(recipient_status(Some("5.0.0"), Some("smtp; 550 5.1.1 unknown")), Some(code("5.0.0")));
        assert_eq!(recipient_status(Some(" 5.1.1 "), None), Some(code("5.1.1")));
    }

    #[test]
    fn a_malformed_status_falls_back_to_the_diagnostic_code() {
        for status in ["5.1", "failed", "5.1.1 user unknown", "", "5..1", "550", "5.1.1.1", "9.1.1", "5.1.1000"] {
            assert_eq!(
                recipient_status(Some(status), Some("smtp; 550 5.4.4 unroutable")),
                Some(code("5.4.4")),
                "{status:?}"
            );
        }
        assert_eq!(recipient_status(None, Some("smtp; 550 5.2.1 disabled")), Some(code("5.2.1")));
        assert_eq!(recipient_status(Some("nonsense"), None), None);
    }

    #[test]
    fn the_diagnostic_code_needs_a_reply_code_before_the_status() {
        let found = |text: &str| StatusCode::in_diagnostic(text).map(|c| c.to_string());
        assert_eq!(found("smtp; 550 5.1.1 user unknown").as_deref(), Some("5.1.1"));
        assert_eq!(found("550 5.1.1 <a@b.test>: Recipient address rejected").as_deref(), Some("5.1.1"));
        assert_eq!(found("smtp;550 5.1.1 no").as_deref(), Some("5.1.1"));
        assert_eq!(
            found("smtp; 550-5.1.1 The email account that you tried to reach does not exist.\n550-5.1.1 Please")
                .as_deref(),
            Some("5.1.1")
        );
        assert_eq!(found("smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound").as_deref(), Some("5.1.10"));
        assert_eq!(found("smtp; 452 4.2.2 mailbox full").as_deref(), Some("4.2.2"));
        assert_eq!(found("smtp; 554 4.4.7 Message expired").as_deref(), Some("4.4.7"));
        assert_eq!(found("smtp; 550 5.1.1.").as_deref(), Some("5.1.1"));
        assert_eq!(found("smtp; 550\n5.1.1 folded").as_deref(), Some("5.1.1"));
        assert_eq!(found("smtp; 550\r\n 5.1.1 folded").as_deref(), Some("5.1.1"));
        assert_eq!(found("smtp; 550 #5.1.0 Address rejected").as_deref(), Some("5.1.0"));
        assert_eq!(found("smtp; 550 (5.1.1) unknown").as_deref(), Some("5.1.1"));
        assert_eq!(found("smtp; 550\t5.1.1").as_deref(), Some("5.1.1"));
        assert_eq!(found("smtp; 550 5.7.1 spam; 550 5.1.1 unknown").as_deref(), Some("5.7.1"), "the first code");
        // Only 2xx to 5xx are reply codes.
        assert_eq!(found("ticket 999 5.1.1"), None);
        assert_eq!(found("ticket 123 5.1.1"), None);
        // No reply code before the status, or no status after the reply code.
        assert_eq!(found("5.1.1 user unknown"), None);
        assert_eq!(found("smtp; 550 user unknown"), None);
        assert_eq!(found("smtp; 550 Requested action not taken: 5.1.1"), None);
        // Digits inside another token are not a reply code.
        assert_eq!(found("host 10.0.0.550 5.1.1"), None);
        assert_eq!(found("id A550 5.1.1"), None);
        assert_eq!(found("smtp; 550 5.1.1.3 mx"), None);
        assert_eq!(found(""), None);
        assert_eq!(found("55"), None);
    }

    #[test]
    fn types_and_subtypes_are_read_without_regard_to_case_and_an_unknown_type_is_undetermined() {
        assert_eq!(class("permanent", "suppressed", &[]), BounceClass::Suppressed);
        assert_eq!(class("TRANSIENT", "General", &[]), BounceClass::Soft);
        assert_eq!(class("Bounce, Complaint, or Delivery.", "", &[]), BounceClass::Undetermined);
        assert_eq!(classify(None, None, []).class, BounceClass::Undetermined);
        assert_eq!(classify(None, None, [Some(code("5.1.1"))]).class, BounceClass::Hard);
    }

    #[test]
    fn the_explanation_says_why_when_the_class_differs_from_ses() {
        let verdict = Verdict { class: BounceClass::Hard, code: Some(code("5.1.1")) };
        assert_eq!(
            verdict.explain(Some("Transient"), Some("General")),
            "hard: SES says Transient/General, but 5.1.1 no such mailbox: the address is dead, stop mailing it"
        );
        let suppressed = Verdict { class: BounceClass::Suppressed, code: None };
        assert!(
            suppressed.explain(Some("Permanent"), Some("Suppressed")).starts_with("suppressed: SES did not send, ")
        );
    }

    #[test]
    fn hostile_diagnostics_do_not_panic() {
        for text in ["\u{fe0f}550 5.1.1", "550 5.", "550 5.1.", "5505.1.1", "550 \u{e9}5.1.1", "550 5.1.1\u{0}"] {
            let _ = StatusCode::in_diagnostic(text);
            let _ = StatusCode::parse(text);
        }
        assert!(StatusCode::in_diagnostic(&"550 ".repeat(10_000)).is_none());
    }
}
