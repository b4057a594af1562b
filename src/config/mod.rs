//! Configuration: the TOML file (plus `SESROUTE_` environment overrides),
//! parsed strictly into [`raw`] types, then validated into [`Config`], in
//! which a dangling sink name or a bad pattern cannot exist.
//!
//! Every problem is reported with the key path it is about, all at once.

mod checks;
pub mod raw;
pub mod sink;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use crate::route::{Router, SinkId};

pub use sink::{Email, EmailMode, S3, SinkKind, Tls, Webhook, WebhookFormat};
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
    pub sns: Sns,
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
    pub signature: crate::signature::Mode,
    /// `TopicArn` patterns accepted; empty: any topic.
    pub topics: Vec<String>,
    /// `mail.sendingAccountId` values accepted; empty: any account.
    pub accounts: Vec<String>,
}

/// `[sns]`: where signing certificates come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sns {
    /// `SigningCertURL` → PEM file; read when the daemon starts or reloads.
    pub signing_certs: Vec<(String, PathBuf)>,
    pub fetch_certs: bool,
}

#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    /// Deliveries per minute at most (emails or objects for the batching sinks).
    pub max_per_minute: Option<NonZeroU32>,
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
