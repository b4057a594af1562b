//! What the daemon tests share: the emulator's SQS and SNS as the tests see
//! them ([`Aws`]), the daemon as a child process ([`Daemon`]), its config's
//! common parts, and waiting on a condition with a deadline ([`eventually`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::Value;

/// Time the daemon gets to finish in-flight messages after SIGTERM.
pub const GRACE_SECS: u64 = 10;

const REGION: &str = "us-east-1";

/// Waits until `probe` gives `Ok`, polling every 100 ms; panics after
/// `timeout` with `what` and the last state `probe` described in its `Err`.
pub async fn eventually<T>(what: &str, timeout: Duration, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(state) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}: {state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A TCP proxy on loopback to `endpoint` that holds each request whose bytes
/// contain `marker` (such as `AmazonSQS.SendMessageBatch`) for `delay`, and
/// drops it if the client hangs up meanwhile: one slow AWS operation, whose
/// calls die with a killed daemon. Returns the proxy's endpoint; it serves
/// until the test's runtime ends.
pub async fn slow_proxy(endpoint: &str, marker: &'static str, delay: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let proxy = format!("http://{}", listener.local_addr().expect("the proxy's address"));
    let upstream = endpoint.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else { continue };
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let requests = async {
                    let mut buffer = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
                        let slow = buffer[..n].windows(marker.len()).any(|w| w == marker.as_bytes());
                        if slow && !hold(&mut client_read, delay).await {
                            break;
                        }
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let _ = tokio::join!(requests, tokio::io::copy(&mut server_read, &mut client_write));
            });
        }
    });
    proxy
}

/// Waits `delay`; false when the client hung up meanwhile.
async fn hold(client: &mut tokio::net::tcp::OwnedReadHalf, delay: Duration) -> bool {
    let until = tokio::time::Instant::now() + delay;
    let mut byte = [0; 1];
    tokio::select! {
        () = tokio::time::sleep_until(until) => true,
        peeked = client.peek(&mut byte) => {
            // More of the request (not a hang-up) cannot be told from here on: wait it out.
            tokio::time::sleep_until(until).await;
            matches!(peeked, Ok(1..))
        }
    }
}

/// The emulator's SQS and SNS, with names unique to one test.
pub struct Aws {
    pub endpoint: String,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    /// The SDK config the clients were made with, for code run in process.
    pub sdk: aws_config::SdkConfig,
    test: String,
}

/// Messages in a queue: ready to be received, and received but not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub visible: usize,
    pub in_flight: usize,
}

impl Depth {
    pub fn total(self) -> usize {
        self.visible + self.in_flight
    }
}

impl Aws {
    /// Clients for the emulator `scripts/test` started, or `None` (after a
    /// note) when there is none. Under CI a missing emulator is a failure.
    pub async fn connect(test: &str) -> Option<Aws> {
        let Some(endpoint) = std::env::var("FAUXQS_ENDPOINT").ok().filter(|e| !e.is_empty()) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: CI is set but FAUXQS_ENDPOINT is not: run the tests with scripts/test"
            );
            eprintln!("{test}: skipped: FAUXQS_ENDPOINT is not set (scripts/test starts fauxqs and sets it)");
            return None;
        };
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);
        Some(Aws { endpoint, sqs, sns, sdk: config, test: test.replace('_', "-") })
    }

    /// A queue or topic name no other test or run of the tests uses.
    pub fn name(&self, what: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}-{n}-{what}", self.test, std::process::id())
    }

    /// Creates a queue named for `what` and returns its URL.
    pub async fn create_queue(&self, what: &str) -> String {
        self.create_queue_named(&self.name(what)).await
    }

    pub async fn create_queue_named(&self, name: &str) -> String {
        let created = self.sqs.create_queue().queue_name(name).send().await.expect("SQS CreateQueue");
        created.queue_url.expect("CreateQueue gives a URL")
    }

    /// The URL fauxqs gives a queue of this name once it is created.
    pub fn queue_url(&self, name: &str) -> String {
        let port = self.endpoint.rsplit(':').next().unwrap_or_default();
        format!("http://sqs.{REGION}.localhost:{port}/000000000000/{name}")
    }

    /// Creates a topic named for `what` and returns its ARN.
    pub async fn create_topic(&self, what: &str) -> String {
        let created = self.sns.create_topic().name(self.name(what)).send().await.expect("SNS CreateTopic");
        created.topic_arn.expect("CreateTopic gives an ARN")
    }

    /// Subscribes a queue to a topic; with `raw`, the body is the published
    /// message itself, else the SNS envelope around it.
    pub async fn subscribe(&self, topic_arn: &str, queue_url: &str, raw: bool) {
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("SQS GetQueueAttributes")
            .attributes
            .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
            .expect("the queue's ARN");
        self.sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", raw.to_string())
            .send()
            .await
            .expect("SNS Subscribe");
    }

    pub async fn publish(&self, topic_arn: &str, message: &str, subject: Option<&str>) {
        self.sns
            .publish()
            .topic_arn(topic_arn)
            .message(message)
            .set_subject(subject.map(str::to_owned))
            .send()
            .await
            .expect("SNS Publish");
    }

    pub async fn send(&self, queue_url: &str, body: &str) {
        self.sqs.send_message().queue_url(queue_url).message_body(body).send().await.expect("SQS SendMessage");
    }

    /// Sends every body, ten to a `SendMessageBatch`.
    pub async fn send_all(&self, queue_url: &str, bodies: &[String]) {
        for chunk in bodies.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .expect("a batch entry")
                })
                .collect();
            let sent = self
                .sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("SQS SendMessageBatch");
            assert!(sent.failed.is_empty(), "SendMessageBatch failed for some: {:?}", sent.failed);
        }
    }

    pub async fn depth(&self, queue_url: &str) -> Depth {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("SQS GetQueueAttributes")
            .attributes
            .unwrap_or_default();
        let count = |name| attributes.get(&name).map_or(0, |v| v.parse().expect("a count"));
        Depth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        }
    }

    /// Waits until the queue holds `total` messages, visible or not.
    pub async fn wait_for_total(&self, queue_url: &str, total: usize, timeout: Duration) {
        let what = format!("{total} messages in {queue_url}");
        eventually(&what, timeout, async || {
            let depth = self.depth(queue_url).await;
            if depth.total() == total { Ok(()) } else { Err(format!("{depth:?}")) }
        })
        .await;
    }

    /// Receives until the queue is found empty once `count` messages arrived,
    /// so extra messages show up too; stops after 10 s. Each message is
    /// received once (it stays invisible for the rest of the test).
    pub async fn receive_all(&self, queue_url: &str, count: usize) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut received = Vec::new();
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(600)
                .message_attribute_names("All")
                .send()
                .await
                .expect("SQS ReceiveMessage");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() && (received.len() >= count || Instant::now() >= deadline) {
                return received;
            }
            received.extend(messages);
        }
    }
}

/// `mail.messageId` of an SES JSON body (what the `sns` and `sqs` sinks send).
pub fn ses_message_id(body: &str) -> String {
    let ses: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: not JSON: {body}"));
    ses["mail"]["messageId"].as_str().unwrap_or_else(|| panic!("no mail.messageId: {body}")).to_owned()
}

/// A message's string attribute.
pub fn attribute<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message.message_attributes()?.get(name)?.string_value()
}

/// The JSON lines of a file sink (none when the file is not there yet).
pub fn lines(path: &Path) -> Vec<Value> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    };
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display())))
        .collect()
}

/// The `message_id` of every line of a file sink, sorted.
pub fn message_ids(path: &Path) -> Vec<String> {
    let mut ids: Vec<String> = lines(path)
        .iter()
        .map(|line| line["message_id"].as_str().unwrap_or_else(|| panic!("no message_id: {line}")).to_owned())
        .collect();
    ids.sort();
    ids
}

/// `[aws]` for `endpoint` (the emulator, or a [`slow_proxy`] to it),
/// `[server]` on loopback, `[runtime]` with [`GRACE_SECS`].
pub fn config_head(endpoint: &str) -> String {
    format!(
        r#"[aws]
region = "{REGION}"
endpoint_url = "{endpoint}"

[server]
listen = "127.0.0.1:0"

[runtime]
shutdown_grace_secs = {GRACE_SECS}
"#
    )
}

/// A `[[sources]]` entry with a short long-poll (quick shutdown) and a short
/// visibility timeout (quick redelivery of what a killed daemon held), plus `extra` keys.
pub fn source(name: &str, queue_url: &str, extra: &str) -> String {
    format!(
        r#"
[[sources]]
name = "{name}"
queue_url = "{queue_url}"
wait_time_secs = 1
visibility_timeout_secs = 5
{extra}
"#
    )
}

/// A `file` sink.
pub fn file_sink(name: &str, path: &Path) -> String {
    format!("\n[sinks.{name}]\ntype = \"file\"\npath = {:?}\n", path.display().to_string())
}

/// `sesroute run` in a temporary folder that holds its config, its log (JSON,
/// stdout and stderr, every start appended) and the files the test puts
/// there. Dropping it kills a daemon still running, and when the test is
/// failing prints the log.
pub struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    pub fn new() -> Daemon {
        Daemon { dir: tempfile::tempdir().expect("a temporary directory"), child: None }
    }

    /// A path in the daemon's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `config.toml` and starts the daemon on it.
    pub fn start(&mut self, config: &str) {
        fs::write(self.path("config.toml"), config).expect("config.toml is written");
        self.restart();
    }

    /// Starts the daemon again on the same config.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        let log =
            fs::OpenOptions::new().create(true).append(true).open(self.path("daemon.log")).expect("the log file opens");
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("sesroute"));
        command.args(["run", "--log-format", "json", "--config"]).arg(self.path("config.toml"));
        // SESROUTE_ variables override config keys: only the config speaks.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SESROUTE_") {
                command.env_remove(name);
            }
        }
        command
            .env_remove("RUST_LOG")
            .env("SESROUTE_LOG", "info")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file handle is cloned"))
            .stderr(log);
        self.child = Some(command.spawn().expect("sesroute starts"));
    }

    /// Sends a signal (`"TERM"`, `"KILL"`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the daemon is running").id().to_string();
        let status = Command::new("kill").arg(format!("-{signal}")).arg(&pid).status().expect("kill(1) runs");
        assert!(status.success(), "kill -{signal} {pid}: {status}");
    }

    /// Waits for the daemon to exit; panics past `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("the daemon is running");
        let status = eventually("the daemon to exit", timeout, async || {
            child.try_wait().expect("the daemon's status").ok_or_else(|| "still running".to_owned())
        })
        .await;
        self.child = None;
        status
    }

    /// SIGTERM, then asserts a clean exit (status 0) within the grace period.
    pub async fn stop(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(GRACE_SECS)).await;
        assert!(status.success(), "after SIGTERM the daemon exited with {status}");
    }

    /// The log, one JSON object per line (lines that are not JSON are skipped).
    pub fn log(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.path("daemon.log")).unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    /// The counts the last run logged as it stopped (`received`, `delivered`, ...).
    pub fn last_stats(&self) -> Value {
        self.log().into_iter().rfind(|line| line["message"] == "stopped").expect("a \"stopped\" line in the log")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = fs::read_to_string(self.path("daemon.log")).unwrap_or_default();
            eprintln!("---- daemon log ({}) ----\n{log}---- end of daemon log ----", self.dir.path().display());
        }
    }
}
