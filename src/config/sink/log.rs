//! `type = "log"`: one log line per notification.

use serde::Deserialize;

use crate::config::checks::Issues;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogSink {
    /// `error`, `warn`, `info` or `debug`; default `info`.
    pub level: Option<String>,
    /// Deliveries per minute at most; the rest wait in SQS (visibility extended).
    pub max_per_minute: Option<u32>,
}

/// A `log` sink's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub level: tracing::Level,
}

impl RawLogSink {
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> Log {
        let level = self.level.as_deref().unwrap_or("info");
        let level = match level.to_ascii_lowercase().as_str() {
            "error" => tracing::Level::ERROR,
            "warn" => tracing::Level::WARN,
            "info" => tracing::Level::INFO,
            "debug" => tracing::Level::DEBUG,
            _ => {
                issues.push(format!("{key}.level"), format!("{level:?} is not one of error, warn, info, debug"));
                tracing::Level::INFO
            }
        };
        Log { level }
    }
}

impl Log {
    pub(super) fn target(&self) -> String {
        format!("level {}", self.level)
    }

    pub(super) fn destination(&self) -> String {
        self.level.to_string()
    }
}
