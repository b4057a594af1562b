//! `sesroute audit`: the SES account held against the routing config.
//!
//! [`account`] is what was read of the account, [`checks`] the contract's
//! checks over it, [`policy`] reads resource policies as data; this module holds what a
//! finding is and how findings are printed (JSON Lines for machines, text
//! grouped by resource for people) and turned into an exit status.

pub mod account;
pub mod checks;
pub mod policy;
pub mod read;

use std::fmt::Write as _;

use serde::Serialize;

/// How bad a finding is; `--fail-on` takes one and compares against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// The checks, by the ids the contract fixes ([`Check::id`]), each with its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    FeedbackMissing,
    FeedbackShadowed,
    IdentityPolicyPublic,
    IdentityPolicyAnySender,
    TopicPolicyOpen,
    QueuePolicyOpen,
    QueueNoRedrive,
    RawDeliveryUnverifiable,
    ArchiveReadable,
    SuppressionOff,
    RouteSenderUnknown,
    DkimOff,
    Unreadable,
}

impl Check {
    /// The contract's id, as findings carry it.
    pub fn id(self) -> &'static str {
        match self {
            Check::FeedbackMissing => "feedback-missing",
            Check::FeedbackShadowed => "feedback-shadowed",
            Check::IdentityPolicyPublic => "identity-policy-public",
            Check::IdentityPolicyAnySender => "identity-policy-any-sender",
            Check::TopicPolicyOpen => "topic-policy-open",
            Check::QueuePolicyOpen => "queue-policy-open",
            Check::QueueNoRedrive => "queue-no-redrive",
            Check::RawDeliveryUnverifiable => "raw-delivery-unverifiable",
            Check::ArchiveReadable => "archive-readable",
            Check::SuppressionOff => "suppression-off",
            Check::RouteSenderUnknown => "route-sender-unknown",
            Check::DkimOff => "dkim-off",
            Check::Unreadable => "unreadable",
        }
    }

    pub fn level(self) -> Level {
        match self {
            Check::FeedbackMissing
            | Check::FeedbackShadowed
            | Check::IdentityPolicyPublic
            | Check::TopicPolicyOpen
            | Check::QueuePolicyOpen
            | Check::RawDeliveryUnverifiable
            | Check::ArchiveReadable => Level::Fail,
            Check::IdentityPolicyAnySender
            | Check::QueueNoRedrive
            | Check::SuppressionOff
            | Check::RouteSenderUnknown
            | Check::DkimOff
            | Check::Unreadable => Level::Warn,
        }
    }
}

impl Serialize for Check {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// One finding, in the contract's JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    pub level: Level,
    pub resource: String,
    pub message: String,
    pub fix: String,
}

impl Finding {
    pub fn new(check: Check, resource: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding { check, level: check.level(), resource: resource.into(), message: message.into(), fix: fix.into() }
    }
}

/// One JSON object per finding, one per line, worst first.
pub fn json_lines(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in sorted(findings) {
        // A struct of strings and unit enums always serializes.
        let line = serde_json::to_string(f).unwrap_or_default();
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The findings grouped by resource, the resources with the worst findings
/// first, each finding with its fix; a last line counts them by level.
pub fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    if findings.is_empty() {
        out.push_str("no findings\n");
        return out;
    }
    let sorted = sorted(findings);
    let mut resources: Vec<&str> = Vec::new();
    for f in &sorted {
        if !resources.contains(&f.resource.as_str()) {
            resources.push(&f.resource);
        }
    }
    for resource in resources {
        let _ = writeln!(out, "{resource}");
        for f in sorted.iter().filter(|f| f.resource == resource) {
            let _ = writeln!(out, "  {:<4} {}: {}", f.level.as_str(), f.check.id(), f.message);
            let _ = writeln!(out, "       fix: {}", f.fix);
        }
        out.push('\n');
    }
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    let _ = writeln!(
        out,
        "{} findings: {} fail, {} warn, {} info",
        findings.len(),
        count(Level::Fail),
        count(Level::Warn),
        count(Level::Info)
    );
    out
}

/// 0 when no finding is at or above `fail_on`, 1 when one is (the contract's exit status).
pub fn exit_status(findings: &[Finding], fail_on: Level) -> u8 {
    u8::from(findings.iter().any(|f| f.level >= fail_on))
}

fn sorted(findings: &[Finding]) -> Vec<&Finding> {
    let mut out: Vec<&Finding> = findings.iter().collect();
    // Stable: findings of one level keep the order the checks made them in.
    out.sort_by_key(|f| std::cmp::Reverse(f.level));
    out
}

#[cfg(test)]
mod tests {
    use super::{Check, Finding, Level, exit_status, json_lines, text};

    fn findings() -> Vec<Finding> {
        vec![
            Finding::new(
                Check::QueueNoRedrive,
                "queue feedback",
                "no dead-letter queue",
                "aws sqs set-queue-attributes",
            ),
            Finding::new(
                Check::FeedbackShadowed,
                "billing@example.com",
                "shadowed",
                "aws ses set-identity-notification-topic",
            ),
            Finding::new(Check::DkimOff, "example.com", "no DKIM", "aws sesv2 put-email-identity-dkim-attributes"),
            Finding::new(Check::FeedbackMissing, "example.com", "no source", "subscribe a source queue"),
        ]
    }

    #[test]
    fn json_lines_carry_the_contract_fields_worst_first() {
        let text = json_lines(&findings());
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["check"], "feedback-shadowed");
        assert_eq!(lines[0]["level"], "fail");
        assert_eq!(lines[0]["resource"], "billing@example.com");
        assert_eq!(lines[1]["check"], "feedback-missing");
        for line in text.lines() {
            let at = |key: &str| line.find(&format!("\"{key}\":")).expect("every key");
            let order = ["check", "level", "resource", "message", "fix"].map(at);
            assert!(order.is_sorted(), "the contract's key order: {line}");
        }
    }

    #[test]
    fn text_groups_by_resource_worst_first_with_each_fix() {
        let out = text(&findings());
        let resources: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ') && !l.is_empty()).collect();
        assert_eq!(
            resources,
            ["billing@example.com", "example.com", "queue feedback", "4 findings: 2 fail, 2 warn, 0 info"]
        );
        let example = out.split("example.com\n").nth(2).expect("the example.com group");
        assert!(
            example.starts_with("  fail feedback-missing: no source\n       fix: subscribe a source queue\n"),
            "{out}"
        );
        assert_eq!(text(&[]), "no findings\n");
    }

    #[test]
    fn the_exit_status_follows_fail_on() {
        let warn_only: Vec<Finding> = findings().into_iter().filter(|f| f.level == Level::Warn).collect();
        assert_eq!(exit_status(&findings(), Level::Fail), 1);
        assert_eq!(exit_status(&warn_only, Level::Fail), 0);
        assert_eq!(exit_status(&warn_only, Level::Warn), 1);
        assert_eq!(exit_status(&[], Level::Info), 0);
        assert_eq!(<Level as clap::ValueEnum>::from_str("warn", false).ok(), Some(Level::Warn));
        assert_eq!(<Level as clap::ValueEnum>::from_str("error", false).ok(), None);
    }
}
