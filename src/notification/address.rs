//! Bare addresses: the addr-spec of a mailbox, lowercased, as routing compares it.
//!
//! `mail.source` can carry a display name (quoted, unquoted or RFC 2047
//! encoded) and angle brackets; recipients occasionally do too. Anything more
//! than a plain address is handed to `mailparse`'s RFC 5322 address parser.

use std::borrow::Cow;

/// The addr-spec of the first mailbox in `raw`, lowercased; `None` when there is none.
///
/// Borrows from `raw` when it already is a bare lowercase address (the common case).
pub fn bare(raw: &str) -> Option<Cow<'_, str>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if is_plain(raw) {
        return Some(lowercase(raw));
    }
    let list = mailparse::addrparse(raw).ok()?;
    let addr = list.iter().find_map(|entry| match entry {
        mailparse::MailAddr::Single(single) => Some(single.addr.as_str()),
        mailparse::MailAddr::Group(group) => group.addrs.first().map(|single| single.addr.as_str()),
    })?;
    let addr = addr.trim();
    (!addr.is_empty()).then(|| Cow::Owned(lowercase(addr).into_owned()))
}

/// [`bare`] for a string that may borrow from the input: the result borrows too.
pub fn bare_cow(raw: Cow<'_, str>) -> Option<Cow<'_, str>> {
    match raw {
        Cow::Borrowed(raw) => bare(raw),
        Cow::Owned(raw) => bare(&raw).map(|addr| Cow::Owned(addr.into_owned())),
    }
}

/// A string that is already an addr-spec needs no parser (the common case).
fn is_plain(raw: &str) -> bool {
    raw.contains('@')
        && !raw.bytes().any(|b| {
            matches!(b, b'<' | b'>' | b'"' | b'(' | b')' | b',' | b';' | b':' | b'=' | b'\\') || b.is_ascii_whitespace()
        })
}

fn lowercase(s: &str) -> Cow<'_, str> {
    if !s.is_ascii() {
        Cow::Owned(s.to_lowercase())
    } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::bare;

    #[test]
    fn plain_addresses_are_lowercased() {
        assert_eq!(bare("Build-Bot@DEV.Acme.Test").as_deref(), Some("build-bot@dev.acme.test"));
        assert_eq!(bare("  a@b.test \n").as_deref(), Some("a@b.test"));
    }

    #[test]
    fn display_names_and_brackets_are_removed() {
        assert_eq!(bare("Sender Name <sender@example.com>").as_deref(), Some("sender@example.com"));
        assert_eq!(bare("\"QA Bot\" <bot@qa.acme.test>").as_deref(), Some("bot@qa.acme.test"));
        assert_eq!(bare("<Only@Brackets.test>").as_deref(), Some("only@brackets.test"));
        assert_eq!(bare("\"Doe, Jane\" <jane@example.com>").as_deref(), Some("jane@example.com"));
    }

    #[test]
    fn rfc2047_display_names_are_removed() {
        assert_eq!(
            bare("=?UTF-8?B?QWNtZSBaYWhsdW5nZW4gw7xiZXJmw6RsbGln?= <receipts@acme.test>").as_deref(),
            Some("receipts@acme.test")
        );
        assert_eq!(bare("=?utf-8?Q?J=C3=BCrgen?= <J@X.test>").as_deref(), Some("j@x.test"));
    }

    #[test]
    fn the_first_of_a_list_is_taken() {
        assert_eq!(bare("Jane <jane@example.com>, Mary <mary@example.com>").as_deref(), Some("jane@example.com"));
    }

    #[test]
    fn nothing_gives_none() {
        assert_eq!(bare(""), None);
        assert_eq!(bare("   "), None);
    }
}
