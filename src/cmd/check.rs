//! `sesroute check`: validate the config and print a one-screen summary.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{self, Config};
use crate::route::Route;

pub fn run(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            print!("{}", summary(path, &config));
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::config_error(&e),
    }
}

/// The summary `check` prints: sources, sinks and routes in order.
pub fn summary(path: &Path, config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config {} is valid", path.display());
    let _ = writeln!(out, "\nsources ({}):", config.sources.len());
    for s in &config.sources {
        let _ = writeln!(out, "  {:<20} {} ({} receivers)", s.name, s.queue_url, s.receivers);
        let mut trust = format!("signature: {}", s.signature.as_str());
        if !s.topics.is_empty() {
            let _ = write!(trust, ", topics: {}", s.topics.join(" | "));
        }
        if !s.accounts.is_empty() {
            let _ = write!(trust, ", accounts: {}", s.accounts.join(", "));
        }
        let _ = writeln!(out, "  {:<20} {trust}", "");
    }
    if config.sources.iter().any(|s| s.signature != crate::signature::Mode::Off) {
        let pinned = config.sns.signing_certs.len();
        let fetch = if config.sns.fetch_certs { "others fetched from SNS" } else { "nothing fetched" };
        let _ = writeln!(out, "  signing certificates: {pinned} pinned, {fetch}");
    }
    let _ = writeln!(out, "\nsinks ({}):", config.sinks.len());
    for (i, sink) in config.sinks.iter().enumerate() {
        let target = sink.kind.target();
        let dead_letter = if config.dead_letter.is_some_and(|d| d.0 == i) { " (dead letter)" } else { "" };
        let _ = writeln!(out, "  {:<20} {:<7} {target}{dead_letter}", sink.name, sink.kind.type_name());
    }
    let _ = writeln!(out, "\nroutes ({}, tried in order):", config.router.routes().len());
    for (i, route) in config.router.routes().iter().enumerate() {
        let sinks: Vec<&str> = route.sinks.iter().map(|id| config.sink(*id).name.as_str()).collect();
        let then = if route.continue_ { ", continue" } else { "" };
        let _ = writeln!(out, "  {:>2}. {:<24} -> {}{then}", i + 1, route.name, sinks.join(", "));
        let _ = writeln!(out, "      match: {}", describe(route));
    }
    out
}

fn describe(route: &Route) -> String {
    if route.matcher.matches_everything() {
        return "everything".to_owned();
    }
    let m = &route.matcher;
    let mut parts = Vec::new();
    if let Some(kinds) = m.kind {
        let names: Vec<&str> =
            crate::notification::Kind::ALL.iter().filter(|k| kinds.contains(**k)).map(|k| k.as_str()).collect();
        parts.push(format!("kind={}", names.join("|")));
    }
    for (key, p) in m.keys() {
        parts.push(format!("{}={p}", key.name()));
    }
    for (name, p) in &m.tags {
        parts.push(format!("tags.{name}={p}"));
    }
    parts.join(" ")
}
