//! Text helpers every stage uses for what reaches people and logs.

/// An error and its sources, each said once: `dispatch failure: io error: connection refused`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// At most `max` characters of `text`, cut between characters, `…` marking a cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().nth(max).is_none() {
        return text.to_owned();
    }
    let end = text.char_indices().nth(max.saturating_sub(1)).map_or(0, |(i, _)| i);
    format!("{}…", &text[..end])
}

/// At most `max` characters of `text`, followed by `...` when it was longer
/// (a quote inside an error reason, which says how much it kept).
pub fn clip_then_dots(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// `text` on one line: every run of whitespace (line breaks too) one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_between_characters() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("ééé€", 3), "éé…");
    }

    #[test]
    fn one_line_joins_lines_and_runs_of_spaces() {
        assert_eq!(one_line(" a\r\n b\t\tc "), "a b c");
    }
}
