//! From [`RawConfig`] to [`Config`]: cross-checks, defaults, compiled matchers.
//!
//! Defaults live here, in one place. Problems are collected, not returned at
//! the first one, so that `check` shows everything that needs fixing.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use super::raw::{RawConfig, RawMatch, RawRoute, RawSink, RawSource};
use super::{Aws, Config, Issue, Sink, SinkKind, Source};
use crate::notification::Kind;
use crate::route::{KindSet, Matcher, Patterns, Route, Router, SinkId};

const DEFAULT_LISTEN: &str = "0.0.0.0:9090";
const DEFAULT_RECEIVERS: u32 = 4;
const DEFAULT_WAIT_TIME_SECS: u32 = 20;
const MESSAGES_PER_RECEIVE: u32 = 10;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 25;
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

    if !issues.0.is_empty() {
        return Err(issues.0);
    }
    let warnings = warnings(&sources, &sinks, &routes, dead_letter);
    Ok(Config {
        aws: Aws { region: raw.aws.region, endpoint_url: raw.aws.endpoint_url },
        listen,
        sources,
        sinks,
        router: Router::new(routes),
        dead_letter,
        shutdown_grace: Duration::from_secs(raw.runtime.shutdown_grace_secs.unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS)),
        warnings,
    })
}

fn check_url(issues: &mut Issues, key: &str, url: &str) {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() <= "https://".len() {
        issues.push(key, format!("{url:?} is not an http(s) URL"));
    }
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
    raw.into_iter()
        .map(|(name, sink)| {
            let key = format!("sinks.{name}");
            if name.trim().is_empty() {
                issues.push("sinks", "a sink name is empty");
            }
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
            };
            Sink { name, kind }
        })
        .collect()
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
    let mut m = Matcher {
        source: list("source", raw.source),
        kind: None,
        bounce_type: list("bounce_type", raw.bounce_type),
        bounce_subtype: list("bounce_subtype", raw.bounce_subtype),
        complaint_type: list("complaint_type", raw.complaint_type),
        identity: list("identity", raw.identity),
        configuration_set: list("configuration_set", raw.configuration_set),
        recipient: list("recipient", raw.recipient),
        queue: list("queue", raw.queue),
        topic: list("topic", raw.topic),
        tags: Vec::new(),
    };
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
