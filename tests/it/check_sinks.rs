//! `sesroute check` on the email, webhook and S3 sinks and `max_per_minute`:
//! each mistake is an error naming its key; secrets never appear in output,
//! and are not needed to check a config (the contract: `check` judges the
//! config alone); `run` reads them when the sink opens.

use crate::{Run, sesroute, temp_file};

/// A config around one sink named `team` with the given body.
fn config(sink: &str) -> String {
    format!(
        r#"
[[sources]]
name = "feedback"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/feedback"

[sinks.team]
{sink}

[[routes]]
name = "everything"
sinks = ["team"]
"#
    )
}

fn check(toml: &str, env: &[(&str, &str)]) -> Run {
    let config = temp_file(".toml", toml);
    Run::of(sesroute().args(["check", "--config"]).arg(config.path()).envs(env.iter().copied()))
}

/// The reasons `check` gives for `key`, asserting the config is refused.
fn rejects(sink: &str, key: &str) -> String {
    check(&config(sink), &[]).reason_for(key)
}

const EMAIL: &str = r#"type = "email"
to = ["Dev <dev@acme.test>"]
from = "sesroute@acme.test"
host = "smtp.acme.test""#;

#[test]
fn a_minimal_email_sink_is_valid_and_summarised_with_its_defaults() {
    let run = check(&config(EMAIL), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("team                 email   Dev <dev@acme.test> via smtp.acme.test:587 (immediate)"),
        "{}",
        run.stdout
    );
}

#[test]
fn email_login_and_tls_mode_take_their_other_spellings() {
    let sink = format!("{EMAIL}\nuser = \"u\"\npassword_env = \"SMTP_PASSWORD\"\ntls_mode = \"tls\"");
    let run = check(&config(&sink), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("via smtp.acme.test:465"), "tls_mode = \"tls\" took effect: {}", run.stdout);
}

#[test]
fn email_mistakes_name_their_keys() {
    assert!(rejects(&format!("{EMAIL}\nmode = \"weekly\""), "sinks.team.mode").contains("immediate, digest"));
    assert!(rejects(&format!("{EMAIL}\ndigest_window_secs = 60"), "sinks.team.digest_window_secs").contains("digest"));
    assert!(
        rejects(&format!("{EMAIL}\nmode = \"digest\"\ndigest_window_secs = 0"), "sinks.team.digest_window_secs")
            .contains("at least 1")
    );
    assert!(rejects(&format!("{EMAIL}\ntls = \"none\""), "sinks.team.tls").contains("loopback"));
    let daily =
        rejects(&format!("{EMAIL}\nmode = \"digest\"\ndigest_window_secs = 86400"), "sinks.team.digest_window_secs");
    assert!(daily.contains("above 39600"), "{daily}");
    assert!(rejects(&format!("{EMAIL}\ntls = \"ssl\""), "sinks.team.tls").contains("starttls, tls, none"));
    assert!(
        rejects(&EMAIL.replace("from = \"sesroute@acme.test\"", "from = \"not an address\""), "sinks.team.from")
            .contains("not an email address")
    );
    assert!(rejects(&format!("{EMAIL}\ncc = [\"x@y\", \"@@\"]"), "sinks.team.cc[1]").contains("not an email address"));
    assert!(
        rejects(&EMAIL.replace("to = [\"Dev <dev@acme.test>\"]", "to = []"), "sinks.team.to")
            .contains("at least one recipient")
    );
    assert!(
        rejects(&format!("{EMAIL}\nsubject = \"{{{{ n.kind \""), "sinks.team.subject").contains("not a valid template")
    );
    let broken = temp_file(".j2", "{% for n in notifications %}");
    let template = rejects(&format!("{EMAIL}\ntext_template = {:?}", broken.path()), "sinks.team.text_template");
    assert!(template.contains("not a valid template"), "a template file that is here is compiled: {template}");
}

#[test]
fn an_smtp_password_comes_from_the_environment_or_a_file_never_the_config() {
    let inline = rejects(&format!("{EMAIL}\nusername = \"u\"\npassword = \"hunter2\""), "sinks.team.password");
    assert!(inline.contains("password_env"), "{inline}");
    let prefixed =
        rejects(&format!("{EMAIL}\nusername = \"u\"\npassword_env = \"SESROUTE_PASSWORD\""), "sinks.team.password_env");
    assert!(prefixed.contains("override config keys"), "{prefixed}");
    let set = check(
        &config(&format!("{EMAIL}\nusername = \"u\"\npassword_env = \"SMTP_PASSWORD_FOR_TEST\"")),
        &[("SMTP_PASSWORD_FOR_TEST", "hunter2")],
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(!set.stdout.contains("hunter2") && !set.stderr.contains("hunter2"), "the password is never printed");
    let file = temp_file(".txt", "s3cret\n");
    let from_file = check(&config(&format!("{EMAIL}\nusername = \"u\"\npassword_file = {:?}", file.path())), &[]);
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    let no_user = rejects(&format!("{EMAIL}\npassword_file = {:?}", file.path()), "sinks.team.username");
    assert!(no_user.contains("no username"), "{no_user}");
}

#[test]
fn webhook_mistakes_name_their_keys_and_the_summary_hides_the_url_path() {
    let hook = "type = \"webhook\"\nurl = \"https://hooks.slack.com/services/T000/B000/XXXX\"\nformat = \"slack\"";
    let run = check(&config(hook), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("https://hooks.slack.com/... (slack)"), "{}", run.stdout);
    assert!(!run.stdout.contains("XXXX"), "the token in the URL is not printed: {}", run.stdout);
    assert!(rejects(&hook.replace("slack\"", "teams\""), "sinks.team.format").contains("json, slack"));
    let bad_url = rejects(&hook.replace("https://", "ftp://"), "sinks.team.url");
    assert!(bad_url.contains("not an http(s) URL") && !bad_url.contains("XXXX"), "{bad_url}");
    assert!(
        rejects("type = \"s3\"\nbucket = \"abc\"\nbatch_max = 1000000", "sinks.team.batch_max")
            .contains("above 100000")
    );
    let both = format!("{hook}\nsecret = \"a\"\nsecret_env = \"B\"");
    assert!(rejects(&both, "sinks.team.secret").contains("only one of"));
}

#[test]
fn s3_mistakes_name_their_keys() {
    let s3 = "type = \"s3\"\nbucket = \"acme-ses-archive\"";
    let run = check(&config(s3), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("s3://acme-ses-archive/sesroute"), "{}", run.stdout);
    assert!(rejects("type = \"s3\"\nbucket = \"Acme_Archive\"", "sinks.team.bucket").contains("not an S3 bucket name"));
    assert!(rejects(&format!("{s3}\nbatch_max = 0"), "sinks.team.batch_max").contains("at least 1"));
    assert!(rejects(&format!("{s3}\nbatch_window_secs = 0"), "sinks.team.batch_window_secs").contains("at least 1"));
    assert!(rejects(&format!("{s3}\nbatch_window_secs = 86400"), "sinks.team.batch_window_secs").contains("12 hours"));
}

#[test]
fn max_per_minute_must_be_positive_on_any_sink() {
    assert!(rejects("type = \"log\"\nmax_per_minute = 0", "sinks.team.max_per_minute").contains("at least 1"));
    assert_eq!(check(&config("type = \"log\"\nmax_per_minute = 30"), &[]).code, 0);
}

#[test]
fn the_teams_example_sends_each_team_its_feedback_and_archives_everything() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/teams.example.toml");
    let checked = Run::of(sesroute().args(["check", "--config"]).arg(&path).env_remove("SMTP_PASSWORD"));
    assert_eq!(checked.code, 0, "check needs no secret: {}", checked.stderr);

    let body = |kind: &str, source: &str| {
        let payload = match kind {
            "Bounce" => {
                serde_json::json!({"bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "r@x.test"}]}})
            }
            "Complaint" => serde_json::json!({"complaint": {"complainedRecipients": [{"emailAddress": "r@x.test"}]}}),
            _ => serde_json::json!({"delivery": {"recipients": ["r@x.test"]}}),
        };
        let mut body = serde_json::json!({"notificationType": kind, "mail": {"source": source, "messageId": "m", "destination": ["r@x.test"]}});
        body.as_object_mut().expect("an object").extend(payload.as_object().expect("an object").clone());
        body.to_string()
    };
    let cases = [
        (body("Bounce", "app@dev.acme.example"), vec!["archive", "developers"]),
        (body("Complaint", "app@staging.acme.example"), vec!["archive", "qa-slack"]),
        (body("Bounce", "Offers <offers@news.acme.example>"), vec!["archive", "marketing"]),
        (body("Bounce", "orders@acme.example"), vec!["archive", "customer-service", "customer-service-topic"]),
        (body("Complaint", "orders@acme.example"), vec!["archive", "customer-service", "customer-service-topic"]),
        (body("Delivery", "orders@acme.example"), vec!["archive"]),
    ];
    let input: Vec<&str> = cases.iter().map(|(body, _)| body.as_str()).collect();
    let run = Run::of(
        sesroute().args(["route", "--config"]).arg(&path).env_remove("SMTP_PASSWORD").write_stdin(input.join("\n")),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(decisions.len(), cases.len());
    for ((body, expected), decision) in cases.iter().zip(&decisions) {
        let mut sinks: Vec<&str> =
            decision["sinks"].as_array().expect("sinks").iter().map(|s| s.as_str().expect("a name")).collect();
        sinks.sort_unstable();
        assert_eq!(&sinks, expected, "{body}");
    }
}

#[test]
fn the_readmes_classic_setup_is_a_valid_config() {
    let readme = crate::read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let section = readme.split("### The classic setup").nth(1).expect("the README has the classic setup");
    let toml = section.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    let run = check(toml, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "no warnings: {}", run.stderr);
    assert!(
        run.stdout.contains("production-problems      -> customer-service, customer-service-topic"),
        "{}",
        run.stdout
    );
}

/// Secrets and template files are read when the sinks open: a missing one
/// does not stop `run` (the other sinks flow; that sink's messages wait in
/// SQS and it is opened again on each delivery), but the log names the sink,
/// the key and what is missing, and so does `/readyz`.
#[test]
fn a_missing_secret_or_template_file_is_named_in_the_log_and_by_readyz_and_does_not_stop_run() {
    let cases = [
        (
            format!("{EMAIL}\nusername = \"u\"\npassword_env = \"NO_SUCH_SMTP_PASSWORD_VAR\""),
            "sinks.team: password_env: environment variable NO_SUCH_SMTP_PASSWORD_VAR is not set",
        ),
        (
            format!("{EMAIL}\nusername = \"u\"\npassword_file = \"/nonexistent/smtp-password\""),
            "sinks.team: password_file: cannot read /nonexistent/smtp-password",
        ),
        (
            format!("{EMAIL}\ntext_template = \"/nonexistent/digest.txt.j2\""),
            "sinks.team: text_template: cannot read /nonexistent/digest.txt.j2",
        ),
        (
            "type = \"webhook\"\nurl = \"https://example.test/hook\"\nsecret_env = \"NO_SUCH_WEBHOOK_KEY\"".to_owned(),
            "sinks.team: secret_env: environment variable NO_SUCH_WEBHOOK_KEY is not set",
        ),
    ];
    for (sink, expected) in cases {
        let toml = format!("[server]\nlisten = \"127.0.0.1:0\"\n{}", config(&sink));
        assert_eq!(check(&toml, &[]).code, 0, "check does not need it:\n{toml}");
        let file = temp_file(".toml", &toml);
        let mut daemon = std::process::Command::new(assert_cmd::cargo::cargo_bin("sesroute"))
            .args(["run", "--log-format", "json", "--config"])
            .arg(file.path())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("NO_SUCH_SMTP_PASSWORD_VAR")
            .env_remove("NO_SUCH_WEBHOOK_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sesroute run starts");
        let stdout = std::io::BufReader::new(daemon.stdout.take().expect("its stdout"));
        let mut named = false;
        let mut listen = None;
        for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
            named |= line.contains(expected);
            if let Some(address) = line.split("\"listen\":\"").nth(1).and_then(|rest| rest.split('"').next()) {
                listen = Some(address.to_owned());
            }
            if named && listen.is_some() {
                break;
            }
        }
        let listen = listen.expect("run serves /readyz");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut readyz = http_get(&listen, "/readyz");
        while !readyz.contains("sink team: ") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            readyz = http_get(&listen, "/readyz");
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert!(named, "the log names {expected}");
        assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
        assert!(
            readyz.contains("sink team: ") && readyz.contains(expected.trim_start_matches("sinks.team: ")),
            "{readyz}"
        );
    }
}

/// A plain HTTP/1.1 GET on loopback; the whole answer, status line first.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("the daemon listens");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("a request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    answer
}

#[test]
fn a_topic_or_queue_in_another_region_than_aws_region_is_warned_about() {
    let toml = |region: &str| {
        format!(
            r#"
[aws]
region = "{region}"

[[sources]]
name = "feedback"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/feedback"

[sinks.topic]
type = "sns"
topic_arn = "arn:aws:sns:eu-west-1:111122223333:feedback"

[sinks.queue]
type = "sqs"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/forwarded"

[sinks.old-style]
type = "sqs"
queue_url = "https://eu-west-1.queue.amazonaws.com/111122223333/forwarded"

[[routes]]
name = "everything"
sinks = ["topic", "queue", "old-style"]
"#
        )
    };
    let run = check(&toml("us-east-1"), &[]);
    assert_eq!(run.code, 0, "a warning, not an error: {}", run.stderr);
    for key in ["sinks.topic.topic_arn", "sinks.queue.queue_url", "sinks.old-style.queue_url"] {
        assert!(
            run.stderr.lines().any(|l| l.contains(key) && l.contains("region eu-west-1, not in aws.region us-east-1")),
            "{key}: {}",
            run.stderr
        );
    }
    let run = check(&toml("eu-west-1"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "no warnings in the same region: {}", run.stderr);
}
