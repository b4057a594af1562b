//! The `webhook` sink: the daemon POSTs to an HTTP server in the test, on
//! loopback, that records every request and answers per a script. A message
//! leaves its queue once the server took it (2xx, after in-process retries if
//! need be), or once the dead-letter sink has it when the server refuses it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::harness::{Aws, Daemon, config_head, eventually, file_sink, lines, source};
use crate::{read, samples};

/// Where the test server is reached: the path stands for a Slack URL's token,
/// which the daemon must never write to its log.
const HOOK_PATH: &str = "/services/T0000/B0000/hook-token-in-path";

const BOUNCE: &str = "bodies/01-bounce-permanent-general-bare.json";

/// One request the server received.
#[derive(Debug, Clone)]
struct Request {
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: the body is not JSON: {:?}", self.body))
    }
}

/// A webhook receiver on 127.0.0.1 that answers with the statuses of its
/// script in turn, the last one again once the others are used.
#[derive(Clone)]
struct Hook {
    url: String,
    script: Arc<Mutex<Vec<u16>>>,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Hook {
    async fn start(script: &[u16]) -> Hook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("the server's address");
        let hook = Hook {
            url: format!("http://{address}{HOOK_PATH}"),
            script: Arc::new(Mutex::new(script.to_vec())),
            seen: Arc::default(),
        };
        let app = axum::Router::new().fallback(answer).with_state(hook.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        hook
    }

    /// `host:port`, the part of the URL errors may name.
    fn host(&self) -> &str {
        self.url.trim_start_matches("http://").trim_end_matches(HOOK_PATH)
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().expect("the request log").clone()
    }
}

async fn answer(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    hook.seen.lock().expect("the request log").push(Request { headers, body });
    let mut script = hook.script.lock().expect("the script");
    let status = if script.len() > 1 { script.remove(0) } else { script[0] };
    StatusCode::from_u16(status).expect("a status code")
}

/// A `webhook` sink to `hook`, with `extra` keys.
fn webhook_sink(name: &str, hook: &Hook, extra: &str) -> String {
    format!("\n[sinks.{name}]\ntype = \"webhook\"\nurl = \"{}\"\n{extra}\n", hook.url)
}

/// A route that sends everything to the sink `hook`.
const ROUTE_ALL: &str = r#"
[[routes]]
name = "all"
sinks = ["hook"]
"#;

/// Runs the daemon on `config` until `queue` is empty, then stops it.
async fn run_until_empty(aws: &Aws, queue: &str, config: &str) -> Daemon {
    let mut daemon = Daemon::new();
    daemon.start(config);
    aws.wait_for_total(queue, 0, Duration::from_secs(20)).await;
    daemon.stop().await;
    daemon
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// What a receiver does: recompute the HMAC of `"<timestamp>.<body>"` and
/// compare in constant time.
fn signature_verifies(secret: &str, request: &Request) -> bool {
    let signature = request.header("x-sesroute-signature");
    let Some(Ok(signature)) = signature.strip_prefix("sha256=").map(hex::decode) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(request.header("x-sesroute-timestamp").as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    mac.verify_slice(&signature).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_carries_the_notification_and_its_routes_signed_with_the_secret() {
    let Some(aws) = Aws::connect("webhook_json").await else { return };
    let hook = Hook::start(&[200]).await;
    let queue = aws.create_queue("in").await;
    let body = read(&samples().join(BOUNCE));
    aws.send(&queue, &body).await;

    let mut daemon = Daemon::new();
    // A secret file's trailing newline is not part of the secret.
    std::fs::write(daemon.path("hook.secret"), "whsec-from-file\n").expect("the secret file is written");
    let secret_file = format!("secret_file = {:?}", daemon.path("hook.secret").display().to_string());
    daemon.start(&format!(
        "{}{}{}{ROUTE_ALL}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        webhook_sink("hook", &hook, &format!("format = \"json\"\n{secret_file}")),
    ));
    aws.wait_for_total(&queue, 0, Duration::from_secs(20)).await;
    daemon.stop().await;

    let requests = hook.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("sesroute/"), "{}", request.header("user-agent"));
    let timestamp: u64 = request.header("x-sesroute-timestamp").parse().expect("Unix seconds");
    assert!(timestamp.abs_diff(now_secs()) < 120, "timestamp {timestamp}");
    assert!(signature_verifies("whsec-from-file", request), "the signature does not verify");
    assert!(!signature_verifies("whsec-from-file\n", request), "the newline is not part of the key");

    let payload = request.json();
    let ses: Value = serde_json::from_str(&body).expect("the sample is JSON");
    assert_eq!(payload["routes"], serde_json::json!(["all"]));
    assert_eq!(payload["kind"], "bounce");
    assert_eq!(payload["source"], "billing@acme.test");
    assert_eq!(payload["queue"], "in");
    assert_eq!(payload["message_id"], ses["mail"]["messageId"]);
    assert_eq!(payload["notification"], ses, "the SES JSON as it came");
    assert_eq!(daemon.last_stats()["delivered"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_says_who_bounced_whom_and_why_with_content_escaped() {
    let Some(aws) = Aws::connect("webhook_slack").await else { return };
    let hook = Hook::start(&[200]).await;
    let queue = aws.create_queue("in").await;
    let mut ses: Value = serde_json::from_str(&read(&samples().join(BOUNCE))).expect("the sample is JSON");
    let recipient = &mut ses["bounce"]["bouncedRecipients"][0];
    let diagnostic = recipient["diagnosticCode"].as_str().expect("a diagnostic code").to_owned();
    recipient["diagnosticCode"] = format!("{diagnostic} <!channel> <https://evil.test|reset your password>").into();
    aws.send(&queue, &ses.to_string()).await;

    run_until_empty(
        &aws,
        &queue,
        &format!(
            "{}{}{}{ROUTE_ALL}",
            config_head(&aws.endpoint),
            source("in", &queue, ""),
            webhook_sink("hook", &hook, "format = \"slack\""),
        ),
    )
    .await;

    let requests = hook.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].headers.get("x-sesroute-signature").is_none(), "no secret, no signature");
    let raw = String::from_utf8(requests[0].body.to_vec()).expect("UTF-8");
    assert!(!raw.contains(['<', '>']), "nothing can mention or link: {raw}");

    let message = requests[0].json();
    assert_eq!(message["text"], "Permanent bounce (General) from billing@acme.test to m.okafor@customer.test");
    let blocks = message["blocks"].as_array().expect("blocks");
    let text: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str().or_else(|| b["elements"][0]["text"].as_str()))
        .collect();
    let text = text.join("\n");
    for expected in [
        "*Permanent bounce (General)*",
        "*From:* billing@acme.test",
        "*To:* m.okafor@customer.test (status 5.1.1)",
        "*Diagnostic:* smtp; 550 5.1.1 &lt;m.okafor@customer.test&gt;: Recipient address rejected",
        "&lt;!channel&gt; &lt;https://evil.test|reset your password&gt;",
        "Routes: all · Queue: in",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_is_tried_again_at_once_and_the_message_then_leaves_the_queue() {
    let Some(aws) = Aws::connect("webhook_500").await else { return };
    let hook = Hook::start(&[500, 200]).await;
    let queue = aws.create_queue("in").await;
    aws.send(&queue, &read(&samples().join(BOUNCE))).await;

    let daemon = run_until_empty(
        &aws,
        &queue,
        &format!(
            "{}{}{}{ROUTE_ALL}",
            config_head(&aws.endpoint),
            source("in", &queue, ""),
            webhook_sink("hook", &hook, "")
        ),
    )
    .await;

    let requests = hook.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].body, requests[1].body, "the same payload again");
    assert_eq!(requests[1].json()["kind"], "bounce", "json is the default format");
    let stats = daemon.last_stats();
    assert_eq!((stats["delivered"].as_u64(), stats["retried"].as_u64()), (Some(1), Some(0)), "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_payload_goes_to_the_dead_letter_sink_after_one_try() {
    let Some(aws) = Aws::connect("webhook_400").await else { return };
    let hook = Hook::start(&[400]).await;
    let queue = aws.create_queue("in").await;
    let body = read(&samples().join(BOUNCE));
    aws.send(&queue, &body).await;

    let mut daemon = Daemon::new();
    let dead = daemon.path("dead.jsonl");
    // A top-level key: before config_head's first table.
    daemon.start(&format!(
        "dead_letter = \"dead\"\n{}{}{}{}{ROUTE_ALL}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        webhook_sink("hook", &hook, "format = \"slack\"\nsecret = \"whsec-inline\""),
        file_sink("dead", &dead),
    ));
    aws.wait_for_total(&queue, 0, Duration::from_secs(20)).await;
    let dead_letters = eventually("the dead letter", Duration::from_secs(5), async || {
        let written = lines(&dead);
        if written.is_empty() { Err("no line".to_owned()) } else { Ok(written) }
    })
    .await;
    daemon.stop().await;

    assert_eq!(hook.requests().len(), 1, "a 400 is not tried again");
    assert_eq!(dead_letters.len(), 1, "{dead_letters:?}");
    assert_eq!(dead_letters[0]["body"], body.as_str());
    let reason = dead_letters[0]["reason"].as_str().expect("a reason");
    assert!(reason.contains(&format!("{} answered 400 Bad Request", hook.host())), "{reason}");
    let stats = daemon.last_stats();
    assert_eq!((stats["rejected"].as_u64(), stats["dead_lettered"].as_u64()), (Some(1), Some(1)), "{stats}");

    let log = std::fs::read_to_string(daemon.path("daemon.log")).expect("the log");
    assert!(log.contains(hook.host()), "the log names the host");
    assert!(!log.contains(HOOK_PATH) && !log.contains("hook-token"), "the URL's path is in the log:\n{log}");
    assert!(!log.contains("whsec-inline"), "the secret is in the log");
}

/// One route to two webhooks: A asks again (503), B refuses (400). B's copy
/// goes to the dead-letter sink on its own and B is done with; the message
/// stays in SQS until A has it, and only then is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_sink_never_costs_a_retrying_sink_its_copy() {
    let Some(aws) = Aws::connect("webhook_a_b").await else { return };
    // A fails its first delivery (the first try and its in-process retries), then takes it.
    let a = Hook::start(&[503, 503, 503, 503, 200]).await;
    let b = Hook::start(&[400]).await;
    let queue = aws.create_queue("in").await;
    let body = read(&samples().join(BOUNCE));
    aws.send(&queue, &body).await;
    let mut daemon = Daemon::new();
    let dead = daemon.path("dead.jsonl");
    daemon.start(&format!(
        "dead_letter = \"dead\"\n{}{}{}{}{}\n[[routes]]\nname = \"all\"\nsinks = [\"a\", \"b\"]\n",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        webhook_sink("a", &a, ""),
        webhook_sink("b", &b, ""),
        file_sink("dead", &dead),
    ));
    aws.wait_for_total(&queue, 0, Duration::from_secs(60)).await;
    daemon.stop().await;

    let taken: Vec<Value> = a.requests().iter().map(Request::json).collect();
    assert!(taken.len() >= 2, "A was tried again after it asked: {} requests", taken.len());
    assert!(taken.iter().all(|r| r["notification"]["mail"]["messageId"].is_string()), "A got the notification");
    assert_eq!(b.requests().len(), 1, "B refused once and is not sent it again");
    let dead_letters = lines(&dead);
    assert_eq!(dead_letters.len(), 1, "{dead_letters:?}");
    let reason = dead_letters[0]["reason"].as_str().expect("a reason");
    assert!(reason.starts_with("sinks.b: "), "the dead letter names the refusing sink: {reason}");
    assert_eq!(dead_letters[0]["body"], body.as_str());
    let stats = daemon.last_stats();
    assert_eq!((stats["received"].as_u64(), stats["delivered"].as_u64()), (Some(2), Some(1)), "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_refuses_keeps_the_messages_in_sqs_and_is_counted_as_refusing() {
    let Some(aws) = Aws::connect("webhook_refuses").await else { return };
    // A rotated secret, an archived channel; then fixed (403, 404 and redirects:
    // the sink's unit tests).
    let hook = Hook::start(&[401, 410, 200]).await;
    let queue = aws.create_queue("in").await;
    let body = read(&samples().join(BOUNCE));
    aws.send(&queue, &body).await;

    let mut daemon = Daemon::new();
    let dead = daemon.path("dead.jsonl");
    daemon.start(&format!(
        "dead_letter = \"dead\"\n{}{}{}{}{ROUTE_ALL}",
        config_head(&aws.endpoint),
        source("in", &queue, ""),
        webhook_sink("hook", &hook, ""),
        file_sink("dead", &dead),
    ));
    eventually("a refusal counted", Duration::from_secs(20), async || {
        let address = super::ops::listen_address(&daemon).await;
        let (_, metrics) = super::ops::get(&format!("http://{address}/metrics")).await;
        super::ops::metric(&metrics, "sesroute_sink_refusals_total", &[("sink", "hook"), ("status", "401")])
            .ok_or_else(|| "not counted yet".to_owned())
    })
    .await;
    assert_eq!(aws.depth(&queue).await.total(), 1, "the message stays in SQS");
    // Each refusal returns the message to SQS, after its backoff (10 s, 20 s, ...).
    aws.wait_for_total(&queue, 0, Duration::from_secs(90)).await;
    daemon.stop().await;

    let statuses = hook.requests().len();
    assert_eq!(statuses, 3, "one request per receive, none retried at once");
    assert!(lines(&dead).is_empty(), "nothing was dead-lettered");
    let refused = daemon.log().iter().filter(|l| l["result"] == "refused").count();
    assert_eq!(refused, 2, "each refusal logged as such");
}
