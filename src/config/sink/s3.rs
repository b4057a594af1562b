//! `type = "s3"`: gzipped JSON Lines objects in an S3 bucket, a batch each.

use std::time::Duration;

use serde::Deserialize;

use crate::config::checks::{Issues, positive, window};

const DEFAULT_S3_PREFIX: &str = "sesroute";
const DEFAULT_S3_BATCH_MAX: u64 = 1000;
const DEFAULT_S3_BATCH_WINDOW_SECS: u64 = 60;
const MAX_S3_BATCH_MAX: u64 = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3Sink {
    pub bucket: String,
    /// Key prefix; default `sesroute`.
    pub prefix: Option<String>,
    /// Notifications per object at most; default 1000.
    pub batch_max: Option<u32>,
    /// How long an object collects notifications; default 60.
    pub batch_window_secs: Option<u64>,
    pub max_per_minute: Option<u32>,
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

impl RawS3Sink {
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> S3 {
        let raw = self;
        // S3's bucket naming rules, in short: 3 to 63 lowercase letters, digits, dots and dashes.
        let bucket_ok = (3..=63).contains(&raw.bucket.len())
            && raw.bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            issues.push(
                format!("{key}.bucket"),
                format!("{:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, . and -)", raw.bucket),
            );
        }
        let prefix = raw.prefix.unwrap_or_else(|| DEFAULT_S3_PREFIX.to_owned()).trim_matches('/').to_owned();
        let batch_max =
            positive(issues, &format!("{key}.batch_max"), raw.batch_max.map(u64::from), DEFAULT_S3_BATCH_MAX);
        if batch_max > MAX_S3_BATCH_MAX {
            issues.push(
                format!("{key}.batch_max"),
                format!("{batch_max} is above {MAX_S3_BATCH_MAX} (a batch is held in memory)"),
            );
        }
        let batch_window =
            window(issues, &format!("{key}.batch_window_secs"), raw.batch_window_secs, DEFAULT_S3_BATCH_WINDOW_SECS);
        S3 { bucket: raw.bucket, prefix, batch_max: usize::try_from(batch_max).unwrap_or(usize::MAX), batch_window }
    }
}

impl S3 {
    pub(super) fn target(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    pub(super) fn destination(&self) -> String {
        self.target()
    }
}
