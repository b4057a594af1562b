//! From [`RawConfig`] to [`Config`]: cross-checks, defaults, compiled matchers.
//!
//! Defaults live here, in one place. Problems are collected, not returned at
//! the first one, so that `check` shows everything that needs fixing.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use super::checks::{Issues, check_url};
use super::raw::{RawConfig, RawMatch, RawRoute, RawSink, RawSns, RawSource};
use super::{Aws, Config, Issue, Sink, SinkKind, Sns, Source};
use crate::notification::Kind;
use crate::notification::bounce::BounceClass;
use crate::route::{Key, KindSet, Matcher, Patterns, Route, Router, SinkId};

const DEFAULT_LISTEN: &str = "0.0.0.0:9090";
const DEFAULT_RECEIVERS: u32 = 4;
const DEFAULT_WAIT_TIME_SECS: u32 = 20;
const MESSAGES_PER_RECEIVE: u32 = 10;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 25;
/// SQS's own limits.
const MAX_WAIT_TIME_SECS: u32 = 20;
const MAX_VISIBILITY_TIMEOUT_SECS: u32 = 43_200;

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
    let sns = sns(&mut issues, raw.sns);

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
        sns,
        warnings,
    })
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
            for (j, account) in s.accounts.iter().enumerate() {
                if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                    issues.push(format!("{key}.accounts[{j}]"), format!("{account:?} is not a 12-digit AWS account id"));
                }
            }
            for (j, topic) in s.topics.iter().enumerate() {
                if topic.trim().is_empty() {
                    issues.push(format!("{key}.topics[{j}]"), "is empty");
                }
            }
            Source {
                name: s.name,
                queue_url: s.queue_url,
                receivers,
                wait_time_secs,
                visibility_timeout_secs: s.visibility_timeout_secs,
                max_in_flight,
                signature: s.signature.unwrap_or_default(),
                topics: s.topics,
                accounts: s.accounts,
            }
        })
        .collect()
}

/// `[sns]`: pinned certificate URLs must be ones SNS could name (their
/// files are read when the daemon starts, not here).
fn sns(issues: &mut Issues, raw: RawSns) -> Sns {
    for (url, path) in &raw.signing_certs {
        if let Err(why) = crate::signature::check_url(url, None) {
            issues.push(format!("sns.signing_certs.{url:?}"), format!("not an SNS certificate URL: {why}"));
        }
        if path.as_os_str().is_empty() {
            issues.push(format!("sns.signing_certs.{url:?}"), "the file path is empty");
        }
    }
    Sns { signing_certs: raw.signing_certs.into_iter().collect(), fetch_certs: raw.fetch_certs.unwrap_or(true) }
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
            let kind = sink.validate(issues, &key);
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
        let SinkKind::File(super::sink::File { path, .. }) = &sink.kind else { continue };
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
    let mut m = Matcher::default();
    let mut keys = raw.keys;
    // Issues in the order `check` lists the keys, whatever order they came in.
    keys.sort_by_key(|(k, _)| *k);
    for (k, values) in keys {
        let path = format!("{key}.{}", k.name());
        if k == Key::BounceClass {
            let known = BounceClass::ALL.map(BounceClass::as_str);
            matches_known(issues, &path, &values, "bounce class", &known, |p| {
                known.iter().any(|name| p.is_match(name))
            });
        }
        if let Some(p) = patterns(issues, &path, Some(values)) {
            m.set(k, p);
        }
    }
    for (name, values) in raw.tags {
        if let Some(p) = patterns(issues, &format!("{key}.tags.{name}"), Some(values.into())) {
            m.tags.push((name, p));
        }
    }
    if let Some(kinds) = raw.kind {
        let known = Kind::ALL.map(Kind::as_str);
        matches_known(issues, &format!("{key}.kind"), &kinds, "kind", &known, |p| {
            !KindSet::from_patterns(p).is_empty()
        });
        m.kind = patterns(issues, &format!("{key}.kind"), Some(kinds)).map(|p| KindSet::from_patterns(&p));
    }
    m
}

/// Reports each non-empty pattern of a key over a closed set of values
/// (kinds, bounce classes) that matches none of them: a typo, never useful.
fn matches_known(
    issues: &mut Issues,
    key: &str,
    values: &[String],
    what: &str,
    known: &[&str],
    matches_any: impl Fn(&Patterns) -> bool,
) {
    for (j, p) in values.iter().enumerate() {
        if !p.is_empty() && !matches_any(&Patterns::new(&[p])) {
            issues.push(format!("{key}[{j}]"), format!("{p:?} matches no {what} (known: {})", known.join(", ")));
        }
    }
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
    for (i, source) in sources.iter().enumerate() {
        if source.signature == crate::signature::Mode::Off && !source.topics.is_empty() {
            warnings.push(format!(
                "sources[{i}].topics has no effect with signature = \"off\": without a verified signature the TopicArn can be forged (set signature = \"log\" or \"require\")"
            ));
        }
        if source.signature != crate::signature::Mode::Off && dead_letter.is_none() {
            warnings.push(format!(
                "sources[{i}] {:?} verifies signatures but there is no dead_letter sink: refused bodies stay in the queue until its redrive policy moves them",
                source.name
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
            SinkKind::Sns(sns) => ("topic_arn", &sns.topic_arn, arn_region(&sns.topic_arn)),
            SinkKind::Sqs(sqs) => ("queue_url", &sqs.queue_url, queue_url_region(&sqs.queue_url)),
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
    crate::aws::arn_service_region(arn).map(|(_, region)| region)
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
