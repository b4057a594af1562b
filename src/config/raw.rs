//! The config file as written: strict serde types, one per TOML table.
//!
//! Unknown keys are errors here. Nothing is cross-checked yet; that is
//! [`super::validate`]'s job, which turns these into the runtime types.

use std::collections::BTreeMap;

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use super::sink::RawSink;
use crate::route::Key;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// How to reach AWS.
    #[serde(default)]
    pub aws: RawAws,
    /// The HTTP listener for health and metrics.
    #[serde(default)]
    pub server: RawServer,
    /// The SQS queues to poll.
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// Named sinks: the table key is the sink's name.
    #[serde(default)]
    pub sinks: BTreeMap<String, RawSink>,
    /// Ordered routes.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// The sink that receives bodies that cannot be understood or delivered.
    pub dead_letter: Option<String>,
    /// Daemon behaviour.
    #[serde(default)]
    pub runtime: RawRuntime,
    /// SNS signing certificates, for sources with `signature` on.
    #[serde(default)]
    pub sns: RawSns,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSns {
    /// `SigningCertURL` → a PEM file, used instead of fetching that URL.
    #[serde(default)]
    pub signing_certs: BTreeMap<String, std::path::PathBuf>,
    /// Whether certificates not in `signing_certs` are fetched; default true.
    pub fetch_certs: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    /// AWS region; default: the SDK's chain (`AWS_REGION`, profile, ...).
    pub region: Option<String>,
    /// A different endpoint for every AWS service, such as a local emulator.
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `host:port` of the health and metrics listener; default `0.0.0.0:9090`.
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// How long in-flight messages may take to finish after SIGTERM; default 25.
    pub shutdown_grace_secs: Option<u64>,
    /// MiB that messages waiting for a digest or an archive object may take
    /// in memory, all sources together; default 32.
    pub max_held_mib: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Unique name; the `queue` matcher and the logs use it.
    pub name: String,
    /// The queue's URL.
    pub queue_url: String,
    /// Concurrent long-poll loops on this queue; default 4.
    pub receivers: Option<u32>,
    /// Long-poll wait per receive, 0 to 20; default 20.
    pub wait_time_secs: Option<u32>,
    /// Visibility timeout asked for on receive; default: the queue's own.
    pub visibility_timeout_secs: Option<u32>,
    /// Messages of this source being processed at once; default 10 per receiver.
    pub max_in_flight: Option<u32>,
    /// SNS signature verification: `off` (default), `log` or `require`.
    pub signature: Option<crate::signature::Mode>,
    /// `TopicArn` patterns accepted (with `signature` on).
    #[serde(default, deserialize_with = "one_or_many")]
    pub topics: Vec<String>,
    /// `mail.sendingAccountId` values accepted.
    #[serde(default, deserialize_with = "one_or_many")]
    pub accounts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Unique name, reported in decisions and metrics.
    pub name: String,
    /// Sink names, each defined under `[sinks]`.
    #[serde(deserialize_with = "one_or_many")]
    pub sinks: Vec<String>,
    /// Keep trying the following routes after this one matched.
    #[serde(rename = "continue", default)]
    pub continue_: bool,
    /// What the route matches; absent: everything.
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
}

/// Every key is a list of patterns (a lone string is a list of one).
#[derive(Debug, Default)]
pub struct RawMatch {
    pub kind: Option<Vec<String>>,
    /// The pattern keys, each once (in the order figment hands them over,
    /// which is not the order written).
    pub keys: Vec<(Key, Vec<String>)>,
    pub tags: BTreeMap<String, OneOrMany>,
}

impl RawMatch {
    /// Every key a `match` table may hold, as unknown-key errors list them.
    const FIELDS: [&str; Key::ALL.len() + 2] = {
        let mut names = [""; Key::ALL.len() + 2];
        names[0] = Key::ALL[0].name();
        names[1] = "kind";
        let mut i = 1;
        while i < Key::ALL.len() {
            names[i + 1] = Key::ALL[i].name();
            i += 1;
        }
        names[Key::ALL.len() + 1] = "tags";
        names
    };
}

impl<'de> Deserialize<'de> for RawMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = RawMatch;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("struct RawMatch")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMatch, A::Error> {
                let mut raw = RawMatch::default();
                let mut tags = None;
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Kind if raw.kind.is_some() => return Err(A::Error::duplicate_field("kind")),
                        Field::Kind => raw.kind = Some(map.next_value::<OneOrMany>()?.into()),
                        Field::Tags if tags.is_some() => return Err(A::Error::duplicate_field("tags")),
                        Field::Tags => tags = Some(map.next_value()?),
                        Field::Key(key) if raw.keys.iter().any(|(k, _)| *k == key) => {
                            return Err(A::Error::duplicate_field(key.name()));
                        }
                        Field::Key(key) => raw.keys.push((key, map.next_value::<OneOrMany>()?.into())),
                    }
                }
                raw.tags = tags.unwrap_or_default();
                Ok(raw)
            }
        }
        d.deserialize_map(Table)
    }
}

/// A key of a `match` table, known while it is read (as a derived struct's
/// field is), so an unknown one is reported at its own path.
enum Field {
    Kind,
    Tags,
    Key(Key),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Field;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("field identifier")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Field, E> {
                match name {
                    "kind" => Ok(Field::Kind),
                    "tags" => Ok(Field::Tags),
                    other => {
                        Key::from_name(other).map(Field::Key).ok_or_else(|| E::unknown_field(other, &RawMatch::FIELDS))
                    }
                }
            }
        }
        d.deserialize_identifier(Name)
    }
}

/// A list of strings, or one string.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Vec<String> {
    fn from(value: OneOrMany) -> Self {
        match value {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

pub(super) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    OneOrMany::deserialize(d).map(Into::into)
}
