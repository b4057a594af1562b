//! Messages for Slack incoming webhooks: `text`, a one-line summary Slack
//! shows in notifications, and `blocks`, the message itself. Every piece
//! of content is escaped so a notification cannot mention anyone or forge
//! a link, and clipped so the message stays within Slack's limits (3,000
//! characters a section, 50 blocks, 40,000 characters in all).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::Origin;
use super::report::Report;

/// Slack's limit on a section's text.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Recipients listed one by one; the rest are counted.
pub const MAX_RECIPIENTS: usize = 10;
/// An address, a sender, a subject, a time, a status, a name.
const MAX_FIELD_CHARS: usize = 300;
/// A diagnostic code or a reason.
const MAX_DIAGNOSTIC_CHARS: usize = 1000;
/// The routes or a dead letter's reason.
const MAX_LIST_CHARS: usize = 1000;
/// The part of a dead letter's body shown.
const MAX_EXCERPT_CHARS: usize = 500;
/// The most one character grows by escaping (`&` to `&amp;`).
const MAX_ESCAPE_GROWTH: usize = 5;
const MAX_SUMMARY_CHARS: usize = 300;

/// The message for a notification, serialized.
pub fn notification(report: &Report) -> Vec<u8> {
    let mut summary = report.headline.clone();
    if !report.sender.is_empty() {
        let _ = write!(summary, " from {}", report.sender);
    }
    let affected = report.recipients.len() + report.omitted_recipients;
    if let Some(first) = report.recipients.first() {
        let _ = write!(summary, " to {}", first.address);
        if affected > 1 {
            let _ = write!(summary, " and {} more", affected - 1);
        }
    }

    let mut about = format!("*{}*", field(&report.headline));
    let mut line = |label: &str, value: String| {
        let _ = write!(about, "\n*{label}:* {value}");
    };
    if !report.sender.is_empty() {
        line("From", field(&report.sender));
    }
    if let Some(subject) = &report.subject {
        line("Subject", field(subject));
    }
    if !report.time.is_empty() {
        line("When", field(&report.time));
    }
    if let Some(class) = &report.bounce_class_text {
        line("Class", escape(class, MAX_DIAGNOSTIC_CHARS));
    }
    if let Some(reason) = &report.reason {
        line("Reason", escape(reason, MAX_DIAGNOSTIC_CHARS));
    }

    let mut blocks = vec![section(&about)];
    for recipient in report.recipients.iter().take(MAX_RECIPIENTS) {
        let mut text = format!("*To:* {}", field(&recipient.address));
        if let Some(status) = &recipient.status {
            let _ = write!(text, " (status {})", field(status));
        }
        if let Some(diagnostic) = &recipient.diagnostic_code {
            let _ = write!(text, "\n*Diagnostic:* {}", escape(diagnostic, MAX_DIAGNOSTIC_CHARS));
        }
        blocks.push(section(&text));
    }
    if let Some(more) = affected.checked_sub(MAX_RECIPIENTS).filter(|n| *n > 0) {
        blocks.push(section(&format!("_and {more} more recipients_")));
    }
    let routes = escape(&report.routes.join(", "), MAX_LIST_CHARS);
    blocks.push(context(&format!(
        "Routes: {routes} · Queue: {} · Message ID: {}",
        field(&report.queue),
        field(&report.message_id)
    )));
    message(&summary, &blocks)
}

/// The message for a body that could not be understood or delivered:
/// the reason, where it came from, and the start of the body.
pub fn dead_letter(origin: Origin<'_>, body: &str, reason: &str) -> Vec<u8> {
    let queue = field(origin.queue);
    let mut blocks = vec![section(&format!(
        "*A message from queue {queue} could not be handled and was dead-lettered*\n*Reason:* {}\n*SQS message id:* {}",
        escape(reason, MAX_LIST_CHARS),
        field(origin.sqs_message_id)
    ))];
    if !body.trim().is_empty() {
        let length = body.chars().count();
        let excerpt = crate::text::clip(body, MAX_EXCERPT_CHARS);
        let heading = if excerpt.len() == body.len() {
            "*Body:*".to_owned()
        } else {
            format!("*Body* (its start; {length} characters in all):")
        };
        // Clipped before escaping, so how much is shown does not depend on
        // how many characters need escaping.
        let excerpt = escape_lines(&excerpt, MAX_ESCAPE_GROWTH * MAX_EXCERPT_CHARS);
        blocks.push(section(&format!("{heading}\n```{excerpt}```")));
    }
    message(&format!("sesroute dead-lettered a message from queue {}", origin.queue), &blocks)
}

fn message(summary: &str, blocks: &[Value]) -> Vec<u8> {
    let message = json!({
        "text": escape(summary, MAX_SUMMARY_CHARS),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    });
    message.to_string().into_bytes()
}

/// A section of escaped text. `verbatim` keeps Slack from turning bare
/// words into mentions, channel names or links.
fn section(text: &str) -> Value {
    debug_assert!(text.chars().count() <= MAX_SECTION_CHARS, "a section over Slack's limit");
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text, "verbatim": true } })
}

fn context(text: &str) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": text, "verbatim": true }] })
}

fn field(text: &str) -> String {
    escape(text, MAX_FIELD_CHARS)
}

/// `text` for mrkdwn on one line: control characters become spaces.
pub fn escape(text: &str, max: usize) -> String {
    escaped(text, max, false)
}

/// `text` for mrkdwn, keeping its line breaks.
fn escape_lines(text: &str, max: usize) -> String {
    escaped(text, max, true)
}

/// `&`, `<` and `>` escaped as Slack asks (the rest of mrkdwn only styles
/// text), at most `max` characters once escaped, cut between characters
/// and never inside an escape, `…` marking a cut.
fn escaped(text: &str, max: usize, keep_lines: bool) -> String {
    let piece = |c: char| -> (char, &'static str) {
        match c {
            '&' => (c, "&amp;"),
            '<' => (c, "&lt;"),
            '>' => (c, "&gt;"),
            '\n' if keep_lines => (c, ""),
            c if c.is_control() => (' ', ""),
            c => (c, ""),
        }
    };
    let length = |(_, entity): (char, &str)| if entity.is_empty() { 1 } else { entity.len() };
    // Escaping never shortens, so only the first max + 1 characters matter.
    let total: usize = text.chars().take(max + 1).map(|c| length(piece(c))).sum();
    let budget = if total <= max { max } else { max.saturating_sub(1) };
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = piece(c);
        used += length(piece);
        if used > budget {
            break;
        }
        match piece {
            (c, "") => out.push(c),
            (_, entity) => out.push_str(entity),
        }
    }
    if total > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::report::RecipientReport;

    fn report(recipients: usize, content: &str) -> Report {
        Report {
            kind: "bounce",
            headline: "Permanent bounce (General)".into(),
            time: "2026-01-01T00:00:01.000Z".into(),
            sender: "billing@acme.test".into(),
            sender_domain: "acme.test".into(),
            subject: Some(format!("Invoice {content}")),
            message_id: "m-1".into(),
            recipients: (0..recipients)
                .map(|i| RecipientReport {
                    address: format!("user{i}@customer.test"),
                    status: Some("5.1.1".into()),
                    diagnostic_code: Some(format!("smtp; 550 5.1.1 {content}")),
                })
                .collect(),
            omitted_recipients: 0,
            bounce_type: Some("Permanent".into()),
            bounce_subtype: Some("General".into()),
            bounce_class: Some("hard"),
            bounce_class_text: Some("hard: the address is dead, stop mailing it".into()),
            complaint_type: None,
            reason: None,
            routes: vec!["billing".into(), "all".into()],
            queue: "bounces".into(),
        }
    }

    fn parse(message: &[u8]) -> Value {
        serde_json::from_slice(message).unwrap()
    }

    fn texts(message: &Value) -> Vec<String> {
        let mut texts = vec![message["text"].as_str().unwrap().to_owned()];
        for block in message["blocks"].as_array().unwrap() {
            let text = block["text"]["text"].as_str().or_else(|| block["elements"][0]["text"].as_str());
            texts.push(text.unwrap().to_owned());
        }
        texts
    }

    #[test]
    fn only_ampersand_and_angle_brackets_are_escaped() {
        assert_eq!(
            escape("<!channel> & <https://evil.test|click>", 100),
            "&lt;!channel&gt; &amp; &lt;https://evil.test|click&gt;"
        );
        assert_eq!(escape("*bold* _it_ `code` @here", 100), "*bold* _it_ `code` @here");
        assert_eq!(escape("two\r\nlines\tand tab", 100), "two  lines and tab");
        assert_eq!(escape_lines("two\nlines", 100), "two\nlines");
    }

    #[test]
    fn clipping_counts_the_escaped_text_and_never_splits_an_escape_or_a_character() {
        assert_eq!(escape("abcdef", 6), "abcdef");
        assert_eq!(escape("abcdefg", 6), "abcde…");
        assert_eq!(escape("a<b", 6), "a&lt;b");
        assert_eq!(escape("a<<", 6), "a&lt;…");
        assert_eq!(escape("abc<", 6), "abc…", "not abc&l…");
        assert_eq!(escape("ééééééé", 4), "ééé…");
        assert_eq!(escape("😀😀😀", 2), "😀…");
        assert_eq!(escape("", 0), "");
        for n in 0..30 {
            let clipped = escape(&"x&<y>é".repeat(10), n);
            assert!(clipped.chars().count() <= n.max(1), "{n}: {clipped}");
        }
    }

    #[test]
    fn a_bounce_reads_as_what_from_whom_to_whom_and_why() {
        let message = parse(&notification(&report(1, "user unknown")));
        assert_eq!(message["text"], "Permanent bounce (General) from billing@acme.test to user0@customer.test");
        let texts = texts(&message);
        assert_eq!(
            texts[1],
            "*Permanent bounce (General)*\n*From:* billing@acme.test\n*Subject:* Invoice user unknown\n\
             *When:* 2026-01-01T00:00:01.000Z\n*Class:* hard: the address is dead, stop mailing it"
        );
        assert_eq!(texts[2], "*To:* user0@customer.test (status 5.1.1)\n*Diagnostic:* smtp; 550 5.1.1 user unknown");
        assert_eq!(texts[3], "Routes: billing, all · Queue: bounces · Message ID: m-1");
        assert_eq!(message["blocks"][0]["text"]["verbatim"], true);
    }

    #[test]
    fn content_cannot_mention_or_link() {
        let hostile = "<!channel> <@U123> <https://evil.test|your bank> &amp;";
        let mut report = report(2, hostile);
        report.sender = "<!here>@evil.test".into();
        report.reason = Some(hostile.into());
        report.routes = vec!["<!everyone>".into()];
        report.queue = "<#C1>".into();
        let message = String::from_utf8(notification(&report)).unwrap();
        assert!(!message.contains(['<', '>']), "{message}");
        assert!(message.contains("&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.test|your bank&gt; &amp;amp;"));
        let dead =
            String::from_utf8(dead_letter(Origin { queue: "q", sqs_message_id: "m" }, hostile, hostile)).unwrap();
        assert!(!dead.contains(['<', '>']), "{dead}");
    }

    #[test]
    fn many_recipients_and_long_diagnostics_stay_within_slacks_limits() {
        let long = "&".repeat(50_000);
        let mut report = report(1000, &long);
        report.reason = Some(long.clone());
        report.sender = long.clone();
        report.routes = vec![long.clone(); 5];
        let bytes = notification(&report);
        let message = parse(&bytes);
        let blocks = message["blocks"].as_array().unwrap();
        // About, ten recipients, the rest counted, the context.
        assert_eq!(blocks.len(), 1 + MAX_RECIPIENTS + 1 + 1);
        assert_eq!(blocks[11]["text"]["text"], "_and 990 more recipients_");
        let texts = texts(&message);
        assert!(texts.iter().all(|t| t.chars().count() <= MAX_SECTION_CHARS));
        assert!(texts[2].ends_with("&amp;&amp;…"), "{}", texts[2]);
        let total: usize = texts.iter().map(|t| t.chars().count()).sum();
        assert!(total < 20_000, "{total}");
        assert!(bytes.len() < 40_000, "{}", bytes.len());
    }

    /// Every notification of the corpus and of AWS's documentation makes
    /// a Slack message within its limits.
    #[test]
    fn every_known_notification_makes_a_valid_slack_message() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        for dir in ["samples/bodies", "aws-doc-examples"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let Ok(body) = std::fs::read_to_string(&path) else { continue };
                let mut scratch = String::new();
                let Ok(crate::notification::Parsed::Notification(n)) = crate::notification::parse(&body, &mut scratch)
                else {
                    continue;
                };
                let message =
                    parse(&notification(&Report::new(Origin { queue: "q", sqs_message_id: "m" }, &n, &["r"])));
                let blocks = message["blocks"].as_array().unwrap_or_else(|| panic!("{}: no blocks", path.display()));
                assert!(!blocks.is_empty() && blocks.len() <= 50, "{}", path.display());
                assert!(message["text"].as_str().is_some_and(|t| !t.is_empty()), "{}", path.display());
                assert!(texts(&message).iter().all(|t| t.chars().count() <= MAX_SECTION_CHARS), "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen > 40, "{seen} notifications");
    }

    #[test]
    fn a_report_without_sender_or_recipients_still_reads() {
        let mut report = report(0, "");
        report.sender = String::new();
        report.subject = None;
        report.reason = Some("Bad content".into());
        let message = parse(&notification(&report));
        assert_eq!(message["text"], "Permanent bounce (General)");
        assert_eq!(
            texts(&message)[1],
            "*Permanent bounce (General)*\n*When:* 2026-01-01T00:00:01.000Z\n\
             *Class:* hard: the address is dead, stop mailing it\n*Reason:* Bad content"
        );
        assert_eq!(message["blocks"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_dead_letter_says_why_and_shows_the_start_of_the_body() {
        let origin = Origin { queue: "bounces", sqs_message_id: "sqs-9" };
        let message =
            parse(&dead_letter(origin, &format!("{{not json {}", "é".repeat(2000)), "not JSON: key must be a string"));
        assert_eq!(message["text"], "sesroute dead-lettered a message from queue bounces");
        let shown = texts(&message);
        assert_eq!(
            shown[1],
            "*A message from queue bounces could not be handled and was dead-lettered*\n\
             *Reason:* not JSON: key must be a string\n*SQS message id:* sqs-9"
        );
        let excerpt = format!("{{not json {}…", "é".repeat(MAX_EXCERPT_CHARS - 11));
        assert_eq!(shown[2], format!("*Body* (its start; 2010 characters in all):\n```{excerpt}```"));

        let short = parse(&dead_letter(origin, "a <b>\nc", "r"));
        assert_eq!(texts(&short)[2], "*Body:*\n```a &lt;b&gt;\nc```");
        assert_eq!(parse(&dead_letter(origin, " ", "r"))["blocks"].as_array().unwrap().len(), 1);
    }
}
