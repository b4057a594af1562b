//! `type = "file"`: JSON Lines appended to a file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::checks::Issues;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSink {
    /// The JSON Lines file to append to.
    pub path: PathBuf,
    /// fsync after each write, before the message is deleted; default false.
    #[serde(default)]
    pub fsync: bool,
    /// Deliveries per minute at most; the rest wait in SQS (visibility extended).
    pub max_per_minute: Option<u32>,
}

/// A `file` sink's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: PathBuf,
    pub fsync: bool,
}

impl RawFileSink {
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> File {
        if self.path.as_os_str().is_empty() {
            issues.push(format!("{key}.path"), "is empty");
        }
        File { path: self.path, fsync: self.fsync }
    }
}

impl File {
    pub(super) fn target(&self) -> String {
        self.path.display().to_string()
    }

    pub(super) fn destination(&self) -> String {
        self.path.display().to_string()
    }
}
