//! From [`RawConfig`] to [`Config`]: cross-checks, defaults, compiled matchers.
//!
//! Defaults live here, in one place. Problems are collected, not returned at
//! the first one, so that `check` shows everything that needs fixing.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use super::raw::{RawConfig, RawEmailSink, RawMatch, RawRoute, RawS3Sink, RawSink, RawSource, RawWebhookSink};
use super::{
    Aws, Config, Email, EmailMode, Issue, S3, Secret, SecretSource, Sink, SinkKind, Source, Tls, Webhook, WebhookFormat,
};
use crate::notification::Kind;
use crate::route::{KindSet, Matcher, Patterns, Route, Router, SinkId};

const DEFAULT_LISTEN: &str = "0.0.0.0:9090";
const DEFAULT_RECEIVERS: u32 = 4;
const DEFAULT_WAIT_TIME_SECS: u32 = 20;
const MESSAGES_PER_RECEIVE: u32 = 10;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 25;
const DEFAULT_DIGEST_WINDOW_SECS: u64 = 3600;
const DEFAULT_DIGEST_MAX: u32 = 100;
const DEFAULT_SMTP_TIMEOUT_SECS: u64 = 30;
const DEFAULT_WEBHOOK_TIMEOUT_SECS: u64 = 10;
const DEFAULT_S3_PREFIX: &str = "sesroute";
const DEFAULT_S3_BATCH_MAX: u64 = 1000;
const DEFAULT_S3_BATCH_WINDOW_SECS: u64 = 60;
const MAX_S3_BATCH_MAX: u64 = 100_000;
/// SQS's own limits.
const MAX_WAIT_TIME_SECS: u32 = 20;
const MAX_VISIBILITY_TIMEOUT_SECS: u32 = 43_200;

struct Issues(Vec<Issue>);

impl Issues {
    fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Issue { key: key.into(), reason: reason.into() });
    }
}

/// Checks `raw` and builds the runtime config, or lists every problem found.
pub fn validate(raw: RawConfig) -> Result<Config, Vec<Issue>> {
    let mut issues = Issues(Vec::new());

    let listen = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen.parse::<SocketAddr>().unwrap_or_else(|_| {
        issues.push("server.listen", format!("{listen:?} is not an IP address and port, such as \"0.0.0.0:9090\""));
        SocketAddr::from(([0, 0, 0, 0], 9090))
    });
    if let Some(url) = &raw.aws.endpoint_url {
        check_url(&mut issues, "aws.endpoint_url", url);
    }
    if raw.aws.region.as_deref() == Some("") {
        issues.push("aws.region", "is empty");
    }

    let sources = sources(&mut issues, raw.sources);
    let sinks = sinks(&mut issues, raw.sinks);
    let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
    let routes: Vec<Route> =
        raw.routes.into_iter().enumerate().map(|(i, route)| self::route(&mut issues, i, route, &names)).collect();
    let mut seen = HashSet::new();
    for (i, route) in routes.iter().enumerate() {
        if !route.name.is_empty() && !seen.insert(route.name.as_str()) {
            issues.push(format!("routes[{i}].name"), format!("duplicate route name {:?}", route.name));
        }
    }
    let dead_letter = raw.dead_letter.as_deref().and_then(|name| sink_id(&mut issues, "dead_letter", name, &names));
    let max_held_bytes = max_held_bytes(&mut issues, raw.runtime.max_held_mib);

    if !issues.0.is_empty() {
        return Err(issues.0);
    }
    let mut warnings = warnings(&sources, &sinks, &routes, dead_letter);
    warnings.extend(region_warnings(raw.aws.region.as_deref(), &sinks));
    Ok(Config {
        aws: Aws { region: raw.aws.region, endpoint_url: raw.aws.endpoint_url },
        listen,
        sources,
        sinks,
        router: Router::new(routes),
        dead_letter,
        shutdown_grace: Duration::from_secs(raw.runtime.shutdown_grace_secs.unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS)),
        max_held_bytes,
        warnings,
    })
}

fn check_url(issues: &mut Issues, key: &str, url: &str) {
    if !is_http_url(url) {
        issues.push(key, format!("{url:?} is not an http(s) URL"));
    }
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://")) && url.len() > "https://".len()
}

fn sources(issues: &mut Issues, raw: Vec<RawSource>) -> Vec<Source> {
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, s)| {
            let key = format!("sources[{i}]");
            if s.name.trim().is_empty() {
                issues.push(format!("{key}.name"), "is empty");
            } else if !seen.insert(s.name.clone()) {
                issues.push(format!("{key}.name"), format!("duplicate source name {:?}", s.name));
            }
            check_url(issues, &format!("{key}.queue_url"), &s.queue_url);
            let receivers = s.receivers.unwrap_or(DEFAULT_RECEIVERS);
            if receivers == 0 {
                issues.push(format!("{key}.receivers"), "must be at least 1");
            }
            let wait_time_secs = s.wait_time_secs.unwrap_or(DEFAULT_WAIT_TIME_SECS);
            if wait_time_secs > MAX_WAIT_TIME_SECS {
                issues.push(format!("{key}.wait_time_secs"), format!("{wait_time_secs} is above SQS's maximum of 20"));
            }
            if let Some(v) = s.visibility_timeout_secs.filter(|v| *v < super::MIN_VISIBILITY_TIMEOUT_SECS) {
                issues.push(
                    format!("{key}.visibility_timeout_secs"),
                    format!(
                        "{v} is too short: at least {} (a message's visibility is extended at half of it while its sinks work)",
                        super::MIN_VISIBILITY_TIMEOUT_SECS
                    ),
                );
            }
            if let Some(v) = s.visibility_timeout_secs.filter(|v| *v > MAX_VISIBILITY_TIMEOUT_SECS) {
                issues.push(format!("{key}.visibility_timeout_secs"), format!("{v} is above SQS's maximum of 43200"));
            }
            let max_in_flight = s.max_in_flight.unwrap_or(receivers.max(1) * MESSAGES_PER_RECEIVE);
            if max_in_flight == 0 {
                issues.push(format!("{key}.max_in_flight"), "must be at least 1");
            }
            Source {
                name: s.name,
                queue_url: s.queue_url,
                receivers,
                wait_time_secs,
                visibility_timeout_secs: s.visibility_timeout_secs,
                max_in_flight,
            }
        })
        .collect()
}

fn sinks(issues: &mut Issues, raw: BTreeMap<String, RawSink>) -> Vec<Sink> {
    let sinks: Vec<Sink> = raw
        .into_iter()
        .map(|(name, sink)| {
            let key = format!("sinks.{name}");
            if name.trim().is_empty() {
                issues.push("sinks", "a sink name is empty");
            }
            let max_per_minute = sink.max_per_minute().and_then(|n| {
                let limit = NonZeroU32::new(n);
                if limit.is_none() {
                    issues.push(format!("{key}.max_per_minute"), "must be at least 1 (leave it out for no limit)");
                }
                limit
            });
            let kind = match sink {
                RawSink::File(f) => {
                    if f.path.as_os_str().is_empty() {
                        issues.push(format!("{key}.path"), "is empty");
                    }
                    SinkKind::File { path: f.path, fsync: f.fsync }
                }
                RawSink::Log(l) => {
                    let level = l.level.as_deref().unwrap_or("info");
                    let level = match level.to_ascii_lowercase().as_str() {
                        "error" => tracing::Level::ERROR,
                        "warn" => tracing::Level::WARN,
                        "info" => tracing::Level::INFO,
                        "debug" => tracing::Level::DEBUG,
                        _ => {
                            issues.push(
                                format!("{key}.level"),
                                format!("{level:?} is not one of error, warn, info, debug"),
                            );
                            tracing::Level::INFO
                        }
                    };
                    SinkKind::Log { level }
                }
                RawSink::Sns(s) => {
                    if !(s.topic_arn.starts_with("arn:") && s.topic_arn.split(':').nth(2) == Some("sns")) {
                        issues.push(format!("{key}.topic_arn"), format!("{:?} is not an SNS topic ARN", s.topic_arn));
                    }
                    if let Some(subject) = &s.subject {
                        check_subject(issues, &format!("{key}.subject"), subject);
                    }
                    SinkKind::Sns { topic_arn: s.topic_arn, subject: s.subject }
                }
                RawSink::Sqs(q) => {
                    check_url(issues, &format!("{key}.queue_url"), &q.queue_url);
                    SinkKind::Sqs { queue_url: q.queue_url }
                }
                RawSink::Email(e) => SinkKind::Email(Box::new(email(issues, &key, *e))),
                RawSink::Webhook(w) => SinkKind::Webhook(webhook(issues, &key, w)),
                RawSink::S3(b) => SinkKind::S3(s3(issues, &key, b)),
            };
            Sink { name, kind, max_per_minute }
        })
        .collect();
    one_file_sink_per_path(issues, &sinks);
    sinks
}

/// The memory messages waiting for a batch may take: 32 MiB by default,
/// which leaves a 128 MiB container ample room for everything else.
fn max_held_bytes(issues: &mut Issues, mib: Option<u32>) -> usize {
    const DEFAULT_MAX_HELD_MIB: u32 = 32;
    let mib = mib.unwrap_or(DEFAULT_MAX_HELD_MIB);
    if mib == 0 {
        issues.push("runtime.max_held_mib", "must be at least 1");
    }
    usize::try_from(mib.max(1)).unwrap_or(usize::MAX).saturating_mul(1024 * 1024)
}

/// Two file sinks appending to one file would each see the other's lines as
/// their own (and their locks would not keep lines apart).
fn one_file_sink_per_path(issues: &mut Issues, sinks: &[Sink]) {
    let mut seen: Vec<(&str, Vec<std::path::Component<'_>>)> = Vec::new();
    for sink in sinks {
        let SinkKind::File { path, .. } = &sink.kind else { continue };
        let components: Vec<_> = path.components().collect();
        match seen.iter().find(|(_, other)| *other == components) {
            Some((first, _)) => issues.push(
                format!("sinks.{}.path", sink.name),
                format!("{} is also the path of sinks.{first}: each file sink needs a file of its own", path.display()),
            ),
            None => seen.push((&sink.name, components)),
        }
    }
}

fn email(issues: &mut Issues, key: &str, raw: RawEmailSink) -> Email {
    let mode = email_mode(issues, key, &raw);
    if raw.to.is_empty() {
        issues.push(format!("{key}.to"), "is empty: an email needs at least one recipient");
    }
    for (field, list) in [("to", &raw.to), ("cc", &raw.cc)] {
        for (j, address) in list.iter().enumerate() {
            check_mailbox(issues, &format!("{key}.{field}[{j}]"), address);
        }
    }
    check_mailbox(issues, &format!("{key}.from"), &raw.from);
    if raw.host.trim().is_empty() {
        issues.push(format!("{key}.host"), "is empty");
    }
    let (tls, port) = tls_and_port(issues, key, &raw);
    if port == 0 {
        issues.push(format!("{key}.port"), "must be 1 to 65535");
    }
    if raw.password.is_some() {
        issues.push(
            format!("{key}.password"),
            "is not read from the config file: use password_env (an environment variable) or password_file",
        );
    }
    let password = secret(issues, key, "password", None, raw.password_env, raw.password_file);
    if password.is_some() && raw.username.is_none() {
        issues.push(format!("{key}.username"), "is missing: a password is set but no username");
    }
    if raw.username.is_some() && password.is_none() {
        issues
            .push(format!("{key}.password_env"), "is missing: a username is set but no password_env or password_file");
    }
    let timeout = Duration::from_secs(positive(
        issues,
        &format!("{key}.timeout_secs"),
        raw.timeout_secs,
        DEFAULT_SMTP_TIMEOUT_SECS,
    ));
    let subject = raw.subject.inspect(|t| check_template(issues, &format!("{key}.subject"), t));
    let text_template = template_file(issues, &format!("{key}.text_template"), raw.text_template);
    let html_template = template_file(issues, &format!("{key}.html_template"), raw.html_template);
    Email {
        mode,
        to: raw.to,
        cc: raw.cc,
        from: raw.from,
        host: raw.host,
        port,
        tls,
        username: raw.username,
        password,
        timeout,
        subject,
        text_template,
        html_template,
    }
}

/// SQS keeps a received message invisible for at most 12 hours: what waits
/// for a batch window must be sent well within that.
const MAX_WINDOW_SECS: u64 = 11 * 60 * 60;

/// A batch window in seconds: at least 1, at most [`MAX_WINDOW_SECS`].
fn window(issues: &mut Issues, key: &str, value: Option<u64>, default: u64) -> Duration {
    let secs = positive(issues, key, value, default);
    if secs > MAX_WINDOW_SECS {
        issues.push(
            key,
            format!("{secs} is above {MAX_WINDOW_SECS} (11 hours): SQS keeps a waiting message invisible for at most 12 hours"),
        );
    }
    Duration::from_secs(secs)
}

fn email_mode(issues: &mut Issues, key: &str, raw: &RawEmailSink) -> EmailMode {
    let mode = match raw.mode.as_deref().unwrap_or("immediate") {
        "immediate" => EmailMode::Immediate,
        "digest" => EmailMode::Digest {
            window: window(
                issues,
                &format!("{key}.digest_window_secs"),
                raw.digest_window_secs,
                DEFAULT_DIGEST_WINDOW_SECS,
            ),
            max_rows: usize::try_from(raw.digest_max.unwrap_or(DEFAULT_DIGEST_MAX)).unwrap_or(usize::MAX),
        },
        other => {
            issues.push(format!("{key}.mode"), format!("{other:?} is not one of immediate, digest"));
            EmailMode::Immediate
        }
    };
    if mode == EmailMode::Immediate {
        for (name, set) in
            [("digest_window_secs", raw.digest_window_secs.is_some()), ("digest_max", raw.digest_max.is_some())]
        {
            if set {
                issues.push(format!("{key}.{name}"), "only applies with mode = \"digest\"");
            }
        }
    }
    mode
}

fn tls_and_port(issues: &mut Issues, key: &str, raw: &RawEmailSink) -> (Tls, u16) {
    let tls = match raw.tls.as_deref().unwrap_or("starttls") {
        "starttls" => Tls::StartTls,
        "tls" => Tls::Tls,
        "none" => {
            if !is_loopback(&raw.host) {
                issues.push(
                    format!("{key}.tls"),
                    format!(
                        "\"none\" sends mail and password in clear text: only allowed for a loopback host, not {:?}",
                        raw.host
                    ),
                );
            }
            Tls::None
        }
        other => {
            issues.push(format!("{key}.tls"), format!("{other:?} is not one of starttls, tls, none"));
            Tls::StartTls
        }
    };
    let port = raw.port.unwrap_or(match tls {
        Tls::StartTls => 587,
        Tls::Tls => 465,
        Tls::None => 25,
    });
    (tls, port)
}

fn webhook(issues: &mut Issues, key: &str, raw: RawWebhookSink) -> Webhook {
    // Not quoted back: a webhook URL often holds a token.
    if !is_http_url(&raw.url) {
        issues.push(format!("{key}.url"), "is not an http(s) URL");
    }
    let format = match raw.format.as_deref().unwrap_or("json") {
        "json" => WebhookFormat::Json,
        "slack" => WebhookFormat::Slack,
        other => {
            issues.push(format!("{key}.format"), format!("{other:?} is not one of json, slack"));
            WebhookFormat::Json
        }
    };
    let secret = secret(issues, key, "secret", raw.secret, raw.secret_env, raw.secret_file);
    let timeout = Duration::from_secs(positive(
        issues,
        &format!("{key}.timeout_secs"),
        raw.timeout_secs,
        DEFAULT_WEBHOOK_TIMEOUT_SECS,
    ));
    Webhook { url: raw.url, format, secret, timeout }
}

fn s3(issues: &mut Issues, key: &str, raw: RawS3Sink) -> S3 {
    // S3's bucket naming rules, in short: 3 to 63 lowercase letters, digits, dots and dashes.
    let bucket_ok = (3..=63).contains(&raw.bucket.len())
        && raw.bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !bucket_ok {
        issues.push(
            format!("{key}.bucket"),
            format!("{:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, . and -)", raw.bucket),
        );
    }
    let prefix = raw.prefix.unwrap_or_else(|| DEFAULT_S3_PREFIX.to_owned()).trim_matches('/').to_owned();
    let batch_max = positive(issues, &format!("{key}.batch_max"), raw.batch_max.map(u64::from), DEFAULT_S3_BATCH_MAX);
    if batch_max > MAX_S3_BATCH_MAX {
        issues.push(
            format!("{key}.batch_max"),
            format!("{batch_max} is above {MAX_S3_BATCH_MAX} (a batch is held in memory)"),
        );
    }
    let batch_window =
        window(issues, &format!("{key}.batch_window_secs"), raw.batch_window_secs, DEFAULT_S3_BATCH_WINDOW_SECS);
    S3 { bucket: raw.bucket, prefix, batch_max: usize::try_from(batch_max).unwrap_or(usize::MAX), batch_window }
}

/// A number that must be at least 1, or its default.
fn positive(issues: &mut Issues, key: &str, value: Option<u64>, default: u64) -> u64 {
    match value {
        Some(0) => {
            issues.push(key, "must be at least 1");
            default
        }
        Some(v) => v,
        None => default,
    }
}

/// An address as a mail header takes it: `a@b.test` or `Name <a@b.test>`.
fn check_mailbox(issues: &mut Issues, key: &str, address: &str) {
    if let Err(e) = address.parse::<lettre::message::Mailbox>() {
        issues.push(key, format!("{address:?} is not an email address: {e}"));
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where a secret comes from: inline (where allowed), an environment
/// variable or a file, at most one of them. Not read here: `check` judges the
/// config alone; the sink reads it when it opens.
fn secret(
    issues: &mut Issues,
    key: &str,
    name: &str,
    inline: Option<String>,
    env: Option<String>,
    file: Option<std::path::PathBuf>,
) -> Option<SecretSource> {
    let given = usize::from(inline.is_some()) + usize::from(env.is_some()) + usize::from(file.is_some());
    if given > 1 {
        issues.push(format!("{key}.{name}"), format!("give only one of {name}, {name}_env, {name}_file"));
        return None;
    }
    if let Some(value) = inline {
        if value.is_empty() {
            issues.push(format!("{key}.{name}"), "is empty");
        }
        return Some(SecretSource::Inline(Secret(value)));
    }
    if let Some(var) = env {
        if var.is_empty() {
            issues.push(format!("{key}.{name}_env"), "is empty");
        } else if var.starts_with(super::ENV_PREFIX) {
            issues.push(
                format!("{key}.{name}_env"),
                format!("{var}: {}* variables override config keys; give the secret another name", super::ENV_PREFIX),
            );
        }
        return Some(SecretSource::Env(var));
    }
    let path = file?;
    if path.as_os_str().is_empty() {
        issues.push(format!("{key}.{name}_file"), "is empty");
    }
    Some(SecretSource::File(path))
}

fn check_template(issues: &mut Issues, key: &str, source: &str) {
    if let Err(e) = minijinja::Environment::new().template_from_str(source) {
        issues.push(key, format!("is not a valid template: {e}"));
    }
}

/// A template file: compiled when it can be read here, so `check` reports
/// its syntax errors; a file that is not here is the sink's business when it
/// opens (`check` may run far from the machine that has it).
fn template_file(issues: &mut Issues, key: &str, path: Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    let path = path?;
    if path.as_os_str().is_empty() {
        issues.push(key, "is empty");
    } else if let Ok(source) = std::fs::read_to_string(&path) {
        check_template(issues, key, &source);
    }
    Some(path)
}

/// SNS subjects: 1 to 100 printable ASCII characters, no line breaks.
fn check_subject(issues: &mut Issues, key: &str, subject: &str) {
    if subject.is_empty() || subject.len() > 100 || !subject.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        issues.push(key, "must be 1 to 100 printable ASCII characters (an SNS rule)");
    }
}

fn sink_id(issues: &mut Issues, key: &str, name: &str, names: &[&str]) -> Option<SinkId> {
    let found = names.iter().position(|n| *n == name).map(SinkId);
    if found.is_none() {
        issues.push(key, format!("unknown sink {name:?} (defined: {})", names.join(", ")));
    }
    found
}

fn route(issues: &mut Issues, i: usize, raw: RawRoute, names: &[&str]) -> Route {
    let key = format!("routes[{i}]");
    if raw.name.trim().is_empty() {
        issues.push(format!("{key}.name"), "is empty");
    }
    if raw.sinks.is_empty() {
        issues.push(format!("{key}.sinks"), "is empty: a route needs at least one sink");
    }
    let mut sinks = Vec::new();
    for (j, name) in raw.sinks.iter().enumerate() {
        if let Some(id) = sink_id(issues, &format!("{key}.sinks[{j}]"), name, names) {
            if !sinks.contains(&id) {
                sinks.push(id);
            }
        }
    }
    let has_match = raw.matcher.is_some();
    let matcher = matcher(issues, &format!("{key}.match"), raw.matcher.unwrap_or_default());
    Route { name: raw.name, sinks, continue_: raw.continue_, matcher, has_match }
}

/// Compiles one key's pattern list, reporting empty lists and empty patterns.
fn patterns(issues: &mut Issues, key: &str, patterns: Option<Vec<String>>) -> Option<Patterns> {
    let patterns = patterns?;
    if patterns.is_empty() {
        issues.push(key, "is an empty list, which never matches");
    }
    for (j, p) in patterns.iter().enumerate() {
        if p.is_empty() {
            issues.push(format!("{key}[{j}]"), "is an empty pattern");
        }
    }
    Some(Patterns::new(&patterns))
}

fn matcher(issues: &mut Issues, key: &str, raw: RawMatch) -> Matcher {
    let mut list = |name: &str, list: Option<Vec<String>>| patterns(issues, &format!("{key}.{name}"), list);
    let mut m = Matcher::default();
    let mut keys = raw.keys;
    // Issues in the order `check` lists the keys, whatever order they came in.
    keys.sort_by_key(|(k, _)| *k);
    for (k, values) in keys {
        if let Some(p) = list(k.name(), Some(values)) {
            m.set(k, p);
        }
    }
    for (name, values) in raw.tags {
        if let Some(p) = list(&format!("tags.{name}"), Some(values.into())) {
            m.tags.push((name, p));
        }
    }
    if let Some(kinds) = raw.kind {
        for (j, p) in kinds.iter().enumerate() {
            if !p.is_empty() && KindSet::from_patterns(&Patterns::new(&[p])).is_empty() {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                issues.push(format!("{key}.kind[{j}]"), format!("{p:?} matches no kind (known: {})", known.join(", ")));
            }
        }
        m.kind = patterns(issues, &format!("{key}.kind"), Some(kinds)).map(|p| KindSet::from_patterns(&p));
    }
    m
}

fn warnings(sources: &[Source], sinks: &[Sink], routes: &[Route], dead_letter: Option<SinkId>) -> Vec<String> {
    let mut warnings = Vec::new();
    if sources.is_empty() {
        warnings.push("no [[sources]]: `sesroute run` has no queue to poll".to_owned());
    }
    match routes.last() {
        None => warnings.push("no [[routes]]: every notification is unrouted".to_owned()),
        Some(last) if !last.matcher.matches_everything() => warnings.push(format!(
            "routes[{}] {:?} is the last route and has a match: notifications that no route matches are unrouted (end with a catch-all route without [routes.match])",
            routes.len() - 1,
            last.name
        )),
        Some(_) => {}
    }
    if let Some(j) = routes.iter().position(|r| r.matcher.matches_everything() && !r.continue_) {
        for (i, route) in routes.iter().enumerate().skip(j + 1) {
            warnings.push(format!(
                "routes[{i}] {:?} can never match: routes[{j}] {:?} before it matches everything and does not continue",
                route.name, routes[j].name
            ));
        }
    }
    for (i, sink) in sinks.iter().enumerate() {
        let used = dead_letter == Some(SinkId(i)) || routes.iter().any(|r| r.sinks.contains(&SinkId(i)));
        if !used {
            warnings.push(format!("sinks.{} is not used by any route", sink.name));
        }
    }
    warnings
}

/// An `sns` sink's topic or an `sqs` sink's queue in another region than
/// `[aws] region`: the sink's client calls the configured region, where SNS
/// refuses the topic (`InvalidParameter`) and SQS the queue, so nothing
/// would be delivered (the sink retries, and its messages pile up in SQS).
fn region_warnings(region: Option<&str>, sinks: &[Sink]) -> Vec<String> {
    let Some(region) = region.filter(|r| !r.is_empty()) else { return Vec::new() };
    let mut warnings = Vec::new();
    for sink in sinks {
        let (key, target, target_region) = match &sink.kind {
            SinkKind::Sns { topic_arn, .. } => ("topic_arn", topic_arn, arn_region(topic_arn)),
            SinkKind::Sqs { queue_url } => ("queue_url", queue_url, queue_url_region(queue_url)),
            _ => continue,
        };
        if let Some(target_region) = target_region.filter(|r| !r.eq_ignore_ascii_case(region)) {
            warnings.push(format!(
                "sinks.{}.{key}: {target:?} is in region {target_region}, not in aws.region {region}: \
                 its calls would be refused and its notifications kept in SQS",
                sink.name
            ));
        }
    }
    warnings
}

/// The region of an ARN (`arn:aws:sns:eu-west-1:123456789012:name`), when it has one.
fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(2).filter(|r| !r.is_empty())
}

/// The region of an SQS queue URL: `https://sqs.eu-west-1.amazonaws.com/...`
/// or the older `https://eu-west-1.queue.amazonaws.com/...`.
fn queue_url_region(url: &str) -> Option<&str> {
    let host = url.split_once("://")?.1.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    match (labels.next()?, labels.next()?, labels.next()) {
        ("sqs", region, Some(_)) | (region, "queue", Some("amazonaws")) => Some(region),
        _ => None,
    }
    .filter(|r| r.contains('-'))
}
