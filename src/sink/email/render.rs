//! What an email says: the subject and bodies rendered from minijinja
//! templates (built-in ones in this folder, or the sink's own) for one
//! notification, a digest, or a dead letter.

use std::collections::BTreeMap;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use tracing::warn;

use super::super::report::Report;
use super::super::{Origin, SinkError};
use crate::config::{Email, EmailMode};
use crate::notification::bounce::BounceClass;

/// SMTP servers and mail clients cut long subjects anyway.
const MAX_SUBJECT_CHARS: usize = 200;
/// The most of a dead letter's body an email quotes.
const MAX_DEAD_LETTER_BYTES: usize = 64 * 1024;

const IMMEDIATE_SUBJECT: &str = include_str!("immediate.subject.j2");
const IMMEDIATE_TEXT: &str = include_str!("immediate.txt.j2");
const IMMEDIATE_HTML: &str = include_str!("immediate.html.j2");
const DIGEST_SUBJECT: &str = include_str!("digest.subject.j2");
const DIGEST_TEXT: &str = include_str!("digest.txt.j2");
const DIGEST_HTML: &str = include_str!("digest.html.j2");
const DEAD_LETTER_TEXT: &str = include_str!("dead-letter.txt.j2");
/// The dead letter's text, shown as is (HTML-escaped) in the HTML part.
const DEAD_LETTER_HTML: &str = "<!DOCTYPE html><html><body><pre>{{ text }}</pre></body></html>";

/// A sink's templates, and what it fills them with.
pub(super) struct Renderer {
    sink: String,
    mode: EmailMode,
    templates: Environment<'static>,
}

impl Renderer {
    /// The built-in templates of the sink's mode and its own (read now).
    pub(super) fn new(sink: &str, options: &Email) -> Result<Renderer, String> {
        let built_in = match options.mode {
            EmailMode::Immediate => [IMMEDIATE_SUBJECT, IMMEDIATE_TEXT, IMMEDIATE_HTML],
            EmailMode::Digest { .. } => [DIGEST_SUBJECT, DIGEST_TEXT, DIGEST_HTML],
        };
        let read = |key: &str, path: &Option<std::path::PathBuf>| {
            path.as_ref()
                .map(|path| {
                    std::fs::read_to_string(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))
                })
                .transpose()
        };
        let text = read("text_template", &options.text_template)?;
        let html = read("html_template", &options.html_template)?;
        let templates = templates(built_in, [&options.subject, &text, &html])?;
        Ok(Renderer { sink: sink.to_owned(), mode: options.mode, templates })
    }

    pub(super) fn context<'a>(&'a self, reports: &'a [Report]) -> Context<'a> {
        let (window_secs, max_rows) = match self.mode {
            EmailMode::Immediate => (None, usize::MAX),
            EmailMode::Digest { window, max_rows } => (Some(window.as_secs()), max_rows),
        };
        let mut sorted: Vec<&Report> = reports.iter().collect();
        sorted.sort_by(|a, b| (severity(a), &a.time, &a.message_id).cmp(&(severity(b), &b.time, &b.message_id)));
        let omitted = sorted.split_off(max_rows.min(sorted.len()));
        Context {
            sink: &self.sink,
            mode: if window_secs.is_some() { "digest" } else { "immediate" },
            window_secs,
            sent_at: jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC").to_string(),
            total: reports.len(),
            n: sorted.first().copied(),
            omitted: omitted.len(),
            omitted_by_kind: counts(omitted.iter().map(|r| r.kind)),
            notifications: sorted,
            by_kind: counts(reports.iter().map(|r| r.kind)),
            by_bounce_class: counts_by_severity(reports.iter().filter_map(|r| r.bounce_class)),
            by_domain: counts(reports.iter().map(|r| r.sender_domain.as_str())),
        }
    }

    pub(super) fn render(&self, name: &str, context: &Context<'_>) -> Result<String, SinkError> {
        let render = |name: &str| self.templates.get_template(name).and_then(|t| t.render(Serde(context)));
        if let Ok(custom) = self.templates.get_template(&format!("custom/{name}")) {
            match custom.render(Serde(context)) {
                Ok(text) => return Ok(text),
                // `{e}`, not `{e:#}`: the alternate form dumps the context, recipients included.
                Err(e) => {
                    warn!(sink = %self.sink, template = name, error = %e, "template failed: the built-in one is used");
                }
            }
        }
        render(name).map_err(|e| SinkError::Retryable(format!("built-in template {name} failed: {e}")))
    }

    /// Subject, plain text and HTML of an email for `context`.
    pub(super) fn email(&self, context: &Context<'_>) -> Result<(String, String, String), SinkError> {
        Ok((self.render("subject", context)?, self.render("text", context)?, self.render("html.html", context)?))
    }

    /// Subject, plain text and HTML of the email for a dead letter: the
    /// reason, where it came from, and the body (its first 64 KiB).
    pub(super) fn dead_letter(
        &self,
        origin: Origin<'_>,
        body: &str,
        reason: &str,
    ) -> Result<(String, String, String), SinkError> {
        let mut cut = body.len().min(MAX_DEAD_LETTER_BYTES);
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        let context = minijinja::context! {
            sink => &self.sink,
            reason => reason,
            queue => origin.queue,
            sqs_message_id => origin.sqs_message_id,
            body => &body[..cut],
            truncated => cut < body.len(),
        };
        let render = |name: &str, context| {
            self.templates
                .get_template(name)
                .and_then(|t| t.render(context))
                .map_err(|e| SinkError::Retryable(format!("{name} template failed: {e}")))
        };
        let text = render("dead-letter", context)?;
        let html = render("dead-letter.html", minijinja::context! { text => &text })?;
        let subject = format!("[sesroute] a message from {} could not be delivered", origin.queue);
        Ok((subject, text, html))
    }
}

/// What every template sees. For one notification, `notifications` holds it
/// alone and `n` is it.
#[derive(Debug, Serialize)]
pub(super) struct Context<'a> {
    /// The sink's name.
    sink: &'a str,
    /// `immediate` or `digest`.
    mode: &'static str,
    /// The window of a digest, in seconds.
    window_secs: Option<u64>,
    /// When the digest was put together, UTC.
    sent_at: String,
    /// Notifications in the email, listed or not.
    total: usize,
    /// The listed notifications: the first `digest_max`, most serious kinds first.
    notifications: Vec<&'a Report>,
    /// The first notification.
    n: Option<&'a Report>,
    /// Notifications counted but not listed.
    omitted: usize,
    /// Counts by kind, largest first.
    by_kind: Vec<Count>,
    /// Bounces counted by class, dead addresses first; empty without bounces.
    by_bounce_class: Vec<Count>,
    /// Counts by sender domain, largest first.
    by_domain: Vec<Count>,
    /// Counts by kind of the notifications not listed.
    omitted_by_kind: Vec<Count>,
}

#[derive(Debug, Serialize)]
struct Count {
    name: String,
    count: usize,
}

fn counts<'a>(names: impl Iterator<Item = &'a str>) -> Vec<Count> {
    let mut map: BTreeMap<&str, usize> = BTreeMap::new();
    for name in names {
        *map.entry(if name.is_empty() { "(none)" } else { name }).or_default() += 1;
    }
    let mut counts: Vec<Count> = map.into_iter().map(|(name, count)| Count { name: name.to_owned(), count }).collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    counts
}

/// Complaints (SES reviews an account at 0.1 %) and dead addresses (hard and
/// suppressed bounces) first: they are what someone has to act on; then the
/// other bounces, then the rest.
fn severity(report: &Report) -> u8 {
    match (report.kind, report.bounce_class) {
        ("complaint", _) => 0,
        ("bounce", Some("hard" | "suppressed")) => 1,
        ("bounce", _) => 2,
        ("reject" | "rendering-failure", _) => 3,
        ("delivery-delay", _) => 4,
        _ => 5,
    }
}

/// Counts of bounce classes, in the order of [`BounceClass::ALL`] (the most
/// severe first), the classes that occur only.
fn counts_by_severity<'a>(classes: impl Iterator<Item = &'a str>) -> Vec<Count> {
    let mut counts: Vec<Count> =
        BounceClass::ALL.iter().map(|c| Count { name: c.as_str().to_owned(), count: 0 }).collect();
    for class in classes {
        if let Some(count) = counts.iter_mut().find(|c| c.name == class) {
            count.count += 1;
        }
    }
    counts.retain(|c| c.count > 0);
    counts
}

/// The templates of one sink, by name: the built-in `subject`, `text`,
/// `html.html` (HTML escaping on), `dead-letter` and `dead-letter.html`; the configured ones as
/// `custom/subject`, `custom/text`, `custom/html.html`.
fn templates(built_in: [&str; 3], custom: [&Option<String>; 3]) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| e.to_string())?;
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|name| {
        if matches!(name, "html.html" | "custom/html.html" | "dead-letter.html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let names = ["subject", "text", "html.html"];
    let dead_letter = [("dead-letter", DEAD_LETTER_TEXT), ("dead-letter.html", DEAD_LETTER_HTML)];
    for (name, source) in names.into_iter().zip(built_in).chain(dead_letter) {
        env.add_template_owned(name, source.to_owned()).map_err(|e| format!("template {name}: {e}"))?;
    }
    for (name, source) in names.into_iter().zip(custom) {
        if let Some(source) = source {
            env.add_template_owned(format!("custom/{name}"), source.clone())
                .map_err(|e| format!("template {name}: {e}"))?;
        }
    }
    Ok(env)
}

/// One line of plain text for a header: control characters (line breaks
/// above all) become spaces, runs of spaces one, at most 200 characters.
pub(super) fn header_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    let out = out.trim_end();
    match out.char_indices().nth(MAX_SUBJECT_CHARS) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tls;

    #[test]
    fn header_text_cannot_carry_a_second_header() {
        assert_eq!(header_text("bounce from a@b.test\r\nBcc: evil@x.test"), "bounce from a@b.test Bcc: evil@x.test");
        assert_eq!(header_text("  a \t b  "), "a b");
        let long = "é".repeat(300);
        assert_eq!(header_text(&long).chars().count(), MAX_SUBJECT_CHARS + 1);
    }

    /// The SMTP error classes, as the README's table lists them.
    #[test]
    fn counts_are_largest_first_then_by_name() {
        let c = counts(["b", "a", "b", "", "a", "b"].into_iter());
        let pairs: Vec<(&str, usize)> = c.iter().map(|c| (c.name.as_str(), c.count)).collect();
        assert_eq!(pairs, [("b", 3), ("a", 2), ("(none)", 1)]);
    }

    fn report(body: &str) -> Report {
        let mut scratch = String::new();
        let Ok(crate::notification::Parsed::Notification(n)) = crate::notification::parse(body, &mut scratch) else {
            panic!("a notification")
        };
        Report::new(Origin { queue: "dev-feedback", sqs_message_id: "m" }, &n, &["dev"])
    }

    const BOUNCE: &str = r#"{"notificationType":"Bounce","mail":{"timestamp":"2026-01-01T00:00:00.000Z",
        "source":"app@dev.acme.test","messageId":"m1","destination":["a@x.test"],"commonHeaders":{"subject":"<b>Hi</b>"}},
        "bounce":{"bounceType":"Permanent","bounceSubType":"General","timestamp":"2026-01-01T00:00:01.000Z",
        "bouncedRecipients":[{"emailAddress":"a@x.test","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 no such user"}]}}"#;
    const BOUNCE_TO_THREE: &str = r#"{"notificationType":"Bounce","mail":{"timestamp":"2026-01-01T00:00:00.000Z",
        "source":"app@dev.acme.test","messageId":"m3","destination":["a@x.test","b@x.test","c@x.test"]},
        "bounce":{"bounceType":"Transient","bounceSubType":"MailboxFull","bouncedRecipients":[{"emailAddress":"a@x.test"},
        {"emailAddress":"b@x.test"},{"emailAddress":"c@x.test","status":"4.2.2"}]}}"#;
    const DELIVERY: &str = r#"{"notificationType":"Delivery","mail":{"timestamp":"2026-01-01T00:00:00.000Z",
        "source":"news@mkt.acme.test","messageId":"m2","destination":["b@y.test"]},
        "delivery":{"timestamp":"2026-01-01T00:00:02.000Z","recipients":["b@y.test"],"smtpResponse":"250 ok"}}"#;

    fn renderer(mode: EmailMode) -> Renderer {
        renderer_with_subject(mode, None)
    }

    fn renderer_with_subject(mode: EmailMode, subject: Option<&str>) -> Renderer {
        let options = Email {
            mode,
            to: vec!["dev@acme.test".into()],
            cc: Vec::new(),
            from: "sesroute <sesroute@acme.test>".into(),
            host: "127.0.0.1".into(),
            port: 2525,
            tls: Tls::None,
            username: None,
            password: None,
            timeout: std::time::Duration::from_secs(5),
            subject: subject.map(str::to_owned),
            text_template: None,
            html_template: None,
        };
        Renderer::new("dev-digest", &options).expect("a renderer")
    }

    #[tokio::test]
    async fn one_notification_reads_well_in_text_and_html() {
        let renderer = renderer(EmailMode::Immediate);
        let reports = [report(BOUNCE)];
        let context = renderer.context(&reports);
        let subject = renderer.render("subject", &context).expect("subject");
        let text = renderer.render("text", &context).expect("text");
        let html = renderer.render("html.html", &context).expect("html");
        assert_eq!(subject, "[sesroute] Permanent bounce (General) from app@dev.acme.test");
        assert!(text.contains("Bounce:    Permanent / General\n"), "{text}");
        assert!(text.contains("  - a@x.test (status 5.1.1)\n      smtp; 550 5.1.1 no such user\n"), "{text}");
        assert!(html.contains("&lt;b&gt;Hi&lt;"), "HTML escapes notification content: {html}");
        assert!(!html.contains("<b>Hi</b>"), "{html}");
    }

    #[tokio::test]
    async fn a_digest_counts_by_kind_and_domain_and_summarises_past_digest_max() {
        let renderer = renderer(EmailMode::Digest { window: std::time::Duration::from_secs(60), max_rows: 2 });
        let reports = [report(DELIVERY), report(BOUNCE), report(DELIVERY)];
        let context = renderer.context(&reports);
        assert_eq!(context.notifications[0].kind, "bounce", "bounces are listed first");
        assert_eq!((context.total, context.notifications.len(), context.omitted), (3, 2, 1));
        let subject = renderer.render("subject", &context).expect("subject");
        assert_eq!(subject, "[sesroute] dev-digest: 3 notifications (2 delivery, 1 bounce)");
        let text = renderer.render("text", &context).expect("text");
        assert!(text.contains("By kind:\n  2 delivery\n  1 bounce\n"), "{text}");
        assert!(text.contains("By sender domain:\n  2 mkt.acme.test\n  1 dev.acme.test\n"), "{text}");
        assert!(text.contains("... and 1 more not listed: 1 delivery."), "{text}");
        let html = renderer.render("html.html", &context).expect("html");
        assert!(html.contains("smtp; 550 5.1.1 no such user"), "{html}");
        assert_eq!(html.matches("<tr style=\"border-top").count(), 2, "one row per listed notification: {html}");
    }

    const DEAD_TRANSIENT: &str = r#"{"notificationType":"Bounce","mail":{"source":"app@dev.acme.test","messageId":"m3",
        "destination":["gone@x.test"]},"bounce":{"bounceType":"Transient","bounceSubType":"General",
        "timestamp":"2026-01-01T00:00:09.000Z",
        "bouncedRecipients":[{"emailAddress":"gone@x.test","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]}}"#;
    const SUPPRESSED: &str = r#"{"notificationType":"Bounce","mail":{"source":"app@dev.acme.test","messageId":"m4",
        "destination":["s@x.test"]},"bounce":{"bounceType":"Permanent","bounceSubType":"OnAccountSuppressionList",
        "timestamp":"2026-01-01T00:00:08.000Z","bouncedRecipients":[{"emailAddress":"s@x.test"}]}}"#;
    const COMPLAINT: &str = r#"{"notificationType":"Complaint","mail":{"source":"app@dev.acme.test","messageId":"m5",
        "destination":["c@x.test"]},"complaint":{"timestamp":"2026-01-01T00:00:07.000Z",
        "complainedRecipients":[{"emailAddress":"c@x.test"}],"complaintFeedbackType":"abuse"}}"#;

    #[tokio::test]
    async fn an_email_says_the_bounce_class_and_why_it_differs_from_ses() {
        let renderer = renderer(EmailMode::Immediate);
        let reports = [report(DEAD_TRANSIENT)];
        let context = renderer.context(&reports);
        let text = renderer.render("text", &context).expect("text");
        assert!(
            text.contains(
                "Class:     hard: SES says Transient/General, but 5.1.1 no such mailbox: the address is dead, stop mailing it\n"
            ),
            "{text}"
        );
        let html = renderer.render("html.html", &context).expect("html");
        assert!(html.contains("<td>hard: SES says Transient&#x2f;General, but 5.1.1 no such mailbox"), "{html}");
        let soft = [report(BOUNCE_TO_THREE)];
        let text = renderer.render("text", &renderer.context(&soft)).expect("text");
        assert!(text.contains("Class:     soft: a temporary failure, the address may work later\n"), "{text}");
        let delivery = [report(DELIVERY)];
        let text = renderer.render("text", &renderer.context(&delivery)).expect("text");
        assert!(!text.contains("Class:"), "only bounces have a class: {text}");
    }

    #[tokio::test]
    async fn a_digest_counts_bounces_by_class_and_lists_dead_addresses_and_complaints_first() {
        let renderer = renderer(EmailMode::Digest { window: std::time::Duration::from_secs(60), max_rows: 10 });
        let reports = [
            report(DELIVERY),
            report(BOUNCE_TO_THREE),
            report(DEAD_TRANSIENT),
            report(SUPPRESSED),
            report(COMPLAINT),
            report(BOUNCE),
        ];
        let context = renderer.context(&reports);
        let listed: Vec<(&str, Option<&str>)> =
            context.notifications.iter().map(|r| (r.kind, r.bounce_class)).collect();
        assert_eq!(listed[0], ("complaint", None), "{listed:?}");
        for dead in &listed[1..4] {
            assert!(matches!(dead, ("bounce", Some("hard" | "suppressed"))), "dead addresses next: {listed:?}");
        }
        assert_eq!(listed[4], ("bounce", Some("soft")), "{listed:?}");
        assert_eq!(listed[5], ("delivery", None), "{listed:?}");
        let text = renderer.render("text", &context).expect("text");
        assert!(text.contains("Bounces by class:\n  2 hard\n  1 suppressed\n  1 soft\n"), "{text}");
        assert!(text.contains("   class: hard: SES says Transient/General, but 5.1.1 no such mailbox"), "{text}");
        let html = renderer.render("html.html", &context).expect("html");
        assert!(html.contains("Bounces by class"), "{html}");
        let no_bounces = [report(DELIVERY)];
        let text = renderer.render("text", &renderer.context(&no_bounces)).expect("text");
        assert!(!text.contains("Bounces by class"), "{text}");
    }

    #[tokio::test]
    async fn a_notification_with_several_recipients_is_one_digest_row() {
        let renderer = renderer(EmailMode::Digest { window: std::time::Duration::from_secs(60), max_rows: 10 });
        let reports = [report(BOUNCE_TO_THREE)];
        let html = renderer.render("html.html", &renderer.context(&reports)).expect("html");
        assert_eq!(html.matches("<tr style=\"border-top").count(), 1, "{html}");
        assert!(html.contains("a@x.test<br>"), "{html}");
        assert!(html.contains("c@x.test (4.2.2)"), "{html}");
        let text = renderer.render("text", &renderer.context(&reports)).expect("text");
        assert!(text.contains("Transient bounce (MailboxFull)"), "{text}");
    }

    #[tokio::test]
    async fn a_custom_template_that_fails_on_a_notification_falls_back_to_the_built_in_one() {
        let renderer = renderer_with_subject(EmailMode::Immediate, Some("{{ n.kind }}: {{ no_such_function() }}"));
        let reports = [report(BOUNCE)];
        let subject = renderer.render("subject", &renderer.context(&reports)).expect("a subject all the same");
        assert_eq!(subject, "[sesroute] Permanent bounce (General) from app@dev.acme.test");
        let working = renderer_with_subject(EmailMode::Immediate, Some("{{ n.kind }} for {{ sink }}"));
        assert_eq!(working.render("subject", &working.context(&reports)).expect("subject"), "bounce for dev-digest");
    }

    /// Every body of the corpus and of AWS's documentation that is a
    /// notification renders, alone and all in one digest.
    #[tokio::test]
    async fn every_known_notification_renders_alone_and_in_a_digest() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut bodies = Vec::new();
        for dir in ["samples/bodies", "aws-doc-examples"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    bodies.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut reports = Vec::new();
        for (path, body) in &bodies {
            let mut scratch = String::new();
            if let Ok(crate::notification::Parsed::Notification(n)) = crate::notification::parse(body, &mut scratch) {
                reports.push((path, Report::new(Origin { queue: "q", sqs_message_id: "m" }, &n, &["r"])));
            }
        }
        assert!(reports.len() > 40, "{} notifications", reports.len());
        let immediate = renderer(EmailMode::Immediate);
        for (path, report) in &reports {
            let context = immediate.context(std::slice::from_ref(report));
            for name in ["subject", "text", "html.html"] {
                let text = immediate.render(name, &context).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!text.trim().is_empty(), "{}: empty {name}", path.display());
            }
            assert!(!report.headline.is_empty() && !report.kind.is_empty(), "{}", path.display());
        }
        let digest = renderer(EmailMode::Digest { window: std::time::Duration::from_secs(60), max_rows: 100 });
        let all: Vec<Report> = reports.into_iter().map(|(_, r)| r).collect();
        let context = digest.context(&all);
        let text = digest.render("text", &context).expect("the digest's text");
        assert!(text.starts_with(&format!("{} notifications for dev-digest", all.len())), "{text}");
        digest.render("html.html", &context).expect("the digest's HTML");
    }

    #[test]
    fn a_dead_letters_html_part_shows_its_text_escaped() {
        let env = templates([IMMEDIATE_SUBJECT, IMMEDIATE_TEXT, IMMEDIATE_HTML], [&None, &None, &None]).unwrap();
        let html =
            env.get_template("dead-letter.html").unwrap().render(minijinja::context! { text => "<b>&" }).unwrap();
        assert_eq!(html, "<!DOCTYPE html><html><body><pre>&lt;b&gt;&amp;</pre></body></html>");
    }

    #[test]
    fn the_built_in_templates_compile() {
        for (immediate, digest) in
            [(IMMEDIATE_SUBJECT, DIGEST_SUBJECT), (IMMEDIATE_TEXT, DIGEST_TEXT), (IMMEDIATE_HTML, DIGEST_HTML)]
        {
            let (immediate, digest) = (Some(immediate.to_owned()), Some(digest.to_owned()));
            templates([IMMEDIATE_SUBJECT, IMMEDIATE_TEXT, IMMEDIATE_HTML], [&immediate, &immediate, &immediate])
                .expect("immediate template compiles");
            templates([DIGEST_SUBJECT, DIGEST_TEXT, DIGEST_HTML], [&digest, &digest, &digest])
                .expect("digest template compiles");
        }
    }
}
