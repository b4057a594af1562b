//! The nesting limit, checked before any JSON parser sees a text.
//!
//! The parsers recurse once per level of nesting (serde's skipping of an
//! unknown value too), so a body nested deep enough would overflow the stack
//! and abort the process. This scan is a loop over the bytes that knows only
//! strings, escapes and brackets: no recursion, no allocation.

/// The deepest nesting of objects and arrays a body, an SNS `Message` or an
/// `EventBridge` `detail` may have. Real notifications nest about six levels
/// (`detail.mail.headers[0]`); sinks read the SES JSON again with
/// `serde_json`, which refuses more than 127.
pub const MAX_DEPTH: usize = 64;

/// The byte offset of the first bracket that opens a level deeper than
/// `max`, when `text` has one.
///
/// For valid JSON the count is exact; for invalid JSON it is exact up to the
/// point where a parser would stop with a syntax error, so no parser that
/// this check let through recurses deeper than `max`.
pub fn too_deep(text: &str, max: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                // Skip the string: an escaped character is never its end.
                at += 1;
                while let Some(&byte) = bytes.get(at) {
                    match byte {
                        b'\\' => at += 2,
                        b'"' => break,
                        _ => at += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Some(at);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{{\"x\":{}{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1))
    }

    #[test]
    fn nesting_up_to_the_limit_passes() {
        assert_eq!(too_deep(&nested(MAX_DEPTH), MAX_DEPTH), None);
        assert_eq!(too_deep(&nested(MAX_DEPTH + 1), MAX_DEPTH), Some(MAX_DEPTH + 4));
        assert_eq!(too_deep("", MAX_DEPTH), None);
        assert_eq!(too_deep("{}[]{}", 1), None);
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let text = format!(r#"{{"a":"{}","b":"\"[[[","c\\":"{{"}}"#, "[".repeat(10_000));
        assert_eq!(too_deep(&text, 1), None);
        assert_eq!(too_deep(r#"{"a":"\\"}"#, 1), None, "an escaped backslash ends no string early");
        assert_eq!(too_deep(r#"{"a":"\\",[]}"#, 1), Some(10));
    }

    #[test]
    fn a_million_levels_are_found_without_recursion() {
        let text = "[".repeat(1_000_000);
        assert_eq!(too_deep(&text, MAX_DEPTH), Some(MAX_DEPTH));
        let text = "]".repeat(1_000_000) + "[]";
        assert_eq!(too_deep(&text, 1), None, "closing brackets never go below zero");
    }

    #[test]
    fn an_unterminated_string_or_escape_at_the_end_is_no_panic() {
        for text in [r#"{"a":"#, r#"{"a":"\"#, "\"", "\\", "[\"\\"] {
            assert_eq!(too_deep(text, MAX_DEPTH), None, "{text}");
        }
    }
}
