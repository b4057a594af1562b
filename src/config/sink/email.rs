//! `type = "email"`: one email per notification, or a digest per window,
//! over SMTP.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::super::raw::one_or_many;
use crate::config::SecretSource;
use crate::config::checks::{Issues, positive, secret, window};

const DEFAULT_DIGEST_WINDOW_SECS: u64 = 3600;
const DEFAULT_DIGEST_MAX: u32 = 100;
const DEFAULT_SMTP_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmailSink {
    /// `immediate` (one email per notification, the default) or `digest`.
    pub mode: Option<String>,
    /// Recipients: the team's addresses.
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
    /// The sender, such as `"sesroute <sesroute@example.com>"`.
    pub from: String,
    /// The SMTP server.
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    /// `starttls` (the default), `tls`, or `none` (a loopback host only).
    #[serde(alias = "tls_mode")]
    pub tls: Option<String>,
    /// The SMTP login (`user` is accepted too).
    #[serde(alias = "user")]
    pub username: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    /// A file that holds the password (a mounted secret).
    pub password_file: Option<PathBuf>,
    /// Rejected with a pointer to `password_env` / `password_file`.
    pub password: Option<serde::de::IgnoredAny>,
    /// Connect and command timeout; default 30.
    pub timeout_secs: Option<u64>,
    /// Digest mode: how long a digest collects notifications; default 3600.
    pub digest_window_secs: Option<u64>,
    /// Digest mode: notifications listed one by one; default 100.
    pub digest_max: Option<u32>,
    /// Template of the subject line (minijinja); default built in.
    pub subject: Option<String>,
    /// File with the template of the plain-text body; default built in.
    pub text_template: Option<PathBuf>,
    /// File with the template of the HTML body; default built in.
    pub html_template: Option<PathBuf>,
    pub max_per_minute: Option<u32>,
}

/// An `email` sink's options.
#[derive(Debug, Clone)]
pub struct Email {
    pub mode: EmailMode,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub from: String,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub timeout: Duration,
    /// A minijinja template replacing the built-in subject line.
    pub subject: Option<String>,
    /// Files with minijinja templates replacing the built-in bodies, read
    /// when the sink opens.
    pub text_template: Option<PathBuf>,
    pub html_template: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailMode {
    /// One email per notification.
    Immediate,
    /// One email per window listing its notifications, `max_rows` of them in full.
    Digest { window: Duration, max_rows: usize },
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS, which is required.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption: accepted for a loopback host only.
    None,
}

impl RawEmailSink {
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> Email {
        let raw = self;
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
            issues.push(
                format!("{key}.password_env"),
                "is missing: a username is set but no password_env or password_file",
            );
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

fn check_template(issues: &mut Issues, key: &str, source: &str) {
    if let Err(e) = minijinja::Environment::new().template_from_str(source) {
        issues.push(key, format!("is not a valid template: {e}"));
    }
}

/// A template file: compiled when it can be read here, so `check` reports
/// its syntax errors; a file that is not here is the sink's business when it
/// opens (`check` may run far from the machine that has it).
fn template_file(issues: &mut Issues, key: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    let path = path?;
    if path.as_os_str().is_empty() {
        issues.push(key, "is empty");
    } else if let Ok(source) = std::fs::read_to_string(&path) {
        check_template(issues, key, &source);
    }
    Some(path)
}

impl Email {
    pub(super) fn target(&self) -> String {
        let mode = match self.mode {
            EmailMode::Immediate => "immediate".to_owned(),
            EmailMode::Digest { window, .. } => format!("digest every {}s", window.as_secs()),
        };
        format!("{} via {}:{} ({mode})", self.to.join(", "), self.host, self.port)
    }

    pub(super) fn destination(&self) -> String {
        format!("{:?} {:?} {}:{}", self.to, self.cc, self.host, self.port)
    }
}
