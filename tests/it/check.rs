//! `sesroute check`: every broken config exits 2 with an error naming its key
//! path; suspicious but valid configs exit 0 with a warning.

use std::path::Path;

use crate::{Run, sesroute, temp_file};

/// A source and two sinks, as in the contract's example error message. The
/// archive's directory does not exist: `check` must not need it to.
const BASE: &str = r#"
[[sources]]
name = "feedback"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/feedback"

[sinks.archive]
type = "file"
path = "/nonexistent-sesroute-test-dir/sub/archive.jsonl"

[sinks.dev-team]
type = "log"
"#;

/// A catch-all route that uses both sinks: with [`BASE`], a config without warnings.
const CATCH_ALL: &str = r#"
[[routes]]
name = "everything"
sinks = ["archive", "dev-team"]
"#;

/// [`BASE`], then `toml` (routes, sinks), then [`CATCH_ALL`].
fn before_catch_all(toml: &str) -> String {
    format!("{BASE}{toml}{CATCH_ALL}")
}

/// [`BASE`], then [`CATCH_ALL`], then `toml`.
fn after_catch_all(toml: &str) -> String {
    format!("{BASE}{CATCH_ALL}{toml}")
}

/// `sesroute check` on a file holding `toml`, with extra environment variables.
fn check_with_env(toml: &str, env: &[(&str, &str)]) -> Run {
    let config = temp_file(".toml", toml);
    Run::of(sesroute().args(["check", "--config"]).arg(config.path()).envs(env.iter().copied()))
}

fn check(toml: &str) -> Run {
    check_with_env(toml, &[])
}

/// Asserts that `toml` is invalid because of `key`, and gives the reason.
fn rejects(toml: &str, key: &str) -> String {
    check(toml).reason_for(key)
}

/// Asserts that `toml` is valid and warns with a line that contains every one of `words`.
fn warns(toml: &str, words: &[&str]) {
    let run = check(toml);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings = run.stderr_lines("warning: ");
    assert!(
        warnings.iter().any(|line| words.iter().all(|word| line.contains(word))),
        "no warning with {words:?}:\n{}",
        run.stderr
    );
}

#[test]
fn the_base_config_is_valid_and_quiet() {
    let run = check(&before_catch_all(""));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(run.stdout.contains("everything"), "{}", run.stdout);
}

#[test]
fn an_unknown_sink_names_the_route_and_the_defined_sinks() {
    let toml = before_catch_all(
        r#"
[[routes]]
name = "bounces"
sinks = ["archive"]
[routes.match]
kind = ["bounce"]

[[routes]]
name = "dev"
sinks = ["dev-team"]
[routes.match]
source = ["*@dev.example.com"]

[[routes]]
name = "ops"
sinks = ["ops"]
[routes.match]
kind = ["complaint"]
"#,
    );
    let run = check(&toml);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let exact = r#"routes[2].sinks[0]: unknown sink "ops" (defined: archive, dev-team)"#;
    assert!(run.stderr_lines("error: ").contains(&exact), "{}", run.stderr);
}

#[test]
fn an_unknown_top_level_key_is_an_error() {
    rejects(&format!("colour = \"blue\"\n{}", before_catch_all("")), "colour");
}

#[test]
fn an_unknown_key_in_a_match_table_is_an_error() {
    let toml = before_catch_all(
        r#"
[[routes]]
name = "billing"
sinks = ["archive"]
[routes.match]
sender = ["billing@acme.test"]
"#,
    );
    rejects(&toml, "routes[0].match.sender");
}

#[test]
fn an_unknown_key_named_like_its_table_is_named_at_its_own_path() {
    let toml = before_catch_all(
        r#"
[[routes]]
name = "billing"
sinks = ["archive"]
[routes.match]
match = ["billing@acme.test"]
"#,
    );
    rejects(&toml, "routes[0].match.match");
}

#[test]
fn match_issues_are_listed_in_the_order_of_the_keys_whatever_the_order_written() {
    let toml = before_catch_all(
        r#"
[[routes]]
name = "billing"
sinks = ["archive"]
[routes.match]
topic = []
source = []
"#,
    );
    let run = check(&toml);
    let errors = run.stderr_lines("error: ");
    let at =
        |key: &str| errors.iter().position(|line| line.contains(key)).unwrap_or_else(|| panic!("{key}: {errors:?}"));
    assert!(at("routes[0].match.source") < at("routes[0].match.topic"), "{errors:?}");
}

#[test]
fn an_unknown_key_in_a_sink_is_an_error() {
    let toml = before_catch_all(
        r#"
[sinks.pager]
type = "log"
colour = "red"
"#,
    );
    rejects(&toml, "sinks.pager.colour");
}

#[test]
fn an_unknown_sink_type_is_an_error() {
    let toml = before_catch_all(
        r#"
[sinks.pager]
type = "pigeon"
"#,
    );
    let reason = rejects(&toml, "sinks.pager.type");
    assert!(reason.contains("pigeon"), "{reason}");
}

#[test]
fn a_duplicate_route_name_is_an_error() {
    let toml = after_catch_all(
        r#"
[[routes]]
name = "everything"
sinks = ["archive"]
"#,
    );
    let reason = rejects(&toml, "routes[1].name");
    assert!(reason.contains("everything"), "{reason}");
}

#[test]
fn an_empty_sinks_list_is_an_error() {
    let toml = before_catch_all(
        r#"
[[routes]]
name = "nowhere"
sinks = []
"#,
    );
    rejects(&toml, "routes[0].sinks");
}

#[test]
fn a_route_without_name_is_an_error() {
    let toml = before_catch_all(
        r#"
[[routes]]
sinks = ["archive"]
"#,
    );
    rejects(&toml, "routes[0].name");
}

#[test]
fn a_kind_pattern_that_matches_no_kind_is_an_error() {
    let toml = before_catch_all(
        r#"
[[routes]]
name = "bounces"
sinks = ["archive"]
[routes.match]
kind = ["bounce", "bounced"]
"#,
    );
    let reason = rejects(&toml, "routes[0].match.kind[1]");
    assert!(reason.contains("bounced"), "{reason}");
}

#[test]
fn an_empty_pattern_list_is_an_error() {
    let toml = before_catch_all(
        r#"
[[routes]]
name = "nobody"
sinks = ["archive"]
[routes.match]
recipient = []
"#,
    );
    rejects(&toml, "routes[0].match.recipient");
}

#[test]
fn a_wait_time_above_20_seconds_is_an_error() {
    let events = |wait_time_secs: u32| {
        before_catch_all(&format!(
            r#"
[[sources]]
name = "events"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/events"
wait_time_secs = {wait_time_secs}
"#
        ))
    };
    rejects(&events(21), "sources[1].wait_time_secs");
    assert_eq!(check(&events(20)).code, 0);
}

#[test]
fn a_toml_syntax_error_names_the_line() {
    let run = check("[aws]\nregion = \"eu-west-1\"\nendpoint_url = \n");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("line 3"), "{}", run.stderr);
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let run = Run::of(sesroute().args(["check", "--config"]).arg(&path));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("absent.toml"), "{}", run.stderr);
}

#[test]
fn a_last_route_with_a_match_warns_of_unrouted_notifications() {
    let toml = format!(
        r#"{BASE}
[[routes]]
name = "everything"
sinks = ["archive", "dev-team"]
continue = true

[[routes]]
name = "late-bounces"
sinks = ["archive"]
[routes.match]
kind = ["bounce"]
"#
    );
    warns(&toml, &["routes[1]", "late-bounces"]);
}

#[test]
fn a_route_after_a_catch_all_that_does_not_continue_can_never_match() {
    let toml = after_catch_all(
        r#"
[[routes]]
name = "shadowed"
sinks = ["archive"]
"#,
    );
    warns(&toml, &["routes[1]", "shadowed", "can never match"]);
}

#[test]
fn a_sink_no_route_uses_is_a_warning() {
    let toml = before_catch_all(
        r#"
[sinks.unused]
type = "log"
"#,
    );
    warns(&toml, &["sinks.unused"]);
}

#[test]
fn a_file_sink_path_need_not_exist() {
    let dir = Path::new("/nonexistent-sesroute-test-dir");
    assert!(!dir.exists());
    let run = check(&before_catch_all(""));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!dir.exists(), "check created the sink's directory");
}

#[test]
fn environment_variables_override_config_keys() {
    let toml = before_catch_all("");
    let region = check_with_env(&toml, &[("SESROUTE_AWS__REGION", "eu-central-1")]);
    assert_eq!(region.code, 0, "{}", region.stderr);
    // The override reaches the key: a bad value is reported at its path.
    let listen = check_with_env(&toml, &[("SESROUTE_SERVER__LISTEN", "not-an-address")]);
    assert_eq!(listen.code, 2, "{}", listen.stderr);
    assert!(listen.stderr.contains("server.listen"), "{}", listen.stderr);
}

#[test]
fn an_unknown_environment_override_is_an_error_naming_the_variable() {
    let run = check_with_env(&before_catch_all(""), &[("SESROUTE_FOO", "1")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr_lines("error: ").iter().any(|line| line.contains("SESROUTE_FOO")), "{}", run.stderr);
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sesroute.example.toml");
    let run = Run::of(sesroute().args(["check", "--config"]).arg(&path));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The config blocks of CONTRACT.md exactly as written there, comments included,
/// with the `dev-team` sink the routing example refers to.
const CONTRACT_EXAMPLE: &str = r#"
[aws]
region = "us-east-1"
# endpoint_url = "http://127.0.0.1:4566"    # optional: a local emulator

[server]
listen = "0.0.0.0:9090"                     # /healthz, /readyz, /metrics

[[sources]]
name = "bounces"                            # unique; the `queue` matcher uses it
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/ses-bounces"
receivers = 4                               # concurrent long-poll loops on this queue
# further per-queue settings (wait and visibility times, ...) are yours to add

[sinks.archive]                             # one table per sink; the key is its name
type = "file"                               # file | log | sns | sqs | email | webhook | s3 ...
path = "/var/lib/sesroute/archive.jsonl"    # file sink: JSON Lines, one delivered notification a line

[sinks.dev-team]
type = "log"

[[routes]]
name = "dev"                 # required, unique
sinks = ["dev-team"]         # required, non-empty, each defined under [sinks]
continue = false             # optional, default false

[routes.match]               # optional; a route without it matches everything
source = ["*@dev.example.com", "*@*.dev.example.com"]
kind = ["bounce", "complaint"]
bounce_type = ["Permanent"]
bounce_subtype = ["General", "NoEmail"]
complaint_type = ["abuse"]                      # complaint.complaintFeedbackType
identity = ["arn:aws:ses:*:*:identity/example.com"]   # mail.sourceArn
configuration_set = ["marketing-*"]             # mail.tags["ses:configuration-set"]
recipient = ["*@corp.example.org"]
queue = ["bounces"]                             # the [[sources]] name it arrived on
topic = ["arn:aws:sns:*:*:ses-bounces"]         # the SNS TopicArn, when enveloped

[routes.match.tags]                             # mail.tags: name -> patterns
team = ["payments"]

[[routes]]
name = "archive"
sinks = ["archive"]
"#;

#[test]
fn the_contract_example_config_is_accepted_as_written() {
    let run = check(CONTRACT_EXAMPLE);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn the_summary_lists_sources_sinks_and_routes_in_config_order() {
    let toml = r#"
[[sources]]
name = "queue-one"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/one"

[sinks.sink-kilo]
type = "log"

[[routes]]
name = "route-zulu"
sinks = ["sink-kilo"]
continue = true

[[routes]]
name = "route-alpha"
sinks = ["sink-kilo"]
continue = true
[routes.match]
kind = ["bounce"]

[[routes]]
name = "route-mike"
sinks = ["sink-kilo"]
"#;
    let run = check(toml);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let at = |name: &str| run.stdout.find(name).unwrap_or_else(|| panic!("{name} missing:\n{}", run.stdout));
    assert!(at("queue-one") < at("sink-kilo"), "{}", run.stdout);
    assert!(at("sink-kilo") < at("route-zulu"), "{}", run.stdout);
    assert!(at("route-zulu") < at("route-alpha") && at("route-alpha") < at("route-mike"), "{}", run.stdout);
}

#[test]
fn a_visibility_timeout_too_short_to_extend_is_an_error() {
    for secs in [0, 4] {
        let toml = before_catch_all("")
            .replace("name = \"feedback\"\n", &format!("name = \"feedback\"\nvisibility_timeout_secs = {secs}\n"));
        let reason = rejects(&toml, "sources[0].visibility_timeout_secs");
        assert!(reason.contains("at least 5"), "{reason}");
    }
    let toml =
        before_catch_all("").replace("name = \"feedback\"\n", "name = \"feedback\"\nvisibility_timeout_secs = 5\n");
    assert_eq!(check(&toml).code, 0);
}

#[test]
fn two_file_sinks_on_one_path_are_an_error() {
    let toml = before_catch_all(
        "\n[sinks.copy]\ntype = \"file\"\npath = \"/nonexistent-sesroute-test-dir/sub/./archive.jsonl\"\n",
    );
    let reason = rejects(&toml, "sinks.copy.path");
    assert!(reason.contains("sinks.archive"), "{reason}");
}

/// A config with one verifying and one raw source, the certificate pinned.
const SIGNED: &str = r#"
dead_letter = "archive"

[sns]
fetch_certs = false
signing_certs = { "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem" = "/nonexistent-sesroute-test-dir/sns.pem" }

[[sources]]
name = "feedback"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/feedback"
signature = "require"
topics = ["arn:aws:sns:eu-west-1:111122223333:ses-*", "arn:aws:sns:eu-west-1:111122223333:marketing"]
accounts = ["111122223333"]

[[sources]]
name = "events"
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/events"

[sinks.archive]
type = "log"

[[routes]]
name = "everything"
sinks = ["archive"]
"#;

#[test]
fn the_summary_shows_each_sources_signature_mode_allow_lists_and_certificates() {
    // The pinned file does not exist: `check` neither reads it nor fetches anything.
    let run = check(SIGNED);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().map(str::trim).collect();
    assert!(
        lines.contains(
            &"signature: require, topics: arn:aws:sns:eu-west-1:111122223333:ses-* | arn:aws:sns:eu-west-1:111122223333:marketing, accounts: 111122223333"
        ),
        "{}",
        run.stdout
    );
    assert!(lines.contains(&"signature: off"), "{}", run.stdout);
    assert!(lines.contains(&"signing certificates: 1 pinned, nothing fetched"), "{}", run.stdout);
}

#[test]
fn signature_keys_are_validated_with_their_path() {
    let mode = SIGNED.replace("signature = \"require\"", "signature = \"strict\"");
    assert!(check(&mode).stderr.contains("sources[0].signature"), "{}", check(&mode).stderr);
    let account = SIGNED.replace("accounts = [\"111122223333\"]", "accounts = [\"1111-2222-3333\"]");
    assert!(rejects(&account, "sources[0].accounts[0]").contains("12-digit"));
    for url in [
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-0123abcd.pem",
        "https://s3.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.eu-west-1.amazonaws.com/other/SimpleNotificationService-0123abcd.pem",
    ] {
        let pinned = SIGNED.replace("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem", url);
        let reason = rejects(&pinned, &format!("sns.signing_certs.{url:?}"));
        assert!(reason.contains("not an SNS certificate URL"), "{url}: {reason}");
    }
}

#[test]
fn topics_without_verification_and_verification_without_a_dead_letter_warn() {
    let off = SIGNED.replace("signature = \"require\"", "signature = \"off\"");
    warns(&off, &["sources[0].topics", "no effect", "forged"]);
    let no_dead_letter = SIGNED.replace("dead_letter = \"archive\"", "");
    warns(&no_dead_letter, &["sources[0]", "verifies signatures", "no dead_letter"]);
}

#[test]
fn bounce_class_is_accepted_summarised_and_a_misspelled_class_is_an_error() {
    let config = |classes: &str| {
        format!(
            "[sinks.a]\ntype = \"log\"\n[[routes]]\nname = \"dead\"\nsinks = [\"a\"]\n[routes.match]\nkind = [\"bounce\"]\nbounce_class = {classes}\n[[routes]]\nname = \"all\"\nsinks = [\"a\"]\n"
        )
    };
    let run = check(&config(r#"["hard", "Suppressed", "s*"]"#));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("match: kind=bounce bounce_class=hard|Suppressed|s*"), "{}", run.stdout);
    let run = check(&config(r#"["hard", "supressed", "dead"]"#));
    assert_eq!(run.code, 2, "{}", run.stdout);
    for (at, value) in [(1, "supressed"), (2, "dead")] {
        assert!(
            run.stderr.contains(&format!(
                "routes[0].match.bounce_class[{at}]: \"{value}\" matches no bounce class (known: hard, suppressed, soft, undetermined)"
            )),
            "{}",
            run.stderr
        );
    }
}
