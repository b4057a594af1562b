//! The `webhook` sink: POSTs each notification, with the routes that sent it
//! here, as JSON (`format = "json"`) or as a Slack message (`format = "slack"`).
//!
//! # Requests
//!
//! One `POST` to `url` per notification, `Content-Type: application/json`,
//! `User-Agent: sesroute/<version>`. With `format = "json"` the body is the
//! record the `file` sink writes, on one line:
//! `{"routes":[..],"kind":..,"source":..,"message_id":..,"bounce_class":..,"queue":..,"sqs_message_id":..,"notification":{<the SES JSON>}}`,
//! or for a dead letter `{"dead_letter":true,"reason":..,"queue":..,"sqs_message_id":..,"body":..}`.
//! With `format = "slack"` it is a message for a Slack incoming webhook.
//! Delivery is at least once: deduplicate on `sqs_message_id` or `message_id`.
//!
//! # Signature
//!
//! With a `secret`, each request (each attempt of it) carries two headers:
//!
//! - `X-Sesroute-Timestamp`: when it was sent, in Unix seconds (ASCII decimal);
//! - `X-Sesroute-Signature`: `sha256=` then the lowercase hex HMAC-SHA256,
//!   keyed with the secret's UTF-8 bytes, of the timestamp header's value, a
//!   `.`, and the request body exactly as received (raw bytes, before any JSON
//!   parsing).
//!
//! A receiver recomputes the HMAC, compares it with the header's in constant
//! time, and rejects timestamps too far from its own clock (five minutes, say)
//! to refuse replays. Example: secret `whsec-test`, timestamp `1767225600`,
//! body `{"kind":"bounce"}` sign `1767225600.{"kind":"bounce"}`, giving
//! `sha256=ded11e0767ca940a5bd463f7ede4b03f69d3385c89fc851672db6fb2d1b7ecaf`.
//!
//! # Answers
//!
//! A 2xx delivers. 429, 408, 5xx, timeouts and connection errors are tried
//! again here a few times with backoff, waiting out a `Retry-After` of at most
//! 30 seconds; after that, or when `Retry-After` asks for longer, the
//! message goes back to SQS and comes again later. 400, 413 and 422 refuse
//! the payload itself and are permanent: the message goes to the dead-letter
//! sink. Any other answer (401, 403, 404, 410, redirects, which are not
//! followed) means the receiver refuses everything: the message goes back to
//! SQS at once, with its backoff, and the refusal is counted and logged. Errors and logs name the URL's host only: the path of a
//! Slack URL is its token.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable as _};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Response, StatusCode, Url};
use sha2::Sha256;
use tracing::warn;

use super::report::Report;
use super::slack;
use super::{Deliver, Item, Origin, RateLimit, SinkError};
use crate::config::{Secret, Webhook, WebhookFormat};
use crate::metrics::REFUSALS;
use crate::text::{chain, clip, one_line};

const SIGNATURE_HEADER: &str = "x-sesroute-signature";
const TIMESTAMP_HEADER: &str = "x-sesroute-timestamp";
const USER_AGENT: &str = concat!("sesroute/", env!("CARGO_PKG_VERSION"));

/// Tries per delivery before the message is left to SQS's own redelivery.
const ATTEMPTS: usize = 3;
/// The longest `Retry-After` waited out in-process; a longer one leaves the
/// message to SQS at once rather than hold an in-flight slot.
const MAX_WAIT_HERE: Duration = Duration::from_secs(30);
/// How much of an error answer's body is read and quoted in the error.
const MAX_ANSWER_BYTES: usize = 1024;
const MAX_ANSWER_CHARS: usize = 200;

#[derive(Debug)]
pub struct WebhookSink {
    name: String,
    format: WebhookFormat,
    /// Boxed: the sinks' enum stays the size of its small members.
    endpoint: Box<Endpoint>,
}

/// Where and how to POST.
struct Endpoint {
    /// The sink's name, for metrics and logs.
    sink: String,
    client: Client,
    url: Url,
    /// The URL's host and port: the only part of it errors and logs name.
    host: String,
    secret: Option<Secret>,
    timeout: Duration,
    backoff: ExponentialBuilder,
    /// `max_per_minute`, counted per request (retries included).
    limit: Option<RateLimit>,
}

/// The URL stays out: its path may be a token.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("signed", &self.secret.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A failed attempt, and how long the server asked to wait before the next.
#[derive(Debug)]
struct FailedAttempt {
    error: SinkError,
    retry_after: Option<Duration>,
    /// The receiver refuses (see [`Class::Refuses`]): not tried again here.
    refused: bool,
}

impl WebhookSink {
    pub fn new(name: &str, options: &Webhook, limit: Option<RateLimit>) -> Result<WebhookSink, String> {
        // The parse error never quotes the URL.
        let url = Url::parse(&options.url).map_err(|e| format!("url is not a valid URL: {e}"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err("url has no host".to_owned()),
        };
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", chain(&e)))?;
        let endpoint = Endpoint {
            sink: name.to_owned(),
            client,
            url,
            host,
            secret: options.secret.as_ref().map(|secret| secret.read("secret")).transpose()?,
            timeout: options.timeout,
            backoff: ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(1))
                .with_max_times(ATTEMPTS - 1)
                .with_jitter(),
            limit,
        };
        Ok(WebhookSink { name: name.to_owned(), format: options.format, endpoint: Box::new(endpoint) })
    }
}

impl Deliver for WebhookSink {
    /// It waits for its `max_per_minute` per request it makes.
    fn limits_itself(&self) -> bool {
        true
    }

    async fn deliver(&self, origin: Origin<'_>, item: Item<'_>) -> Result<(), SinkError> {
        let body = match (self.format, item) {
            (WebhookFormat::Json, _) => {
                let mut line = super::file::line(origin, item)?;
                line.pop();
                line
            }
            (WebhookFormat::Slack, Item::Notification { notification, routes }) => {
                slack::notification(&Report::new(origin, notification, routes))
            }
            (WebhookFormat::Slack, Item::DeadLetter { body, reason }) => slack::dead_letter(origin, body, reason),
        };
        let endpoint = &self.endpoint;
        (|| endpoint.post(&body))
            .retry(endpoint.backoff)
            .when(|failure| failure.error.is_retryable() && !failure.refused)
            .adjust(|failure, backoff| next_wait(failure.retry_after, backoff))
            .notify(|failure, wait| {
                warn!(sink = %self.name, error = %failure.error, retry_in_ms = wait.as_millis(), "webhook attempt failed");
            })
            .await
            .map_err(|failure| match (failure.error, failure.retry_after) {
                // Asked to wait longer than is worth waiting here: SQS keeps the
                // message until then.
                (SinkError::Retryable(reason), Some(retry_after)) if !retry_after.is_zero() => {
                    SinkError::Throttled { reason, retry_after }
                }
                (error, _) => error,
            })
    }
}

impl Endpoint {
    /// One attempt.
    async fn post(&self, body: &[u8]) -> Result<(), FailedAttempt> {
        RateLimit::wait_for(self.limit.as_ref()).await;
        let mut request = self.client.post(self.url.clone()).header(CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            request = request
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, signature(secret.0.as_bytes(), timestamp, body));
        }
        let response = match request.body(body.to_vec()).send().await {
            Ok(response) => response,
            Err(e) => return Err(self.request_failed(&e.without_url())),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| retry_after(value, SystemTime::now()));
        let class = class(status);
        let mut message = format!("{} answered {status}", self.host);
        if class == Class::Refuses {
            message.push_str(": the receiver refuses");
        }
        if status.is_redirection() {
            // Where it points is not named: the location may carry a token too.
            message.push_str(": redirects are not followed, set url to the final address");
        } else {
            if let Some(wait) = retry_after {
                let _ = write!(message, " (Retry-After {} s)", wait.as_secs());
            }
            let said = answer(response).await;
            if !said.is_empty() {
                let _ = write!(message, ": {said}");
            }
        }
        let error = match class {
            Class::Passing => SinkError::Retryable(message),
            Class::Refuses => {
                metrics::counter!(REFUSALS, "sink" => self.sink.clone(), "status" => status.as_u16().to_string())
                    .increment(1);
                warn!(sink = %self.sink, result = "refused", status = status.as_u16(), "the webhook receiver refuses");
                SinkError::Retryable(message)
            }
            Class::Payload => SinkError::Permanent(message),
        };
        Err(FailedAttempt { error, retry_after, refused: class == Class::Refuses })
    }

    fn request_failed(&self, error: &reqwest::Error) -> FailedAttempt {
        let error = if error.is_timeout() {
            SinkError::Retryable(format!("{} gave no answer within {} s", self.host, self.timeout.as_secs_f32()))
        } else if error.is_builder() {
            SinkError::Permanent(format!("cannot make a request to {}: {}", self.host, chain(error)))
        } else {
            SinkError::Retryable(format!("cannot reach {}: {}", self.host, chain(error)))
        };
        FailedAttempt { error, retry_after: None, refused: false }
    }
}

/// What an HTTP answer other than 2xx says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// 429, 408, 5xx: a passing problem, tried again here, then left to SQS.
    Passing,
    /// 401, 403, 404, 410, redirects and every other 4xx: the receiver refuses
    /// whatever is sent (a rotated secret, an archived Slack channel, a moved
    /// URL). No notification is at fault: the message goes back to SQS with
    /// its backoff, and the refusal is counted (`sesroute_sink_refusals_total`)
    /// and logged with `result = "refused"`, for someone to fix the sink.
    Refuses,
    /// 400, 413, 422: this payload is refused as such; it goes to the dead-letter sink.
    Payload,
}

/// The one table of webhook answers.
fn class(status: StatusCode) -> Class {
    match status.as_u16() {
        400 | 413 | 422 => Class::Payload,
        408 | 429 | 500..=599 => Class::Passing,
        _ => Class::Refuses,
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `"<timestamp>.<body>"` (see the module doc).
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A `Retry-After` value, in delay-seconds or as an HTTP date (a date in the
/// past means now); `None` when it is neither.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// The wait before the next attempt: what the server asked for when it is
/// short enough to wait here, else the backoff's; `None` stops trying here.
fn next_wait(retry_after: Option<Duration>, backoff: Option<Duration>) -> Option<Duration> {
    let backoff = backoff?;
    match retry_after {
        Some(wait) if wait > MAX_WAIT_HERE => None,
        Some(wait) => Some(wait),
        None => Some(backoff),
    }
}

/// The start of an error answer's body, on one line, for the error message.
async fn answer(mut response: Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_ANSWER_BYTES);
    let text = String::from_utf8_lossy(&bytes);
    let line = one_line(&text);
    clip(&line, MAX_ANSWER_CHARS)
}

#[cfg(test)]
mod tests {
    use crate::config::SecretSource;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    use axum::response::{IntoResponse, Response as AxumResponse};

    use super::*;
    use crate::testing::{BOUNCE_JSON, bounce};

    const ORIGIN: Origin<'static> = Origin { queue: "bounces", sqs_message_id: "sqs-1" };

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec-test",
        //   b"1767225600.{\"kind\":\"bounce\"}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature(b"whsec-test", 1_767_225_600, br#"{"kind":"bounce"}"#),
            "sha256=ded11e0767ca940a5bd463f7ede4b03f69d3385c89fc851672db6fb2d1b7ecaf"
        );
        // python3 -c 'import hmac,hashlib; print(hmac.new("kéy".encode(),
        //   "1700000000.café".encode(), hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("kéy".as_bytes(), 1_700_000_000, "café".as_bytes()),
            "sha256=5fd10bb023967e35416067c6276f70859e09990949cf9964e7dbd3268e3d9054"
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Wed, 31 Dec 2025 23:59:00 GMT", now), Some(Duration::ZERO), "past: now");
        assert_eq!(retry_after("-5", now), None);
        assert_eq!(retry_after("1.5", now), None);
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_replaces_the_backoff_up_to_a_limit_and_never_adds_attempts() {
        let backoff = Some(Duration::from_secs(2));
        assert_eq!(next_wait(None, backoff), backoff);
        assert_eq!(next_wait(Some(Duration::from_secs(5)), backoff), Some(Duration::from_secs(5)));
        assert_eq!(next_wait(Some(MAX_WAIT_HERE), backoff), Some(MAX_WAIT_HERE));
        assert_eq!(next_wait(Some(MAX_WAIT_HERE + Duration::from_secs(1)), backoff), None);
        assert_eq!(next_wait(Some(Duration::from_secs(1)), None), None);
    }

    /// One answer of the test server: status, headers, body, and a delay before it.
    #[derive(Clone)]
    struct Answer(u16, &'static [(&'static str, &'static str)], &'static str, Duration);

    fn answer_with(status: u16) -> Answer {
        Answer(status, &[], "", Duration::ZERO)
    }

    #[derive(Clone, Default)]
    struct Server {
        script: Arc<Mutex<Vec<Answer>>>,
        seen: Arc<Mutex<Vec<(Instant, HeaderMap, Bytes)>>>,
    }

    async fn record(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> AxumResponse {
        server.seen.lock().unwrap().push((Instant::now(), headers, body));
        let Answer(status, headers, body, delay) = {
            let mut script = server.script.lock().unwrap();
            if script.len() > 1 { script.remove(0) } else { script[0].clone() }
        };
        tokio::time::sleep(delay).await;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        (StatusCode::from_u16(status).unwrap(), map, body).into_response()
    }

    /// A server on loopback that answers per `script` (its last answer again
    /// once the others are used) and records each request; and a sink for it.
    async fn serve(script: Vec<Answer>, format: WebhookFormat, secret: Option<&str>) -> (Server, WebhookSink) {
        let server = Server { script: Arc::new(Mutex::new(script)), ..Server::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(record).with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let options = Webhook {
            url: format!("http://{address}/services/T0/B0/TOKEN?key=QUERY"),
            format,
            secret: secret.map(|s| SecretSource::Inline(Secret(s.to_owned()))),
            timeout: Duration::from_millis(500),
        };
        let mut sink = WebhookSink::new("hook", &options, None).unwrap();
        sink.endpoint.backoff =
            ExponentialBuilder::default().with_min_delay(Duration::from_millis(20)).with_max_times(2);
        (server, sink)
    }

    impl Server {
        fn count(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
    }

    async fn send(sink: &WebhookSink) -> Result<(), SinkError> {
        let notification = bounce(BOUNCE_JSON);
        sink.deliver(ORIGIN, Item::Notification { notification: &notification, routes: &["dev", "all"] }).await
    }

    /// The error does not give away the URL's path or query.
    fn assert_names_host_only(error: &SinkError) {
        let text = error.to_string();
        assert!(text.contains("127.0.0.1:"), "{text}");
        assert!(!text.contains("TOKEN") && !text.contains("QUERY") && !text.contains("services"), "{text}");
    }

    #[tokio::test]
    async fn posts_the_file_record_signed_with_headers_a_receiver_can_check() {
        let (server, sink) = serve(vec![answer_with(204)], WebhookFormat::Json, Some("s3cret")).await;
        send(&sink).await.unwrap();
        let seen = server.seen.lock().unwrap();
        let [(_, headers, body)] = &seen[..] else { panic!("one request, not {}", seen.len()) };
        let mut expected = super::super::file::line(
            ORIGIN,
            Item::Notification { notification: &bounce(BOUNCE_JSON), routes: &["dev", "all"] },
        )
        .unwrap();
        expected.pop();
        assert_eq!(body.as_ref(), expected.as_slice());
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["user-agent"], USER_AGENT);
        let timestamp: u64 = headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(now.abs_diff(timestamp) < 60, "{timestamp} vs {now}");
        assert_eq!(headers[SIGNATURE_HEADER].to_str().unwrap(), signature(b"s3cret", timestamp, body));
    }

    #[tokio::test]
    async fn without_a_secret_nothing_is_signed() {
        let (server, sink) = serve(vec![answer_with(200)], WebhookFormat::Slack, None).await;
        send(&sink).await.unwrap();
        let seen = server.seen.lock().unwrap();
        assert!(!seen[0].1.contains_key(SIGNATURE_HEADER) && !seen[0].1.contains_key(TIMESTAMP_HEADER));
        let message: serde_json::Value = serde_json::from_slice(&seen[0].2).unwrap();
        assert_eq!(message["text"], "Permanent bounce (General) from dev@dev.example.com to jane@example.org");
    }

    #[tokio::test]
    async fn server_errors_are_tried_again_then_left_to_sqs() {
        let (server, sink) = serve(vec![answer_with(503), answer_with(200)], WebhookFormat::Json, None).await;
        send(&sink).await.unwrap();
        assert_eq!(server.count(), 2);

        let (server, sink) =
            serve(vec![Answer(500, &[], "rollup_error", Duration::ZERO)], WebhookFormat::Json, None).await;
        let error = send(&sink).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(
            error.to_string().ends_with("answered 500 Internal Server Error: rollup_error (will retry)"),
            "{error}"
        );
        assert_names_host_only(&error);
        assert_eq!(server.count(), ATTEMPTS);
    }

    #[tokio::test]
    async fn a_short_retry_after_is_waited_out_and_a_long_one_is_left_to_sqs() {
        let short = Answer(429, &[("retry-after", "1")], "", Duration::ZERO);
        let (server, sink) = serve(vec![short, answer_with(200)], WebhookFormat::Json, None).await;
        send(&sink).await.unwrap();
        let waited = {
            let seen = server.seen.lock().unwrap();
            seen[1].0 - seen[0].0
        };
        assert!(waited >= Duration::from_secs(1), "{waited:?}: Retry-After rather than the 20 ms backoff");

        let long = Answer(429, &[("retry-after", "120")], "slow down", Duration::ZERO);
        let (server, sink) = serve(vec![long], WebhookFormat::Json, None).await;
        let error = send(&sink).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("429 Too Many Requests (Retry-After 120 s): slow down"), "{error}");
        assert!(
            matches!(error, SinkError::Throttled { retry_after, .. } if retry_after == Duration::from_secs(120)),
            "the pause asked for travels with the error, for SQS to keep the message that long: {error:?}"
        );
        assert_eq!(server.count(), 1, "no wait of two minutes here");
    }

    #[test]
    fn only_400_413_and_422_are_permanent_and_a_refusing_receiver_is_retried() {
        let table: &[(u16, Class)] = &[
            (400, Class::Payload),
            (413, Class::Payload),
            (422, Class::Payload),
            (408, Class::Passing),
            (429, Class::Passing),
            (500, Class::Passing),
            (502, Class::Passing),
            (503, Class::Passing),
            (504, Class::Passing),
            (401, Class::Refuses),
            (403, Class::Refuses),
            (404, Class::Refuses),
            (410, Class::Refuses),
            (405, Class::Refuses),
            (301, Class::Refuses),
            (302, Class::Refuses),
            (307, Class::Refuses),
            (308, Class::Refuses),
        ];
        for (status, expected) in table {
            assert_eq!(class(StatusCode::from_u16(*status).unwrap()), *expected, "{status}");
        }
    }

    #[tokio::test]
    async fn payload_refusals_are_permanent_at_once() {
        for status in [400, 413, 422] {
            let (server, sink) =
                serve(vec![Answer(status, &[], "invalid_blocks\n", Duration::ZERO)], WebhookFormat::Slack, None).await;
            let error = send(&sink).await.unwrap_err();
            assert!(!error.is_retryable(), "{error}");
            assert!(error.to_string().ends_with(": invalid_blocks (permanent)"), "{error}");
            assert_names_host_only(&error);
            assert_eq!(server.count(), 1);
        }
    }

    #[tokio::test]
    async fn a_receiver_that_refuses_or_redirects_is_left_to_sqs_and_counted_as_refusing() {
        for status in [401, 403, 404, 410] {
            let (server, sink) =
                serve(vec![Answer(status, &[], "channel_is_archived", Duration::ZERO)], WebhookFormat::Slack, None)
                    .await;
            let error = send(&sink).await.unwrap_err();
            assert!(error.is_retryable(), "{error}");
            assert!(
                error.to_string().contains(": the receiver refuses: channel_is_archived (will retry)"),
                "{status}: {error}"
            );
            assert_names_host_only(&error);
            assert_eq!(server.count(), 1, "{status}: not tried again at once: SQS's backoff applies");
        }

        let moved = Answer(301, &[("location", "https://example.test/TOKEN2")], "", Duration::ZERO);
        let (server, sink) = serve(vec![moved], WebhookFormat::Json, None).await;
        let error = send(&sink).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(
            error.to_string().contains("301 Moved Permanently: the receiver refuses: redirects are not followed"),
            "{error}"
        );
        assert!(!error.to_string().contains("TOKEN2"), "{error}");
        assert_eq!(server.count(), 1, "the redirect is not followed");
    }

    #[tokio::test]
    async fn timeouts_and_refused_connections_are_retryable_and_name_the_host_only() {
        let slow = Answer(200, &[], "", Duration::from_secs(2));
        let (server, sink) = serve(vec![slow], WebhookFormat::Json, None).await;
        let error = send(&sink).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("gave no answer within 0.5 s"), "{error}");
        assert_names_host_only(&error);
        assert_eq!(server.count(), ATTEMPTS);

        // A port just freed: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let options = Webhook {
            url: format!("http://{address}/TOKEN?QUERY"),
            format: WebhookFormat::Json,
            secret: None,
            timeout: Duration::from_secs(1),
        };
        let mut sink = WebhookSink::new("hook", &options, None).unwrap();
        sink.endpoint.backoff =
            ExponentialBuilder::default().with_min_delay(Duration::from_millis(1)).with_max_times(1);
        let error = send(&sink).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().starts_with(&format!("cannot reach {address}: ")), "{error}");
        assert_names_host_only(&error);
    }

    #[test]
    fn neither_debug_nor_errors_show_the_secret_or_the_path() {
        let options = Webhook {
            url: "https://hooks.slack.com/services/T0/B0/TOKEN".into(),
            format: WebhookFormat::Slack,
            secret: Some(SecretSource::Inline(Secret("s3cret".into()))),
            timeout: Duration::from_secs(10),
        };
        let sink = WebhookSink::new("hook", &options, None).unwrap();
        let debug = format!("{sink:?}");
        assert!(debug.contains("hooks.slack.com") && !debug.contains("TOKEN") && !debug.contains("s3cret"), "{debug}");
        let bad = Webhook { url: "https://hooks.slack.com:99999/TOKEN".into(), ..options };
        let error = WebhookSink::new("hook", &bad, None).unwrap_err();
        assert!(!error.contains("TOKEN"), "{error}");
    }
}
