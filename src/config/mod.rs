//! Configuration: the TOML file (plus `SESROUTE_` environment overrides),
//! parsed strictly into [`raw`] types, then validated into [`Config`], in
//! which a dangling sink name or a bad pattern cannot exist.
//!
//! Every problem is reported with the key path it is about, all at once.

pub mod raw;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use crate::route::{Router, SinkId};

pub use validate::validate;

/// Where the config is read from when neither `--config` nor `SESROUTE_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/sesroute/sesroute.toml";

/// Environment variables with this prefix override config keys (`__` nests).
pub const ENV_PREFIX: &str = "SESROUTE_";

/// `SESROUTE_` variables that configure the program itself, not config keys.
const ENV_NOT_KEYS: &[&str] = &["config", "log", "log_format"];

/// The shortest `sources[].visibility_timeout_secs`: a message's visibility
/// is extended at half of it while its sinks work, so anything shorter leaves
/// too little room for one slow `ChangeMessageVisibility` (and 0 would have SQS
/// hand the message to the next receive at once).
pub const MIN_VISIBILITY_TIMEOUT_SECS: u32 = 5;

/// The validated configuration every part of the program runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub aws: Aws,
    pub listen: SocketAddr,
    pub sources: Vec<Source>,
    /// Sorted by name; a [`SinkId`] indexes this list.
    pub sinks: Vec<Sink>,
    pub router: Router,
    pub dead_letter: Option<SinkId>,
    pub shutdown_grace: Duration,
    /// Bytes that messages waiting for a batch may hold, all sources together.
    pub max_held_bytes: usize,
    /// Things that are valid but probably not what was meant.
    pub warnings: Vec<String>,
}

impl Config {
    pub fn sink(&self, id: SinkId) -> &Sink {
        &self.sinks[id.0]
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aws {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// One SQS queue to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub queue_url: String,
    pub receivers: u32,
    pub wait_time_secs: u32,
    pub visibility_timeout_secs: Option<u32>,
    pub max_in_flight: u32,
}

#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    /// Deliveries per minute at most (emails or objects for the batching sinks).
    pub max_per_minute: Option<NonZeroU32>,
}

/// What a sink is and its options; opening it is the daemon's business.
#[derive(Debug, Clone)]
pub enum SinkKind {
    File { path: PathBuf, fsync: bool },
    Log { level: tracing::Level },
    Sns { topic_arn: String, subject: Option<String> },
    Sqs { queue_url: String },
    Email(Box<Email>),
    Webhook(Webhook),
    S3(S3),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File { .. } => "file",
            SinkKind::Log { .. } => "log",
            SinkKind::Sns { .. } => "sns",
            SinkKind::Sqs { .. } => "sqs",
            SinkKind::Email(_) => "email",
            SinkKind::Webhook(_) => "webhook",
            SinkKind::S3(_) => "s3",
        }
    }

    /// Where the sink delivers, for `check`'s summary (no secrets).
    pub fn target(&self) -> String {
        match self {
            SinkKind::File { path, .. } => path.display().to_string(),
            SinkKind::Log { level } => format!("level {level}"),
            SinkKind::Sns { topic_arn, .. } => topic_arn.clone(),
            SinkKind::Sqs { queue_url } => queue_url.clone(),
            SinkKind::Email(e) => {
                let mode = match e.mode {
                    EmailMode::Immediate => "immediate".to_owned(),
                    EmailMode::Digest { window, .. } => format!("digest every {}s", window.as_secs()),
                };
                format!("{} via {}:{} ({mode})", e.to.join(", "), e.host, e.port)
            }
            SinkKind::Webhook(w) => format!("{} ({})", redact_url(&w.url), w.format.as_str()),
            SinkKind::S3(s) => format!("s3://{}/{}", s.bucket, s.prefix),
        }
    }
}

impl SinkKind {
    /// Where the sink delivers, in full (secrets in a URL included, so never
    /// for output): a delivery is remembered by sink name and this, so a
    /// reload that points a sink elsewhere sends to the new place again.
    pub fn destination(&self) -> String {
        match self {
            SinkKind::File { path, .. } => path.display().to_string(),
            SinkKind::Log { level } => level.to_string(),
            SinkKind::Sns { topic_arn, .. } => topic_arn.clone(),
            SinkKind::Sqs { queue_url } => queue_url.clone(),
            SinkKind::Email(e) => format!("{:?} {:?} {}:{}", e.to, e.cc, e.host, e.port),
            SinkKind::Webhook(w) => w.url.clone(),
            SinkKind::S3(s) => format!("s3://{}/{}", s.bucket, s.prefix),
        }
    }

    /// Whether a delivery waits for a batch window (an email digest, the S3
    /// archive) rather than for the sink itself.
    pub fn holds(&self) -> bool {
        match self {
            SinkKind::Email(options) => matches!(options.mode, EmailMode::Digest { .. }),
            SinkKind::S3(_) => true,
            _ => false,
        }
    }
}

/// A URL without its path and query, which may hold a token (Slack's do).
fn redact_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // user:password@ is a credential too.
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let scheme = url.split_once("://").map_or("https", |(scheme, _)| scheme);
    if host.len() == rest.len() { url.to_owned() } else { format!("{scheme}://{host}/...") }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacted_urls_keep_scheme_and_host_only() {
        assert_eq!(redact_url("https://hooks.slack.com/services/T/B/X"), "https://hooks.slack.com/...");
        assert_eq!(redact_url("https://user:pw@example.test/hook?t=1"), "https://example.test/...");
        assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}

/// A password or key: kept out of `Debug` output and so out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where a secret comes from. Read when the sink opens (`run`, a reload),
/// never by `check` or `route`, which judge the config alone, often far from
/// the machine (and the secrets) it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Secret),
    /// The name of an environment variable.
    Env(String),
    /// A file such as a mounted secret; a trailing line break is not part of it.
    File(PathBuf),
}

impl SecretSource {
    /// The secret itself; the error names the key (`password_env`, ...) and
    /// where it looked, never a value.
    pub fn read(&self, name: &str) -> Result<Secret, String> {
        let value = match self {
            SecretSource::Inline(secret) => return Ok(secret.clone()),
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("{name}_env: environment variable {var} is not set"))?
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("{name}_file: cannot read {}: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        if value.is_empty() {
            return Err(match self {
                SecretSource::Env(var) => format!("{name}_env: environment variable {var} is empty"),
                _ => format!("{name}_file: the file is empty"),
            });
        }
        Ok(Secret(value))
    }
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

/// A `webhook` sink's options.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
    pub secret: Option<SecretSource>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The notification and its routing decision.
    Json,
    /// A Slack message for an incoming webhook.
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
        }
    }
}

/// An `s3` sink's options.
#[derive(Debug, Clone)]
pub struct S3 {
    pub bucket: String,
    /// Without a trailing slash; may be empty.
    pub prefix: String,
    pub batch_max: usize,
    pub batch_window: Duration,
}

/// One problem in the config, at a key path such as `routes[2].sinks[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Issue>),
}

/// Reads and validates the config file, with `SESROUTE_` environment overrides.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let env = Env::prefixed(ENV_PREFIX).split("__").ignore(ENV_NOT_KEYS);
    from_figment(&Figment::from(Toml::string(&text)).merge(env), &path.display().to_string())
}

/// Validates config text alone, without environment overrides (for tests and tools).
pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
    from_figment(&Figment::from(Toml::string(text)), "config")
}

fn from_figment(figment: &Figment, origin: &str) -> Result<Config, ConfigError> {
    let value: figment::value::Value = figment
        .extract()
        .map_err(|e| ConfigError::Syntax { origin: origin.to_owned(), message: e.kind.to_string() })?;
    let raw: raw::RawConfig =
        serde_path_to_error::deserialize(&value).map_err(|e| ConfigError::Invalid(vec![shape_issue(&e)]))?;
    validate(raw).map_err(ConfigError::Invalid)
}

/// Words a serde error about the file's shape the way the rest of `check` speaks:
/// the full key path first, then what is wrong with it.
fn shape_issue(error: &serde_path_to_error::Error<figment::Error>) -> Issue {
    use figment::error::Kind as ErrorKind;
    let mut key = error.path().to_string();
    let join = |key: &str, field: &str| {
        if key == "." { field.to_owned() } else { format!("{key}.{field}") }
    };
    let reason = match &error.inner().kind {
        ErrorKind::UnknownField(field, expected) => {
            if key != field.as_str() && !key.ends_with(&format!(".{field}")) {
                key = join(&key, field);
            }
            format!("unknown key (expected one of: {})", expected.join(", "))
        }
        ErrorKind::MissingField(field) => {
            key = join(&key, field);
            "is required".to_owned()
        }
        ErrorKind::UnknownVariant(found, expected) => {
            format!("unknown value {found:?} (expected one of: {})", expected.join(", "))
        }
        ErrorKind::InvalidType(found, expected) => {
            let expected = match expected.as_str() {
                "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
                "bool" => "true or false",
                other => other,
            };
            format!("expected {expected}, found {found}")
        }
        other => other.to_string(),
    };
    let env = format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase());
    let reason = if std::env::var_os(&env).is_some() {
        format!("{reason} (set by the environment variable {env})")
    } else {
        reason
    };
    Issue { key, reason }
}
