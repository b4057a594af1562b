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

use std::fmt;
use std::sync::Arc;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::warn;

mod render;

use render::{Context, Renderer};

use super::report::Report;
use super::{BatchOptions, Batcher, Deliver, Item, Origin, Pending, RateLimit, SinkError};
use crate::config::{Email, EmailMode, Tls};
use crate::text::clip;

/// A digest goes out early once it holds this many notifications, which
/// bounds what one digest keeps in memory.
const DIGEST_MAX_ITEMS: usize = 10_000;
/// The most of an SMTP answer quoted in an error (SES names identities in it).
const MAX_SMTP_ANSWER_CHARS: usize = 300;
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
    renderer: Renderer,
    limit: Option<RateLimit>,
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
        let renderer = Renderer::new(sink, options)?;
        Ok(Mailer {
            sink: sink.to_owned(),
            transport: builder.build(),
            from: mailbox(&options.from)?,
            to: options.to.iter().map(|a| mailbox(a)).collect::<Result<_, _>>()?,
            cc: options.cc.iter().map(|a| mailbox(a)).collect::<Result<_, _>>()?,
            renderer,
            limit,
        })
    }

    async fn send_one(&self, report: &Report) -> Result<(), SinkError> {
        RateLimit::wait_for(self.limit.as_ref()).await;
        let context = self.renderer.context(std::slice::from_ref(report));
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
            let sent = self.send(&self.renderer.context(part)).await;
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

    /// Renders the configured template `name`; should it fail on this content
    /// (an odd notification, a template expecting more), the built-in one
    /// instead: the email still goes out, and the error is logged.
    async fn send(&self, context: &Context<'_>) -> Result<(), SendError> {
        let (subject, text, html) = self.renderer.email(context).map_err(SendError::passing)?;
        self.deliver(&subject, MultiPart::alternative_plain_html(text, html)).await
    }

    async fn send_dead_letter(&self, origin: Origin<'_>, body: &str, reason: &str) -> Result<(), SinkError> {
        RateLimit::wait_for(self.limit.as_ref()).await;
        let (subject, text, html) = self.renderer.dead_letter(origin, body, reason)?;
        self.deliver(&subject, MultiPart::alternative_plain_html(text, html)).await.map_err(|e| e.error)
    }

    /// Builds the email around `body` and hands it to the SMTP server.
    async fn deliver(&self, subject: &str, body: MultiPart) -> Result<(), SendError> {
        let mut builder = Message::builder().from(self.from.clone()).subject(render::header_text(subject));
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
}
