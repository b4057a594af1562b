//! The `email` sink end to end: the daemon sends to a local SMTP server
//! (`emulators/smtp_server.py`, aiosmtpd) that keeps every message it accepts.
//!
//! Each test starts its own server on its own port, and can stop and start it
//! to show that notifications stay in SQS until the server has the email.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mailparse::MailHeaderMap;
use serde_json::{Value, json};

use super::harness::{Aws, Daemon, config_head, eventually, source};

/// The local SMTP server, stopped on drop.
struct Smtp {
    python: String,
    port: u16,
    dir: PathBuf,
    /// Extra arguments of the server: `--max-bytes N`, `--answer "554 ..."`.
    args: Vec<String>,
    child: Option<Child>,
}

/// One accepted email, as the server got it.
#[derive(Debug)]
struct Mail {
    rcpt_tos: Vec<String>,
    envelope_from: String,
    headers: Vec<(String, String)>,
    subject: String,
    text: String,
    html: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Smtp {
    /// A server for `test` keeping mail in `dir`, not started yet; `None`
    /// (after a note) without the Python that `scripts/test` installs.
    fn new(test: &str, dir: &Path) -> Option<Smtp> {
        let python = crate::test_python("SMTP_TEST_PYTHON", test)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        Some(Smtp { python, port, dir: dir.to_owned(), args: Vec::new(), child: None })
    }

    fn start(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("emulators/smtp_server.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .args(["--port", &self.port.to_string(), "--dir"])
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMTP server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the server's first line");
        assert!(line.starts_with("listening on"), "the SMTP server did not start: {line:?}");
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every email accepted so far, in order.
    fn mails(&self) -> Vec<Mail> {
        let mut mails = Vec::new();
        for n in 1.. {
            let envelope = self.dir.join(format!("{n}.json"));
            if !envelope.exists() {
                break;
            }
            let envelope = std::fs::read_to_string(envelope).expect("the envelope file");
            let envelope: Value = serde_json::from_str(&envelope).expect("the envelope is JSON");
            let raw = std::fs::read(self.dir.join(format!("{n}.eml"))).expect("the email file");
            let parsed = mailparse::parse_mail(&raw).expect("a valid email");
            let part = |mime: &str| {
                parsed
                    .subparts
                    .iter()
                    .find(|p| p.ctype.mimetype == mime)
                    .unwrap_or_else(|| panic!("no {mime} part"))
                    .get_body()
                    .expect("a decodable body")
                    .replace("\r\n", "\n")
            };
            mails.push(Mail {
                rcpt_tos: envelope["rcpt_tos"]
                    .as_array()
                    .expect("rcpt_tos")
                    .iter()
                    .map(|v| v.as_str().expect("an address").into())
                    .collect(),
                envelope_from: envelope["mail_from"].as_str().expect("mail_from").into(),
                headers: parsed.headers.iter().map(|h| (h.get_key(), h.get_value())).collect(),
                subject: parsed.headers.get_first_value("Subject").unwrap_or_default(),
                text: part("text/plain"),
                html: part("text/html"),
            });
        }
        mails
    }

    async fn wait_for_mails(&self, count: usize, timeout: Duration) -> Vec<Mail> {
        eventually(&format!("{count} emails"), timeout, async || {
            let mails = self.mails();
            if mails.len() >= count { Ok(mails) } else { Err(format!("{} emails", mails.len())) }
        })
        .await
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bounce from `sender` about `recipient`, with SES message id `id`.
fn bounce(id: &str, sender: &str, recipient: &str, subject: &str) -> String {
    json!({
        "notificationType": "Bounce",
        "mail": {
            "timestamp": "2026-11-24T10:00:00.000Z", "source": sender, "messageId": id,
            "destination": [recipient], "commonHeaders": {"subject": subject},
        },
        "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "timestamp": "2026-11-24T10:00:01.000Z",
            "bouncedRecipients": [{"emailAddress": recipient, "status": "5.1.1", "action": "failed",
                "diagnosticCode": format!("smtp; 550 5.1.1 <{recipient}>: no such user")}],
        },
    })
    .to_string()
}

fn complaint(id: &str, sender: &str, recipient: &str) -> String {
    json!({
        "notificationType": "Complaint",
        "mail": {"timestamp": "2026-11-24T10:00:00.000Z", "source": sender, "messageId": id, "destination": [recipient]},
        "complaint": {"complaintFeedbackType": "abuse", "timestamp": "2026-11-24T10:05:00.000Z",
            "complainedRecipients": [{"emailAddress": recipient}]},
    })
    .to_string()
}

fn email_sink(name: &str, smtp: &Smtp, extra: &str) -> String {
    format!(
        r#"
[sinks.{name}]
type = "email"
to = ["Dev Team <dev@acme.test>", "oncall@acme.test"]
cc = "qa@acme.test"
from = "sesroute <sesroute@acme.test>"
host = "127.0.0.1"
port = {port}
tls = "none"
timeout_secs = 5
{extra}
"#,
        port = smtp.port
    )
}

fn route_all(sink: &str) -> String {
    format!("\n[[routes]]\nname = \"all\"\nsinks = [\"{sink}\"]\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn immediate_mode_sends_one_readable_email_per_notification_to_the_configured_addresses_only() {
    let Some(aws) = Aws::connect("email_immediate").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_immediate", &daemon.path("mail")) else { return };
    smtp.start();
    let queue = aws.create_queue("in").await;
    aws.send(&queue, &bounce("b-1", "App <app@dev.acme.test>", "gone@x.test", "Welcome")).await;
    // Content that tries to add a header through the subject line.
    aws.send(&queue, &bounce("b-2", "app@dev.acme.test", "a@y.test", "Hi\r\nBcc: evil@evil.test\r\nX-Evil: 1")).await;

    daemon.start(&format!(
        "{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("dev", &smtp, "subject = \"{{ n.headline }}: {{ n.subject }}\""),
        route_all("dev"),
    ));
    let mails = smtp.wait_for_mails(2, Duration::from_secs(20)).await;
    aws.wait_for_total(&queue, 0, Duration::from_secs(10)).await;
    daemon.stop().await;

    assert_eq!(mails.len(), 2, "one email per notification");
    for mail in &mails {
        let mut rcpt = mail.rcpt_tos.clone();
        rcpt.sort();
        assert_eq!(rcpt, ["dev@acme.test", "oncall@acme.test", "qa@acme.test"], "the config's to and cc, no more");
        assert_eq!(mail.envelope_from, "sesroute@acme.test");
        assert_eq!(mail.header("Bcc"), None);
        assert_eq!(mail.header("X-Evil"), None);
        assert!(mail.header("To").unwrap().contains("Dev Team"), "{:?}", mail.headers);
        assert_eq!(mail.header("Cc"), Some("qa@acme.test"));
    }
    let welcome = mails.iter().find(|m| m.subject.contains("Welcome")).expect("the first bounce's email");
    assert_eq!(welcome.subject, "Permanent bounce (General): Welcome");
    assert!(welcome.text.contains("Sender:    app@dev.acme.test"), "{}", welcome.text);
    assert!(welcome.text.contains("gone@x.test (status 5.1.1)"), "{}", welcome.text);
    assert!(welcome.text.contains("smtp; 550 5.1.1 <gone@x.test>: no such user"), "{}", welcome.text);
    assert!(welcome.html.contains("smtp; 550 5.1.1 &lt;gone@x.test&gt;: no such user"), "{}", welcome.html);
    let evil = mails.iter().find(|m| m.subject.contains("Bcc")).expect("the second bounce's email");
    assert_eq!(evil.subject, "Permanent bounce (General): Hi Bcc: evil@evil.test X-Evil: 1", "flattened to one line");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_lists_a_windows_notifications_with_counts_by_kind_and_sender_domain() {
    let Some(aws) = Aws::connect("email_digest").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_digest", &daemon.path("mail")) else { return };
    smtp.start();
    let queue = aws.create_queue("in").await;
    let bodies = vec![
        bounce("d-1", "app@dev.acme.test", "r1@x.test", "s"),
        bounce("d-2", "app@dev.acme.test", "r2@x.test", "s"),
        bounce("d-3", "news@mkt.acme.test", "r3@x.test", "s"),
        complaint("d-4", "news@mkt.acme.test", "r4@x.test"),
        complaint("d-5", "ops@dev.acme.test", "r5@x.test"),
    ];
    aws.send_all(&queue, &bodies).await;

    daemon.start(&format!(
        "{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("digest", &smtp, "mode = \"digest\"\ndigest_window_secs = 5\ndigest_max = 4"),
        route_all("digest"),
    ));
    smtp.wait_for_mails(1, Duration::from_secs(20)).await;
    aws.wait_for_total(&queue, 0, Duration::from_secs(10)).await;
    // No second digest follows: the window held all five.
    tokio::time::sleep(Duration::from_secs(4)).await;
    daemon.stop().await;

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "one digest for the window: {mails:?}");
    let digest = &mails[0];
    assert_eq!(digest.subject, "[sesroute] digest: 5 notifications (3 bounce, 2 complaint)");
    let text = &digest.text;
    assert!(text.contains("By kind:\n  3 bounce\n  2 complaint\n"), "{text}");
    assert!(text.contains("By sender domain:\n  3 dev.acme.test\n  2 mkt.acme.test\n"), "{text}");
    assert!(text.contains("... and 1 more not listed: 1 bounce."), "digest_max = 4 rows: {text}");
    assert!(text.contains("1. Complaint (abuse)"), "complaints first: {text}");
    assert!(text.contains("to r1@x.test (status 5.1.1): smtp; 550 5.1.1 <r1@x.test>: no such user"), "{text}");
    assert_eq!(digest.html.matches("<tr style=\"border-top").count(), 4, "four rows in the HTML: {}", digest.html);
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_messages_stay_in_sqs_until_the_smtp_server_accepts_the_digest() {
    let Some(aws) = Aws::connect("email_outage").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_outage", &daemon.path("mail")) else { return };
    let queue = aws.create_queue("in").await;
    let bodies: Vec<String> =
        (1..=3).map(|i| bounce(&format!("o-{i}"), "app@dev.acme.test", "r@x.test", "s")).collect();
    aws.send_all(&queue, &bodies).await;

    // The SMTP server is down: the digest cannot go out.
    daemon.start(&format!(
        "{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("digest", &smtp, "mode = \"digest\"\ndigest_window_secs = 1"),
        route_all("digest"),
    ));
    eventually("a failed digest send", Duration::from_secs(20), async || {
        let failed = daemon.log().iter().any(|l| l["message"] == "digest not sent");
        if failed { Ok(()) } else { Err("no failure logged yet".to_owned()) }
    })
    .await;
    assert_eq!(aws.depth(&queue).await.total(), 3, "nothing is deleted while the digest is not sent");

    smtp.start();
    let mails = smtp.wait_for_mails(1, Duration::from_secs(40)).await;
    aws.wait_for_total(&queue, 0, Duration::from_secs(40)).await;
    daemon.stop().await;

    let listed: usize = smtp.mails().iter().map(|m| m.text.matches("Permanent bounce (General)").count()).sum();
    assert_eq!(listed, 3, "every notification reached a digest once the server was back: {mails:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_sends_the_pending_digest_instead_of_waiting_for_its_window() {
    let Some(aws) = Aws::connect("email_shutdown").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_shutdown", &daemon.path("mail")) else { return };
    smtp.start();
    let queue = aws.create_queue("in").await;
    aws.send_all(
        &queue,
        &[bounce("s-1", "a@dev.acme.test", "r@x.test", "s"), complaint("s-2", "a@dev.acme.test", "q@x.test")],
    )
    .await;

    daemon.start(&format!(
        "{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("digest", &smtp, "mode = \"digest\"\ndigest_window_secs = 3600"),
        route_all("digest"),
    ));
    eventually("both notifications in the digest", Duration::from_secs(20), async || {
        let held = daemon.log().iter().filter(|l| l["message"] == "waiting for a batch to be sent").count();
        if held == 2 { Ok(()) } else { Err(format!("{held} held")) }
    })
    .await;
    assert!(smtp.mails().is_empty(), "the window is an hour: nothing sent yet");
    let address = super::ops::listen_address(&daemon).await;
    let (_, metrics) = super::ops::get(&format!("http://{address}/metrics")).await;
    let held = super::ops::metric(&metrics, "sesroute_sink_held_notifications", &[("sink", "digest")]);
    assert_eq!(held, Some(2.0), "{metrics}");

    daemon.stop().await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "the pending digest went out at shutdown");
    assert_eq!(mails[0].subject, "[sesroute] digest: 2 notifications (1 bounce, 1 complaint)");
    assert_eq!(aws.depth(&queue).await.total(), 0, "and its messages were deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_sends_the_pending_digest_of_the_sinks_it_replaces() {
    let Some(aws) = Aws::connect("email_reload").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_reload", &daemon.path("mail")) else { return };
    smtp.start();
    let queue = aws.create_queue("in").await;
    aws.send(&queue, &bounce("r-1", "a@dev.acme.test", "r@x.test", "s")).await;
    let config = |window: u32| {
        format!(
            "{}{}{}{}",
            config_head(&aws.endpoint),
            source("in", &queue, ""),
            email_sink("digest", &smtp, &format!("mode = \"digest\"\ndigest_window_secs = {window}")),
            route_all("digest"),
        )
    };
    daemon.start(&config(3600));
    eventually("the notification in the digest", Duration::from_secs(20), async || {
        let held = daemon.log().iter().any(|l| l["message"] == "waiting for a batch to be sent");
        if held { Ok(()) } else { Err("not held yet".to_owned()) }
    })
    .await;

    std::fs::write(daemon.path("config.toml"), config(1800)).expect("the new config is written");
    daemon.signal("HUP");
    let mails = smtp.wait_for_mails(1, Duration::from_secs(15)).await;
    assert_eq!(mails[0].subject, "[sesroute] digest: 1 notification (1 bounce)");
    aws.wait_for_total(&queue, 0, Duration::from_secs(10)).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_is_required_a_server_without_it_gets_nothing_and_the_message_stays() {
    let Some(aws) = Aws::connect("email_starttls").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_starttls", &daemon.path("mail")) else { return };
    smtp.start();
    let queue = aws.create_queue("in").await;
    aws.send(&queue, &bounce("t-1", "a@dev.acme.test", "r@x.test", "s")).await;

    // The local server offers no STARTTLS: sending in clear text instead is not an option.
    daemon.start(&format!(
        "{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("mail", &smtp, "").replace("tls = \"none\"", "tls = \"starttls\""),
        route_all("mail"),
    ));
    eventually("a failed delivery", Duration::from_secs(20), async || {
        let failed = daemon.log().iter().any(|l| l["message"] == "delivery failed");
        if failed { Ok(()) } else { Err("no failed delivery logged yet".to_owned()) }
    })
    .await;
    daemon.stop().await;

    assert!(smtp.mails().is_empty(), "nothing was sent without TLS");
    assert_eq!(aws.depth(&queue).await.total(), 1, "the message stays in SQS");
    let failure = daemon.log().into_iter().find(|l| l["message"] == "delivery failed").expect("the failure");
    assert!(failure["error"].as_str().is_some_and(|e| e.contains("(will retry)")), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_longer_than_the_visibility_timeout_keeps_its_messages_invisible_until_sent() {
    let Some(aws) = Aws::connect("email_heartbeat").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_heartbeat", &daemon.path("mail")) else { return };
    smtp.start();
    let queue = aws.create_queue("in").await;
    aws.send_all(
        &queue,
        &[bounce("h-1", "a@dev.acme.test", "r@x.test", "s"), bounce("h-2", "a@dev.acme.test", "q@x.test", "s")],
    )
    .await;

    // Received with a 5 s visibility timeout (the harness's), held for a 9 s window.
    daemon.start(&format!(
        "{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("digest", &smtp, "mode = \"digest\"\ndigest_window_secs = 9"),
        route_all("digest"),
    ));
    let mails = smtp.wait_for_mails(1, Duration::from_secs(30)).await;
    aws.wait_for_total(&queue, 0, Duration::from_secs(10)).await;
    daemon.stop().await;

    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "[sesroute] digest: 2 notifications (2 bounce)", "each listed once");
    let extended = daemon.log().iter().filter(|l| l["message"] == "still delivering: visibility extended").count();
    assert!(extended >= 2, "the held messages' visibility was extended ({extended} times)");
    assert_eq!(daemon.last_stats()["received"].as_u64(), Some(2), "never received twice");
}

/// SES's answer to a message from an identity that is not verified (in the
/// sandbox, every recipient must be verified too).
const SES_NOT_VERIFIED: &str = "554 Message rejected: Email address is not verified. The following identities \
    failed the check in region EU-WEST-1: sesroute@acme.test";

#[tokio::test(flavor = "multi_thread")]
async fn an_account_refusal_such_as_an_unverified_sender_is_retried_never_dead_lettered() {
    let Some(aws) = Aws::connect("email_unverified").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_unverified", &daemon.path("mail")) else { return };
    smtp.args = vec!["--answer".into(), SES_NOT_VERIFIED.into()];
    smtp.start();
    let queue = aws.create_queue("in").await;
    aws.send(&queue, &bounce("u-1", "app@dev.acme.test", "r@x.test", "s")).await;
    let dead = daemon.path("dead.jsonl");

    daemon.start(&format!(
        "dead_letter = \"dead\"\n{}{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("mail", &smtp, ""),
        super::harness::file_sink("dead", &dead),
        route_all("mail"),
    ));
    let failure = eventually("a refused send", Duration::from_secs(20), async || {
        let log = daemon.log();
        log.into_iter().find(|l| l["message"] == "delivery failed").ok_or_else(|| "no failure yet".to_owned())
    })
    .await;
    let error = failure["error"].as_str().unwrap_or_default();
    assert!(error.contains("not verified") && error.ends_with("(will retry)"), "{failure}");
    assert_eq!(aws.depth(&queue).await.total(), 1, "the message stays in SQS");

    // The identity is verified now: the same server accepts, and the notification arrives.
    smtp.stop();
    smtp.args.clear();
    smtp.start();
    smtp.wait_for_mails(1, Duration::from_secs(60)).await;
    aws.wait_for_total(&queue, 0, Duration::from_secs(20)).await;
    daemon.stop().await;
    assert!(std::fs::read_to_string(&dead).unwrap_or_default().is_empty(), "nothing was dead-lettered");
}

/// A bounce to 50 recipients, each with a long diagnostic code: even cut to
/// readable lengths, an email of some 150 KB.
fn big_bounce(id: &str) -> String {
    let recipients: Vec<Value> = (0..50)
        .map(|i| {
            json!({"emailAddress": format!("r{i}@big.test"), "status": "5.0.0",
                "diagnosticCode": format!("smtp; 550 {}", "long answer ".repeat(250))})
        })
        .collect();
    json!({
        "notificationType": "Bounce",
        "mail": {"timestamp": "2026-11-24T10:00:00.000Z", "source": "app@dev.acme.test", "messageId": id,
            "destination": ["r0@big.test"]},
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": recipients},
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_refused_for_its_size_is_split_and_only_the_notification_too_big_alone_is_dead_lettered() {
    let Some(aws) = Aws::connect("email_split").await else { return };
    let mut daemon = Daemon::new();
    let Some(mut smtp) = Smtp::new("email_split", &daemon.path("mail")) else { return };
    smtp.args = vec!["--max-bytes".into(), "60000".into()];
    smtp.start();
    let queue = aws.create_queue("in").await;
    let mut bodies: Vec<String> =
        (1..=4).map(|i| bounce(&format!("small-{i}"), "app@dev.acme.test", &format!("r{i}@x.test"), "s")).collect();
    bodies.insert(2, big_bounce("big-1"));
    assert!(bodies[2].len() > 100_000, "a body of {} bytes", bodies[2].len());
    aws.send_all(&queue, &bodies).await;
    let dead = daemon.path("dead.jsonl");

    daemon.start(&format!(
        "dead_letter = \"dead\"\n{}{}{}{}{}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        email_sink("digest", &smtp, "mode = \"digest\"\ndigest_window_secs = 3"),
        super::harness::file_sink("dead", &dead),
        route_all("digest"),
    ));
    aws.wait_for_total(&queue, 0, Duration::from_secs(40)).await;
    daemon.stop().await;

    let mails = smtp.mails();
    let listed: Vec<&str> = mails.iter().flat_map(|m| m.text.matches("Permanent bounce (General)")).collect();
    assert_eq!(
        listed.len(),
        4,
        "the four small notifications went out: {:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(mails.iter().all(|m| !m.text.contains("big.test")), "the big one was in no digest sent");
    let dead = super::harness::lines(&dead);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let body = dead[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("big-1"), "the big notification alone was dead-lettered: {:?}", dead[0]["reason"]);
}
