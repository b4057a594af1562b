//! `sesroute route`'s input rules, exit statuses and output shape, from the
//! command line: files, JSON Lines, standard input, `--config`, `--queue`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::{Run, dir_with, read, samples, sesroute, temp_file};

/// A sample body re-serialized onto one line.
fn compact(file: &str) -> String {
    let text = read(&samples().join("bodies").join(file));
    serde_json::from_str::<Value>(&text).expect("a sample body is JSON").to_string()
}

/// `sesroute route --config CONFIG`, to be run in `dir`.
fn route_cmd(dir: &Path, config: &Path) -> assert_cmd::Command {
    let mut cmd = sesroute();
    cmd.current_dir(dir).arg("route").arg("--config").arg(config);
    cmd
}

/// `sesroute route --config <samples config> ARGS`, run in `dir`.
fn route_in(dir: &Path, args: &[&str]) -> Run {
    Run::of(route_cmd(dir, &samples().join("config.toml")).args(args))
}

fn inputs(decisions: &[Value]) -> Vec<&str> {
    decisions.iter().map(|d| d["input"].as_str().expect("every line has an input")).collect()
}

fn keys(decision: &Value) -> BTreeSet<&str> {
    decision.as_object().expect("a decision is an object").keys().map(String::as_str).collect()
}

#[test]
fn a_pretty_printed_document_is_one_body() {
    let file = "bodies/02-bounce-permanent-noemail-sns.json";
    let lines = read(&samples().join(file)).lines().count();
    assert!(lines > 1, "the fixture is pretty-printed over {lines} lines");
    let run = route_in(&samples(), &[file]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(inputs(&decisions), [format!("{file}:1")]);
    assert_eq!(decisions[0]["kind"], "bounce");
}

#[test]
fn json_lines_give_one_body_per_line_numbered_by_physical_line() {
    let jsonl = [
        compact("01-bounce-permanent-general-bare.json"),
        String::new(),
        "{not json".to_owned(),
        " \t".to_owned(),
        compact("34-setup-subscription-succeeded-sns.json"),
        String::new(),
        compact("21-event-complaint-payments-bare.json"),
    ]
    .join("\n");
    let dir = dir_with("feedback.jsonl", jsonl + "\n");
    let run = route_in(dir.path(), &["feedback.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(inputs(&decisions), ["feedback.jsonl:1", "feedback.jsonl:3", "feedback.jsonl:5", "feedback.jsonl:7"]);
    assert_eq!(decisions[0]["routes"], json!(["production-hard-bounces"]));
    // Neither an error nor an ignored body stops the run.
    assert!(decisions[1]["error"].is_string(), "{}", decisions[1]);
    assert!(decisions[2]["ignored"].is_string(), "{}", decisions[2]);
    assert_eq!(decisions[3]["routes"], json!(["payments", "production-complaints", "archive"]));
}

#[test]
fn standard_input_is_read_without_a_file_and_for_dash() {
    let jsonl =
        format!("{}\n\n{}\n", compact("05-delivery-bare.json"), compact("11-bounce-transient-general-dev-sns.json"));
    let pretty = read(&samples().join("bodies/14-bounce-display-name-qa-sns.json"));
    for args in [&[][..], &["-"][..]] {
        let run = Run::of(route_cmd(&samples(), &samples().join("config.toml")).args(args).write_stdin(jsonl.clone()));
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let decisions = run.decisions();
        assert_eq!(inputs(&decisions), ["-:1", "-:3"], "{args:?}");
        assert_eq!(decisions[1]["routes"], json!(["dev"]));

        let run = Run::of(route_cmd(&samples(), &samples().join("config.toml")).args(args).write_stdin(pretty.clone()));
        assert_eq!(inputs(&run.decisions()), ["-:1"], "{args:?}");
    }
}

#[test]
fn an_empty_file_is_one_error() {
    let dir = dir_with("empty.json", "");
    let run = route_in(dir.path(), &["empty.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(inputs(&decisions), ["empty.json:1"]);
    assert!(decisions[0]["error"].is_string(), "{}", decisions[0]);
}

#[test]
fn an_unreadable_file_exits_1_and_the_other_files_are_still_routed() {
    let run = route_in(
        &samples(),
        &["bodies/01-bounce-permanent-general-bare.json", "bodies/no-such-file.json", "bodies/05-delivery-bare.json"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no-such-file.json"), "{}", run.stderr);
    assert_eq!(
        inputs(&run.decisions()),
        ["bodies/01-bounce-permanent-general-bare.json:1", "bodies/05-delivery-bare.json:1"]
    );
}

#[test]
fn an_invalid_config_exits_2_before_any_body() {
    let config = temp_file(
        ".toml",
        r#"
[sinks.archive]
type = "log"

[[routes]]
name = "all"
sinks = ["ops"]
"#,
    );
    let run = Run::of(route_cmd(&samples(), config.path()).arg("bodies/05-delivery-bare.json"));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("routes[0].sinks[0]"), "{}", run.stderr);
}

#[test]
fn config_is_taken_before_or_after_the_command_name() {
    let body = "bodies/03-complaint-abuse-bare.json";
    let after = route_in(&samples(), &[body]);
    let before = Run::of(sesroute().current_dir(samples()).args(["--config", "config.toml", "route", body]));
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert_eq!(before.decisions(), after.decisions());
    assert_eq!(before.decisions()[0]["sinks"], json!(["support", "archive"]));
}

#[test]
fn sesroute_config_names_the_config_when_no_flag_does() {
    let body = "bodies/15-delivery-uppercase-domain-dev-bare.json";
    let from_env =
        Run::of(sesroute().current_dir(samples()).env("SESROUTE_CONFIG", "config.toml").args(["route", body]));
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
    assert_eq!(from_env.decisions()[0]["routes"], json!(["dev"]));

    let flag_wins = Run::of(sesroute().current_dir(samples()).env("SESROUTE_CONFIG", "no-such-config.toml").args([
        "route",
        "--config",
        "config.toml",
        body,
    ]));
    assert_eq!(flag_wins.code, 0, "{}", flag_wins.stderr);
    assert_eq!(flag_wins.decisions(), from_env.decisions());
}

#[test]
fn queue_names_the_source_for_the_queue_matcher() {
    let config = temp_file(
        ".toml",
        r#"
[[sources]]
name = "feedback"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/feedback"

[[sources]]
name = "events"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/events"

[sinks.events]
type = "log"

[sinks.rest]
type = "log"

[[routes]]
name = "events"
sinks = ["events"]
[routes.match]
queue = ["events"]

[[routes]]
name = "rest"
sinks = ["rest"]
"#,
    );
    let route = |queue: &[&str]| {
        let run =
            Run::of(route_cmd(&samples(), config.path()).args(queue).arg("bodies/18-event-send-payments-sns.json"));
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.decisions()[0]["routes"].clone()
    };
    assert_eq!(route(&["--queue", "events"]), json!(["events"]));
    assert_eq!(route(&["--queue", "EVENTS"]), json!(["events"]));
    assert_eq!(route(&["--queue", "feedback"]), json!(["rest"]));
    assert_eq!(route(&[]), json!(["rest"]));
}

#[test]
fn each_line_has_exactly_the_contract_keys() {
    let run = route_in(
        &samples(),
        &[
            "bodies/20-event-bounce-permanent-payments-sns.json",
            "bodies/36-sns-subscription-confirmation.json",
            "bodies/41-malformed-not-ses.json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    let decisions = run.decisions();
    assert_eq!(
        keys(&decisions[0]),
        BTreeSet::from(["input", "kind", "source", "message_id", "bounce_class", "routes", "sinks"])
    );
    assert!(
        run.stdout.contains("-000000\",\"bounce_class\":\"hard\",\"routes\":"),
        "bounce_class comes after message_id: {}",
        run.stdout
    );
    assert_eq!(keys(&decisions[1]), BTreeSet::from(["input", "ignored"]));
    assert_eq!(keys(&decisions[2]), BTreeSet::from(["input", "error"]));
    assert_eq!(
        decisions[0],
        json!({
            "input": "bodies/20-event-bounce-permanent-payments-sns.json:1",
            "kind": "bounce",
            "source": "billing@acme.test",
            "message_id": "01020199e1ce451e-712e3f28-a8b7-4e3e-b223-8029d1bff500-000000",
            "bounce_class": "hard",
            "routes": ["payments", "production-hard-bounces"],
            "sinks": ["payments", "support"],
        })
    );
}

#[test]
fn a_line_that_is_not_utf8_is_an_error_line() {
    let mut jsonl = compact("05-delivery-bare.json").into_bytes();
    jsonl.extend_from_slice(b"\n{\"notificationType\":\"Bounce\xff\xfe\"}\n");
    jsonl.extend_from_slice(compact("06-delivery-sns.json").as_bytes());
    let dir = dir_with("mixed.jsonl", jsonl);
    let run = route_in(dir.path(), &["mixed.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.decisions();
    assert_eq!(inputs(&decisions), ["mixed.jsonl:1", "mixed.jsonl:2", "mixed.jsonl:3"]);
    assert_eq!(decisions[0]["kind"], "delivery");
    assert!(decisions[1]["error"].is_string(), "{}", decisions[1]);
    assert_eq!(decisions[2]["kind"], "delivery");
}

#[test]
fn help_and_version_exit_0() {
    let help = Run::of(sesroute().arg("--help"));
    assert_eq!(help.code, 0, "{}", help.stderr);
    for command in ["run", "check", "route"] {
        assert!(help.stdout.contains(command), "{}", help.stdout);
    }
    let route_help = Run::of(sesroute().args(["route", "--help"]));
    assert_eq!(route_help.code, 0, "{}", route_help.stderr);
    assert!(route_help.stdout.contains("--queue"), "{}", route_help.stdout);

    let version = Run::of(sesroute().arg("--version"));
    assert_eq!(version.code, 0, "{}", version.stderr);
    assert!(version.stdout.contains(env!("CARGO_PKG_VERSION")), "{}", version.stdout);
}

/// Every bounce gets its class, in each body form; no other kind has one.
#[test]
fn bounces_and_only_bounces_have_a_bounce_class() {
    let dir = dir_with("c.toml", "[[routes]]\nname = \"all\"\nsinks = [\"a\"]\n[sinks.a]\ntype = \"log\"\n");
    let config = dir.path().join("c.toml");
    let record = |bounce_type: &str, subtype: &str, recipient: &str| {
        format!(
            r#"{{"notificationType":"Bounce","mail":{{"source":"a@x.test","messageId":"m"}},"bounce":{{"bounceType":"{bounce_type}","bounceSubType":"{subtype}","bouncedRecipients":[{recipient}]}}}}"#
        )
    };
    let sns = |record: &str| json!({"Type": "Notification", "MessageId": "s", "Message": record}).to_string();
    let eventbridge = |record: &str| {
        let mut detail: Value = serde_json::from_str(&record.replace("notificationType", "eventType")).unwrap();
        detail["mail"]["destination"] = json!(["r@y.test"]);
        json!({"source": "aws.ses", "detail-type": "Email Bounced", "detail": detail}).to_string()
    };
    let dead = record("Transient", "General", r#"{"emailAddress":"r@y.test","diagnosticCode":"smtp; 550 5.1.1 no"}"#);
    let malformed =
        record("Transient", "General", r#"{"emailAddress":"r@y.test","status":"5.1","diagnosticCode":"550 5.4.4 x"}"#);
    let full = record("Transient", "MailboxFull", r#"{"emailAddress":"r@y.test","status":"4.2.2"}"#);
    let suppressed = record("Permanent", "OnAccountSuppressionList", r#"{"emailAddress":"r@y.test"}"#);
    let unknown = record("Undetermined", "Undetermined", r#"{"emailAddress":"r@y.test","status":"5.0.0"}"#);
    let delivery = r#"{"notificationType":"Delivery","mail":{"source":"a@x.test","messageId":"d"},"delivery":{"recipients":["r@y.test"]}}"#;
    let bodies = [
        dead.clone(),
        sns(&dead),
        eventbridge(&dead),
        malformed,
        sns(&full),
        eventbridge(&suppressed),
        unknown,
        delivery.to_owned(),
    ];
    let file = temp_file(".jsonl", bodies.join("\n"));
    let run = Run::of(route_cmd(dir.path(), &config).arg(file.path()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let classes: Vec<Value> = run.decisions().iter().map(|d| d["bounce_class"].clone()).collect();
    assert_eq!(
        classes,
        [
            json!("hard"),
            json!("hard"),
            json!("hard"),
            json!("hard"),
            json!("soft"),
            json!("suppressed"),
            json!("undetermined"),
            Value::Null
        ],
        "{}",
        run.stdout
    );
    assert!(!keys(&run.decisions()[7]).contains("bounce_class"));
}
