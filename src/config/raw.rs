//! The config file as written: strict serde types, one per TOML table.
//!
//! Unknown keys are errors here. Nothing is cross-checked yet; that is
//! [`super::validate`]'s job, which turns these into the runtime types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

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
}

/// One sink; `type` selects the variant.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RawSink {
    File(RawFileSink),
    Log(RawLogSink),
    Sns(RawSnsSink),
    Sqs(RawSqsSink),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSink {
    /// The JSON Lines file to append to.
    pub path: PathBuf,
    /// fsync after each write, before the message is deleted; default false.
    #[serde(default)]
    pub fsync: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogSink {
    /// `error`, `warn`, `info` or `debug`; default `info`.
    pub level: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnsSink {
    /// The topic to publish to.
    pub topic_arn: String,
    /// The message subject; default "SES <kind> from <source>".
    pub subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqsSink {
    /// The queue to forward to.
    pub queue_url: String,
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub source: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub kind: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub bounce_type: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub bounce_subtype: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub complaint_type: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub identity: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub configuration_set: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub recipient: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub queue: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub topic: Option<Vec<String>>,
    #[serde(default)]
    pub tags: BTreeMap<String, OneOrMany>,
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

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    OneOrMany::deserialize(d).map(Into::into)
}

fn opt_one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    one_or_many(d).map(Some)
}
