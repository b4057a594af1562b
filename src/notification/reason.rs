//! Parse-error reasons that are safe to log: no address, no body fragment.
//!
//! A reason names the path and the kind of problem. Input it does quote (an
//! unknown type name, a plain-text SNS `Message`) goes through [`Echo`]:
//! clipped to [`ECHO_MAX`] characters, every address in it masked. The
//! parsers' own quotes of a value (`invalid type: string "a@b.test", ...`)
//! and their excerpts of the body are dropped by [`parser_message`].

use std::fmt;

use crate::text::clip_then_dots;

/// The most characters of input a reason quotes; longer input is cut and
/// ends in `...`.
pub const ECHO_MAX: usize = 60;

/// The most characters of a parser's own message (library text, no input) kept.
const MESSAGE_MAX: usize = 2 * ECHO_MAX;

/// What a reason shows instead of a word of input that holds an `@`.
const MASK: &str = "[address]";

/// A piece of input as a reason may quote it: addresses masked, at most
/// [`ECHO_MAX`] characters; shown in double quotes, escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo(String);

impl Echo {
    pub fn new(text: &str) -> Echo {
        Echo(clip_then_dots(&mask(text), ECHO_MAX))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Echo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A key of the input, for a path: masked and clipped like an [`Echo`], unquoted.
pub fn key(text: &str) -> String {
    clip_then_dots(&mask(text), ECHO_MAX)
}

/// Every word (a run between spaces, quotes, brackets and separators) that
/// holds an `@` replaced by [`MASK`]: display names may stay, addresses go.
fn mask(text: &str) -> String {
    if !text.contains('@') {
        return text.to_owned();
    }
    let is_separator = |c: char| c.is_whitespace() || "\"'<>()[],;".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(if word.contains('@') { MASK } else { word });
        word.clear();
    };
    for c in text.chars() {
        if is_separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// How serde names the value it did not expect (`serde::de::Unexpected`),
/// without the value itself.
const UNEXPECTED: [&str; 17] = [
    "boolean",
    "integer",
    "floating point",
    "character",
    "string",
    "byte array",
    "unit value",
    "null",
    "Option value",
    "newtype struct",
    "sequence",
    "map",
    "enum",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
];

/// A parser's message (serde's, `sonic-rs`'s, `serde_json`'s) reduced to the
/// kind of problem: the excerpt of the input and the position that follow
/// it are cut, a quoted value is left out, and what is left is clipped.
///
/// `invalid type: string "a@b.test", expected a sequence` becomes
/// `invalid type: string, expected a sequence`.
pub fn parser_message(message: &str) -> String {
    // `sonic-rs` puts an excerpt of the input on the lines after the first.
    let line = message.lines().next().unwrap_or_default();
    let line = strip_position(line);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            let unexpected = UNEXPECTED.iter().find(|kind| rest.starts_with(**kind)).unwrap_or(&"value");
            // The expectation is the program's own text; a quoted value comes
            // before it, so the last `, expected ` is the real one.
            return match rest.rfind(", expected ") {
                Some(at) => {
                    let expected = clip_then_dots(&rest[at + ", expected ".len()..], ECHO_MAX);
                    format!("{prefix}{unexpected}, expected {expected}")
                }
                None => format!("{prefix}{unexpected}"),
            };
        }
    }
    clip_then_dots(&mask(&without_quoted(line)), MESSAGE_MAX)
}

/// `message` without a trailing ` at line L column C`.
fn strip_position(message: &str) -> &str {
    let Some(at) = message.rfind(" at line ") else { return message };
    let rest = &message[at + " at line ".len()..];
    let is_position = rest.split_once(" column ").is_some_and(|(line, column)| {
        !line.is_empty()
            && !column.is_empty()
            && line.bytes().all(|b| b.is_ascii_digit())
            && column.bytes().all(|b| b.is_ascii_digit())
    });
    if is_position { &message[..at] } else { message }
}

/// `text` with the inside of every double-quoted part (escapes honoured) left out.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' {
            out.push_str("...");
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
            out.push('"');
        }
    }
    out
}

/// A parser's message with the position it reports (`line`, `column`; 0 when
/// it has none), for text that is not JSON.
pub fn located(message: &str, line: usize, column: usize) -> String {
    let what = parser_message(message);
    if line == 0 { what } else { format!("{what} at line {line} column {column}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_is_clipped_and_quoted() {
        let long = "x".repeat(10_000);
        let echo = Echo::new(&long).to_string();
        assert_eq!(echo, format!("\"{}...\"", "x".repeat(ECHO_MAX)));
        assert_eq!(Echo::new("Bounced").to_string(), "\"Bounced\"");
        assert_eq!(Echo::new("é".repeat(100).as_str()).as_str().chars().count(), ECHO_MAX + 3);
    }

    #[test]
    fn an_echo_masks_addresses_and_keeps_the_rest() {
        assert_eq!(Echo::new("Jane Doe <jane@example.org>").as_str(), "Jane Doe <[address]>");
        assert_eq!(Echo::new("to=a@b.test, cc x@y").as_str(), "[address], cc [address]");
        assert_eq!(key("ops@acme.test"), "[address]");
    }

    #[test]
    fn a_quoted_value_never_survives() {
        let cases = [
            (
                r#"invalid type: string "someone@example.com", expected a sequence at line 1 column 80"#,
                "invalid type: string, expected a sequence",
            ),
            (
                r#"invalid type: string "a, expected b", expected struct Bounce"#,
                "invalid type: string, expected struct Bounce",
            ),
            ("invalid type: integer `5`, expected a string", "invalid type: integer, expected a string"),
            ("invalid type: null, expected a string", "invalid type: null, expected a string"),
            (r#"invalid value: string "x", expected y"#, "invalid value: string, expected y"),
            (
                "Invalid literal (`true`, `false`, or a `null`) while parsing at line 1 column 2\n\n\t{x@y.z\n\t.^\n",
                "Invalid literal (`true`, `false`, or a `null`) while parsing",
            ),
            (r#"unknown variant "me@x.test", expected one"#, r#"unknown variant "...", expected one"#),
            ("missing field `mail`", "missing field `mail`"),
            ("custom me@x.test", "custom [address]"),
        ];
        for (message, want) in cases {
            assert_eq!(parser_message(message), want, "{message}");
        }
    }

    #[test]
    fn a_position_is_kept_only_when_given_apart() {
        assert_eq!(
            located("EOF while parsing at line 1 column 9\n\n\t{\"a\":\n\t^", 1, 9),
            "EOF while parsing at line 1 column 9"
        );
        assert_eq!(located("expected value", 0, 0), "expected value");
    }
}
