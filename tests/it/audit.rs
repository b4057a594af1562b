//! `sesroute audit` against moto's server (`emulators/moto_server.py`, which
//! completes the SES answers moto 5.2.5 lacks): an account with problems
//! next to correct resources; each problem is reported once, the correct
//! resources stay silent, and the exit status follows `--fail-on`.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sesv2::types::{DkimSigningAttributes, EventDestinationDefinition, EventType, SnsDestination};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::{Run, sesroute, temp_file};

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

/// A moto server on a free port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(test: &str) -> Option<Moto> {
        let python = crate::test_python("MOTO_TEST_PYTHON", test)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("emulators/moto_server.py");
        let child = Command::new(python)
            .arg(script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Moto { child, endpoint: format!("http://127.0.0.1:{port}") })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Clients {
    ses: aws_sdk_ses::Client,
    sesv2: aws_sdk_sesv2::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
}

async fn clients(endpoint: &str) -> Clients {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build();
    Clients {
        ses: aws_sdk_ses::Client::new(&sdk),
        sesv2: aws_sdk_sesv2::Client::new(&sdk),
        sns: aws_sdk_sns::Client::new(&sdk),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        s3: aws_sdk_s3::Client::from_conf(s3),
    }
}

const OPEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Open","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;

fn ses_only_topic_policy(arn: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"ses.amazonaws.com"}},"Action":"SNS:Publish","Resource":"{arn}","Condition":{{"StringEquals":{{"AWS:SourceAccount":"{ACCOUNT}"}}}}}}]}}"#
    )
}

fn topic_only_queue_policy(queue_arn: &str, topic_arn: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"sns.amazonaws.com"}},"Action":"sqs:SendMessage","Resource":"{queue_arn}","Condition":{{"ArnEquals":{{"aws:SourceArn":"{topic_arn}"}}}}}}]}}"#
    )
}

/// A topic subscribed by a queue; returns (topic ARN, queue URL, queue ARN).
async fn feedback_pair(c: &Clients, name: &str, open: bool, raw: bool, redrive: bool) -> (String, String, String) {
    let topic = c.sns.create_topic().name(name).send().await.expect("CreateTopic").topic_arn.expect("an ARN");
    let queue_url = c.sqs.create_queue().queue_name(name).send().await.expect("CreateQueue").queue_url.expect("a URL");
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
    let (topic_policy, queue_policy) = if open {
        (OPEN.to_owned(), OPEN.to_owned())
    } else {
        (ses_only_topic_policy(&topic), topic_only_queue_policy(&queue_arn, &topic))
    };
    c.sns
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("Policy")
        .attribute_value(topic_policy)
        .send()
        .await
        .expect("SetTopicAttributes");
    let mut set =
        c.sqs.set_queue_attributes().queue_url(&queue_url).attributes(QueueAttributeName::Policy, queue_policy);
    if redrive {
        c.sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.expect("CreateQueue");
        set = set.attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}-dlq","maxReceiveCount":"10"}}"#),
        );
    }
    set.send().await.expect("SetQueueAttributes");
    let subscription = c
        .sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .return_subscription_arn(true)
        .send()
        .await
        .expect("Subscribe")
        .subscription_arn
        .expect("a subscription ARN");
    if raw {
        c.sns
            .set_subscription_attributes()
            .subscription_arn(subscription)
            .attribute_name("RawMessageDelivery")
            .attribute_value("true")
            .send()
            .await
            .expect("SetSubscriptionAttributes");
    }
    (topic, queue_url, queue_arn)
}

async fn identity(c: &Clients, name: &str, dkim: bool, configuration_set: Option<&str>) {
    let mut create = c
        .sesv2
        .create_email_identity()
        .email_identity(name)
        .set_configuration_set_name(configuration_set.map(str::to_owned));
    if dkim {
        create = create.dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(aws_sdk_sesv2::types::DkimSigningKeyLength::Rsa2048Bit)
                .build(),
        );
    }
    create.send().await.expect("CreateEmailIdentity");
}

async fn topics_for(c: &Clients, identity: &str, topic: &str) {
    for kind in [aws_sdk_ses::types::NotificationType::Bounce, aws_sdk_ses::types::NotificationType::Complaint] {
        c.ses
            .set_identity_notification_topic()
            .identity(identity)
            .notification_type(kind)
            .sns_topic(topic)
            .send()
            .await
            .expect("SetIdentityNotificationTopic");
    }
}

/// The account: good.example and billing@good.example wired to the
/// `feedback` source, events.good.example through its configuration set to
/// the `events` source; and one resource per problem.
async fn set_up(c: &Clients) -> (String, String) {
    let (feedback_topic, feedback_url, _) = feedback_pair(c, "feedback", false, false, true).await;
    let (events_topic, events_url, _) = feedback_pair(c, "events", true, true, false).await;
    let elsewhere =
        c.sns.create_topic().name("elsewhere").send().await.expect("CreateTopic").topic_arn.expect("an ARN");

    c.sesv2.create_configuration_set().configuration_set_name("tracked").send().await.expect("CreateConfigurationSet");
    c.sesv2
        .create_configuration_set_event_destination()
        .configuration_set_name("tracked")
        .event_destination_name("to-events")
        .event_destination(
            EventDestinationDefinition::builder()
                .enabled(true)
                .matching_event_types(EventType::Bounce)
                .matching_event_types(EventType::Complaint)
                .sns_destination(SnsDestination::builder().topic_arn(&events_topic).build().expect("a destination"))
                .build(),
        )
        .send()
        .await
        .expect("CreateConfigurationSetEventDestination");

    identity(c, "good.example", true, None).await;
    topics_for(c, "good.example", &feedback_topic).await;
    identity(c, "billing@good.example", false, None).await;
    topics_for(c, "billing@good.example", &feedback_topic).await;
    identity(c, "events.good.example", true, Some("tracked")).await;
    identity(c, "shadowed@good.example", false, None).await;
    identity(c, "orphan.example", true, None).await;
    topics_for(c, "orphan.example", &elsewhere).await;
    identity(c, "nodkim.example", false, None).await;
    topics_for(c, "nodkim.example", &feedback_topic).await;
    identity(c, "public.example", true, None).await;
    topics_for(c, "public.example", &feedback_topic).await;
    for (name, policy) in [
        (
            "good.example",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"ses:SendRawEmail","Resource":"*","Condition":{"StringEquals":{"ses:FromAddress":"no-reply@good.example"}}}]}"#,
        ),
        ("public.example", OPEN),
    ] {
        c.sesv2
            .create_email_identity_policy()
            .email_identity(name)
            .policy_name("sending")
            .policy(policy)
            .send()
            .await
            .expect("CreateEmailIdentityPolicy");
    }
    c.sesv2
        .put_account_suppression_attributes()
        .suppressed_reasons(aws_sdk_sesv2::types::SuppressionListReason::Bounce)
        .send()
        .await
        .expect("PutAccountSuppressionAttributes");

    for bucket in ["private-archive", "leaky-archive"] {
        c.s3.create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(REGION))
                    .build(),
            )
            .send()
            .await
            .expect("CreateBucket");
    }
    c.s3.put_public_access_block()
        .bucket("private-archive")
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .expect("PutPublicAccessBlock");
    c.s3.put_bucket_acl()
        .bucket("leaky-archive")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .expect("PutBucketAcl");
    (feedback_url, events_url)
}

fn config(endpoint: &str, feedback_url: &str, events_url: &str) -> String {
    format!(
        r#"
[aws]
region = "{REGION}"
endpoint_url = "{endpoint}"

[[sources]]
name = "feedback"
queue_url = "{feedback_url}"
signature = "require"

[[sources]]
name = "events"
queue_url = "{events_url}"
signature = "require"

[sinks.private]
type = "s3"
bucket = "private-archive"

[sinks.leaky]
type = "s3"
bucket = "leaky-archive"

[[routes]]
name = "billing"
sinks = ["private"]
[routes.match]
source = ["billing@good.example", "*@dev.good.example"]

[[routes]]
name = "typo"
sinks = ["private"]
[routes.match]
source = "billing@goood.example"

[[routes]]
name = "all"
sinks = ["leaky"]
"#
    )
}

fn audit(config: &Path, args: &[&str]) -> Run {
    Run::of(
        sesroute()
            .arg("audit")
            .args(args)
            .arg("--config")
            .arg(config)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_problem_is_found_once_and_correct_resources_are_silent() {
    let Some(moto) = Moto::start("audit") else { return };
    let c = clients(&moto.endpoint).await;
    let (feedback_url, events_url) = set_up(&c).await;
    let config = temp_file(".toml", config(&moto.endpoint, &feedback_url, &events_url));

    let run = audit(config.path(), &["--format", "json"]);
    assert_eq!(run.code, 1, "fail findings make the status 1:\n{}\n{}", run.stdout, run.stderr);
    let findings: Vec<Value> =
        run.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let mut got: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f["check"].as_str().unwrap_or("").to_owned(), f["resource"].as_str().unwrap_or("").to_owned()))
        .collect();
    got.sort();
    let mut expected: Vec<(String, String)> = [
        ("archive-readable", "s3://leaky-archive".to_owned()),
        ("dkim-off", "nodkim.example".to_owned()),
        ("feedback-missing", "orphan.example".to_owned()),
        ("feedback-shadowed", "shadowed@good.example".to_owned()),
        ("identity-policy-any-sender", "public.example policy sending".to_owned()),
        ("identity-policy-public", "public.example policy sending".to_owned()),
        ("queue-no-redrive", events_url.clone()),
        ("queue-policy-open", events_url.clone()),
        ("raw-delivery-unverifiable", format!("arn:aws:sns:{REGION}:{ACCOUNT}:events:")),
        ("route-sender-unknown", "route \"typo\"".to_owned()),
        ("suppression-off", "account suppression list".to_owned()),
        ("topic-policy-open", format!("arn:aws:sns:{REGION}:{ACCOUNT}:events")),
    ]
    .into_iter()
    .map(|(check, resource)| (check.to_owned(), resource))
    .collect();
    expected.sort();
    // The subscription ARN ends in an id moto makes up: compare its topic part.
    for (check, resource) in &mut got {
        if check == "raw-delivery-unverifiable" {
            if let Some(i) = resource.rfind(':') {
                resource.truncate(i + 1);
            }
        }
    }
    assert_eq!(got, expected, "{}", run.stdout);
    for f in &findings {
        assert!(!f["fix"].as_str().unwrap_or("").is_empty(), "a fix for {f}");
    }

    let text = audit(config.path(), &[]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("shadowed@good.example\n  fail feedback-shadowed: "), "{}", text.stdout);
    assert!(text.stdout.ends_with("12 findings: 7 fail, 5 warn, 0 info\n"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_on_sets_the_bar_and_an_unreachable_account_exits_3() {
    let Some(moto) = Moto::start("audit_exit") else { return };
    let c = clients(&moto.endpoint).await;
    let (feedback_topic, feedback_url, _) = feedback_pair(&c, "feedback", false, false, false).await;
    identity(&c, "good.example", true, None).await;
    topics_for(&c, "good.example", &feedback_topic).await;
    let text = format!(
        "[aws]\nregion = \"{REGION}\"\nendpoint_url = \"{}\"\n\n[[sources]]\nname = \"feedback\"\nqueue_url = \"{feedback_url}\"\n\n[sinks.log]\ntype = \"log\"\n\n[[routes]]\nname = \"all\"\nsinks = [\"log\"]\n",
        moto.endpoint
    );
    let config = temp_file(".toml", &text);
    // Only warnings: the queue has no redrive, the suppression list is off.
    let run = audit(config.path(), &["--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("\"queue-no-redrive\"") && run.stdout.contains("\"suppression-off\""),
        "{}",
        run.stdout
    );
    assert_eq!(audit(config.path(), &["--fail-on", "warn"]).code, 1);

    let dead = temp_file(".toml", text.replace(&moto.endpoint, "http://127.0.0.1:9"));
    let run = audit(dead.path(), &[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("ListEmailIdentities"), "{}", run.stderr);
    let invalid = temp_file(".toml", "[[sources]]\nname = 1\n");
    assert_eq!(audit(invalid.path(), &[]).code, 2);
}
