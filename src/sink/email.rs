//! The `email` sink: one email per notification (`immediate`), or one digest
//! per window listing every notification of the window (`digest`), sent over
//! SMTP with lettre.
//!
//! A digest holds its notifications' SQS messages undeleted until the SMTP
//! server has accepted it: `deliver` returns only then (the pipeline keeps
//! extending the messages' visibility meanwhile). A failed send fails every
//! notification of the digest, so their messages stay in SQS and come back,
//! after the pipeline's backoff, into a later digest.
//!
//! Subject and bodies are minijinja templates (built-in defaults in
//! `email/`). Headers come from the config alone: notification content only
//! ever reaches the bodies and, stripped of control characters, the subject.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use tracing::warn;

use super::report::Report;
use super::{BatchOptions, Batcher, Deliver, Item, Origin, Pending, RateLimit, SinkError};
use crate::config::{Email, EmailMode, Tls};
use crate::text::clip;

/// A digest goes out early once it holds this many notifications, which
/// bounds what one digest keeps in memory.
const DIGEST_MAX_ITEMS: usize = 10_000;
/// Subject lines are cut to this many characters.
const MAX_SUBJECT_CHARS: usize = 200;
/// The most of an SMTP answer quoted in an error (SES names identities in it).
const MAX_SMTP_ANSWER_CHARS: usize = 300;
/// A dead letter's body is quoted up to this many bytes.
const MAX_DEAD_LETTER_BYTES: usize = 64 * 1024;

const IMMEDIATE_SUBJECT: &str = include_str!("email/immediate.subject.j2");
const IMMEDIATE_TEXT: &str = include_str!("email/immediate.txt.j2");
const IMMEDIATE_HTML: &str = include_str!("email/immediate.html.j2");
const DIGEST_SUBJECT: &str = include_str!("email/digest.subject.j2");
const DIGEST_TEXT: &str = include_str!("email/digest.txt.j2");
const DIGEST_HTML: &str = include_str!("email/digest.html.j2");
const DEAD_LETTER_TEXT: &str = include_str!("email/dead-letter.txt.j2");
/// The dead letter's text, shown as is (HTML-escaped) in the HTML part.
const DEAD_LETTER_HTML: &str = "<!DOCTYPE html><html><body><pre>{{ text }}</pre></body></html>";

pub struct EmailSink {
    mailer: Arc<Mailer>,
    /// Present in digest mode: collects notifications for one window.
    digest: Option<Batcher<Report, ()>>,
}

impl fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSink").field("sink", &self.mailer.sink).field("digest", &self.digest.is_some()).finish()
    }
}

/// What sends: the SMTP transport, the addresses, the templates.
struct Mailer {
    sink: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    templates: Environment<'static>,
    mode: EmailMode,
    limit: Option<RateLimit>,
}

/// What every template sees. For one notification, `notifications` holds it
/// alone and `n` is it.
#[derive(Debug, Serialize)]
struct Context<'a> {
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

/// Bounces and complaints first: they are what someone has to act on.
fn severity(kind: &str) -> u8 {
    match kind {
        "complaint" => 0,
        "bounce" => 1,
        "reject" | "rendering-failure" => 2,
        "delivery-delay" => 3,
        _ => 4,
    }
}

impl EmailSink {
    pub fn open(name: &str, options: &Email, limit: Option<RateLimit>) -> Result<EmailSink, String> {
        let mailer = Arc::new(Mailer::new(name, options, limit)?);
        let digest = match options.mode {
            EmailMode::Immediate => None,
            EmailMode::Digest { window, .. } => {
                let mailer = Arc::clone(&mailer);
                // Room for one full digest being sent and the next one filling.
                let options = BatchOptions {
                    max_items: DIGEST_MAX_ITEMS,
                    linger: window,
                    max_flushes: 1,
                    queue: 2 * DIGEST_MAX_ITEMS,
                };
                Some(
                    Batcher::spawn(options, move |reports: Vec<Report>| {
                        let mailer = Arc::clone(&mailer);
                        async move { mailer.send_digest(reports).await }
                    })
                    .map_err(|e| e.to_string())?,
                )
            }
        };
        Ok(EmailSink { mailer, digest })
    }
}

impl Deliver for EmailSink {
    /// It waits for its `max_per_minute` per email it sends (a digest is one).
    fn limits_itself(&self) -> bool {
        true
    }

    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        self.hold(origin, item).await?.answer().await
    }

    /// Sends the email, or in digest mode puts the notification in the
    /// current digest once there is room; the answer comes when it is sent.
    async fn hold(&self, origin: Origin<'_>, item: Item<'_>) -> Result<Pending<()>, SinkError> {
        match item {
            Item::Notification { notification, routes } => {
                let report = Report::new(origin, notification, routes);
                match &self.digest {
                    Some(digest) => digest.enqueue(report).await,
                    None => Ok(Pending::ready(self.mailer.send_one(&report).await)),
                }
            }
            // A dead letter is news on its own: it never waits for a digest.
            Item::DeadLetter { body, reason } => {
                Ok(Pending::ready(self.mailer.send_dead_letter(origin, body, reason).await))
            }
        }
    }

    /// Whether its digest batcher (if any) still runs.
    fn is_alive(&self) -> bool {
        self.digest.as_ref().is_none_or(Batcher::is_alive)
    }

    fn flush_now(&self) {
        if let Some(digest) = &self.digest {
            digest.flush_now();
        }
    }
}

impl Mailer {
    fn new(sink: &str, options: &Email, limit: Option<RateLimit>) -> Result<Mailer, String> {
        let mailbox = |address: &str| address.parse::<Mailbox>().map_err(|e| format!("{address:?}: {e}"));
        let builder = match options.tls {
            Tls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&options.host),
            Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&options.host),
            Tls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&options.host)),
        }
        .map_err(|e| format!("cannot set up SMTP to {}: {e}", options.host))?;
        let mut builder = builder.port(options.port).timeout(Some(options.timeout));
        if let (Some(user), Some(password)) = (&options.username, &options.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.read("password")?.0));
        }
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
        Ok(Mailer {
            sink: sink.to_owned(),
            transport: builder.build(),
            from: mailbox(&options.from)?,
            to: options.to.iter().map(|a| mailbox(a)).collect::<Result<_, _>>()?,
            cc: options.cc.iter().map(|a| mailbox(a)).collect::<Result<_, _>>()?,
            templates,
            mode: options.mode,
            limit,
        })
    }

    async fn send_one(&self, report: &Report) -> Result<(), SinkError> {
        RateLimit::wait_for(self.limit.as_ref()).await;
        let context = self.context(std::slice::from_ref(report));
        self.send(&context).await.map_err(|e| e.error)
    }

    /// Sends `reports` as one digest, and answers each of them. A digest
    /// refused for its size or its content is split in halves, each sent on
    /// its own (and split again, as needed), so that only a notification
    /// refused alone is answered as permanent and the others go out; any
    /// other failure fails the whole digest, retryable (no one notification
    /// is to blame for it).
    async fn send_digest(&self, reports: Vec<Report>) -> Vec<Result<(), SinkError>> {
        let mut results = Vec::with_capacity(reports.len());
        // Parts still to send, in order; a refused part is replaced by its halves.
        let mut parts = vec![reports.as_slice()];
        while let Some(part) = parts.pop() {
            RateLimit::wait_for(self.limit.as_ref()).await;
            let sent = self.send(&self.context(part)).await;
            match sent {
                Ok(()) => {
                    tracing::info!(sink = %self.sink, notifications = part.len(), "digest sent");
                    results.extend(std::iter::repeat_n(Ok(()), part.len()));
                }
                Err(SendError { refusal: Refusal::Message | Refusal::Size, error }) if part.len() > 1 => {
                    warn!(sink = %self.sink, notifications = part.len(), error = %error, "digest refused: split in two");
                    let (first, second) = part.split_at(part.len() / 2);
                    parts.push(second);
                    parts.push(first);
                }
                Err(SendError { refusal: Refusal::Message | Refusal::Size, error }) => {
                    warn!(sink = %self.sink, error = %error, "a notification was refused on its own");
                    results.push(Err(error));
                }
                Err(SendError { error, .. }) => {
                    warn!(sink = %self.sink, notifications = part.len(), error = %error, "digest not sent");
                    results.extend(std::iter::repeat_n(Err(error.into_retryable()), part.len()));
                }
            }
        }
        results
    }

    fn context<'a>(&'a self, reports: &'a [Report]) -> Context<'a> {
        let (window_secs, max_rows) = match self.mode {
            EmailMode::Immediate => (None, usize::MAX),
            EmailMode::Digest { window, max_rows } => (Some(window.as_secs()), max_rows),
        };
        let mut sorted: Vec<&Report> = reports.iter().collect();
        sorted.sort_by(|a, b| {
            (severity(a.kind), &a.time, &a.message_id).cmp(&(severity(b.kind), &b.time, &b.message_id))
        });
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
            by_domain: counts(reports.iter().map(|r| r.sender_domain.as_str())),
        }
    }

    /// Renders the configured template `name`; should it fail on this content
    /// (an odd notification, a template expecting more), the built-in one
    /// instead: the email still goes out, and the error is logged.
    fn render(&self, name: &str, context: &Context<'_>) -> Result<String, SinkError> {
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

    async fn send(&self, context: &Context<'_>) -> Result<(), SendError> {
        let subject = self.render("subject", context).map_err(SendError::passing)?;
        let text = self.render("text", context).map_err(SendError::passing)?;
        let html = self.render("html.html", context).map_err(SendError::passing)?;
        self.deliver(&subject, MultiPart::alternative_plain_html(text, html)).await
    }

    async fn send_dead_letter(&self, origin: Origin<'_>, body: &str, reason: &str) -> Result<(), SinkError> {
        RateLimit::wait_for(self.limit.as_ref()).await;
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
        self.deliver(&subject, MultiPart::alternative_plain_html(text, html)).await.map_err(|e| e.error)
    }

    /// Builds the email around `body` and hands it to the SMTP server.
    async fn deliver(&self, subject: &str, body: MultiPart) -> Result<(), SendError> {
        let mut builder = Message::builder().from(self.from.clone()).subject(header_text(subject));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        for cc in &self.cc {
            builder = builder.cc(cc.clone());
        }
        let message = builder.multipart(body).map_err(|e| SendError {
            error: SinkError::Permanent(format!("cannot build the email of sink {}: {e}", self.sink)),
            refusal: Refusal::Message,
        })?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| smtp_error(&e))
    }
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
fn header_text(text: &str) -> String {
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

/// What an SMTP server's refusal means for the notifications in the email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The message itself is refused (its content, its form): the same email
    /// will be refused again. An immediate email is dead-lettered; a digest
    /// is split to find the notification at fault.
    Message,
    /// The message is too big (552, `5.3.4`): a digest is split in halves; a
    /// single notification still too big is dead-lettered.
    Size,
    /// Anything else: the server, the connection, the account or the login
    /// (SES's sandbox and unverified identities, paused sending, quotas and
    /// throttling, refused credentials or recipients). An operator fixes it,
    /// or it passes: the notifications stay in SQS and are tried again.
    Passing,
}

/// Account-level answers that SES (and other servers) give with a 5xx code
/// although no message is at fault, lowercased: they are retried.
const ACCOUNT_PROBLEMS: &[&str] = &[
    "not verified",
    "failed the check",
    "sending paused",
    "sending is paused",
    "account is paused",
    "sending suspended",
    "account suspended",
    "throttling",
    "sending rate exceeded",
    "quota exceeded",
    "access denied",
];

/// The one table of SMTP answers: by the reply code and, for SES's 554s,
/// by what the answer says (`text`, any case).
fn refusal(code: Option<&str>, text: &str) -> Refusal {
    let text = text.to_lowercase();
    if ACCOUNT_PROBLEMS.iter().any(|p| text.contains(p)) {
        return Refusal::Passing;
    }
    match code {
        Some("552") => Refusal::Size,
        _ if text.contains("5.3.4") || text.contains("too big") || text.contains("too large") => Refusal::Size,
        // 554: transaction failed; SES's "Message rejected", content refused.
        // 550 5.6.x / 5.7.x with such words: the content or form of the message.
        Some("554") => Refusal::Message,
        Some("550") if text.contains("5.6.") || text.contains("message rejected") || text.contains("content") => {
            Refusal::Message
        }
        _ => Refusal::Passing,
    }
}

/// A failed send, with what it means.
#[derive(Debug, Clone)]
struct SendError {
    error: SinkError,
    refusal: Refusal,
}

impl SendError {
    fn passing(error: SinkError) -> SendError {
        SendError { error, refusal: Refusal::Passing }
    }
}

fn smtp_error(error: &lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(|c| c.to_string());
    let said = std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
    let text = format!("SMTP send failed: {}", clip(&error.to_string(), MAX_SMTP_ANSWER_CHARS));
    let refusal = if error.is_permanent() { refusal(code.as_deref(), &said) } else { Refusal::Passing };
    let error = match refusal {
        Refusal::Message | Refusal::Size => SinkError::Permanent(text),
        Refusal::Passing => SinkError::Retryable(text),
    };
    SendError { error, refusal }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_cannot_carry_a_second_header() {
        assert_eq!(header_text("bounce from a@b.test\r\nBcc: evil@x.test"), "bounce from a@b.test Bcc: evil@x.test");
        assert_eq!(header_text("  a \t b  "), "a b");
        let long = "é".repeat(300);
        assert_eq!(header_text(&long).chars().count(), MAX_SUBJECT_CHARS + 1);
    }

    /// The SMTP error classes, as the README's table lists them.
    #[test]
    fn only_refusals_of_the_message_itself_are_permanent_and_size_splits() {
        use Refusal::{Message, Passing, Size};
        let table: &[(&str, &str, Refusal)] = &[
            // SES's sandbox or an unverified From: an account problem.
            (
                "554",
                "Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: sesroute@acme.test",
                Passing,
            ),
            ("554", "Transaction failed: Sending paused for this account.", Passing),
            ("554", "Message rejected: Sending suspended for this account.", Passing),
            ("454", "Throttling failure: Maximum sending rate exceeded.", Passing),
            ("454", "Throttling failure: Daily message quota exceeded.", Passing),
            ("554", "Throttling failure: Daily message quota exceeded.", Passing),
            ("535", "Authentication Credentials Invalid", Passing),
            ("530", "Authentication required", Passing),
            ("421", "Service not available", Passing),
            ("451", "Temporary service failure", Passing),
            ("550", "5.1.1 Mailbox unavailable", Passing),
            ("553", "Mailbox name not allowed", Passing),
            ("552", "Message exceeds maximum size", Size),
            ("552", "5.3.4 Message too big for system", Size),
            ("554", "5.3.4 Message too big for system", Size),
            ("554", "Transaction failed: Illegal header.", Message),
            ("554", "Message rejected: content refused", Message),
            ("550", "5.6.0 Invalid MIME structure", Message),
        ];
        for (code, text, expected) in table {
            assert_eq!(refusal(Some(code), text), *expected, "{code} {text}");
        }
    }

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

    fn mailer(mode: EmailMode) -> Mailer {
        mailer_with_subject(mode, None)
    }

    fn mailer_with_subject(mode: EmailMode, subject: Option<&str>) -> Mailer {
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
        Mailer::new("dev-digest", &options, None).expect("a mailer")
    }

    #[tokio::test]
    async fn one_notification_reads_well_in_text_and_html() {
        let mailer = mailer(EmailMode::Immediate);
        let reports = [report(BOUNCE)];
        let context = mailer.context(&reports);
        let subject = mailer.render("subject", &context).expect("subject");
        let text = mailer.render("text", &context).expect("text");
        let html = mailer.render("html.html", &context).expect("html");
        assert_eq!(subject, "[sesroute] Permanent bounce (General) from app@dev.acme.test");
        assert!(text.contains("Bounce:    Permanent / General\n"), "{text}");
        assert!(text.contains("  - a@x.test (status 5.1.1)\n      smtp; 550 5.1.1 no such user\n"), "{text}");
        assert!(html.contains("&lt;b&gt;Hi&lt;"), "HTML escapes notification content: {html}");
        assert!(!html.contains("<b>Hi</b>"), "{html}");
    }

    #[tokio::test]
    async fn a_digest_counts_by_kind_and_domain_and_summarises_past_digest_max() {
        let mailer = mailer(EmailMode::Digest { window: std::time::Duration::from_secs(60), max_rows: 2 });
        let reports = [report(DELIVERY), report(BOUNCE), report(DELIVERY)];
        let context = mailer.context(&reports);
        assert_eq!(context.notifications[0].kind, "bounce", "bounces are listed first");
        assert_eq!((context.total, context.notifications.len(), context.omitted), (3, 2, 1));
        let subject = mailer.render("subject", &context).expect("subject");
        assert_eq!(subject, "[sesroute] dev-digest: 3 notifications (2 delivery, 1 bounce)");
        let text = mailer.render("text", &context).expect("text");
        assert!(text.contains("By kind:\n  2 delivery\n  1 bounce\n"), "{text}");
        assert!(text.contains("By sender domain:\n  2 mkt.acme.test\n  1 dev.acme.test\n"), "{text}");
        assert!(text.contains("... and 1 more not listed: 1 delivery."), "{text}");
        let html = mailer.render("html.html", &context).expect("html");
        assert!(html.contains("smtp; 550 5.1.1 no such user"), "{html}");
        assert_eq!(html.matches("<tr style=\"border-top").count(), 2, "one row per listed notification: {html}");
    }

    #[tokio::test]
    async fn a_notification_with_several_recipients_is_one_digest_row() {
        let mailer = mailer(EmailMode::Digest { window: std::time::Duration::from_secs(60), max_rows: 10 });
        let reports = [report(BOUNCE_TO_THREE)];
        let html = mailer.render("html.html", &mailer.context(&reports)).expect("html");
        assert_eq!(html.matches("<tr style=\"border-top").count(), 1, "{html}");
        assert!(html.contains("a@x.test<br>"), "{html}");
        assert!(html.contains("c@x.test (4.2.2)"), "{html}");
        let text = mailer.render("text", &mailer.context(&reports)).expect("text");
        assert!(text.contains("Transient bounce (MailboxFull)"), "{text}");
    }

    #[tokio::test]
    async fn a_custom_template_that_fails_on_a_notification_falls_back_to_the_built_in_one() {
        let mailer = mailer_with_subject(EmailMode::Immediate, Some("{{ n.kind }}: {{ no_such_function() }}"));
        let reports = [report(BOUNCE)];
        let subject = mailer.render("subject", &mailer.context(&reports)).expect("a subject all the same");
        assert_eq!(subject, "[sesroute] Permanent bounce (General) from app@dev.acme.test");
        let working = mailer_with_subject(EmailMode::Immediate, Some("{{ n.kind }} for {{ sink }}"));
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
        let immediate = mailer(EmailMode::Immediate);
        for (path, report) in &reports {
            let context = immediate.context(std::slice::from_ref(report));
            for name in ["subject", "text", "html.html"] {
                let text = immediate.render(name, &context).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!text.trim().is_empty(), "{}: empty {name}", path.display());
            }
            assert!(!report.headline.is_empty() && !report.kind.is_empty(), "{}", path.display());
        }
        let digest = mailer(EmailMode::Digest { window: std::time::Duration::from_secs(60), max_rows: 100 });
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
