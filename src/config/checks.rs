//! What validating any part of the config needs: the list of problems, and
//! the checks more than one part makes (URLs, numbers, windows, secrets).

use std::path::PathBuf;
use std::time::Duration;

use super::{Issue, Secret, SecretSource};

/// Every problem found, each with its key path, reported all at once.
pub(in crate::config) struct Issues(pub(in crate::config) Vec<Issue>);

impl Issues {
    pub(in crate::config) fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Issue { key: key.into(), reason: reason.into() });
    }
}

pub(in crate::config) fn check_url(issues: &mut Issues, key: &str, url: &str) {
    if !is_http_url(url) {
        issues.push(key, format!("{url:?} is not an http(s) URL"));
    }
}

pub(in crate::config) fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://")) && url.len() > "https://".len()
}

/// A number that must be at least 1, or its default.
pub(in crate::config) fn positive(issues: &mut Issues, key: &str, value: Option<u64>, default: u64) -> u64 {
    match value {
        Some(0) => {
            issues.push(key, "must be at least 1");
            default
        }
        Some(v) => v,
        None => default,
    }
}

/// SQS keeps a received message invisible for at most 12 hours: what waits
/// for a batch window must be sent well within that.
const MAX_WINDOW_SECS: u64 = 11 * 60 * 60;

/// A batch window in seconds: at least 1, at most [`MAX_WINDOW_SECS`].
pub(in crate::config) fn window(issues: &mut Issues, key: &str, value: Option<u64>, default: u64) -> Duration {
    let secs = positive(issues, key, value, default);
    if secs > MAX_WINDOW_SECS {
        issues.push(
            key,
            format!("{secs} is above {MAX_WINDOW_SECS} (11 hours): SQS keeps a waiting message invisible for at most 12 hours"),
        );
    }
    Duration::from_secs(secs)
}

/// Where a secret comes from: inline (where allowed), an environment
/// variable or a file, at most one of them. Not read here: `check` judges the
/// config alone; the sink reads it when it opens.
pub(in crate::config) fn secret(
    issues: &mut Issues,
    key: &str,
    name: &str,
    inline: Option<String>,
    env: Option<String>,
    file: Option<PathBuf>,
) -> Option<SecretSource> {
    let given = usize::from(inline.is_some()) + usize::from(env.is_some()) + usize::from(file.is_some());
    if given > 1 {
        issues.push(format!("{key}.{name}"), format!("give only one of {name}, {name}_env, {name}_file"));
        return None;
    }
    if let Some(value) = inline {
        if value.is_empty() {
            issues.push(format!("{key}.{name}"), "is empty");
        }
        return Some(SecretSource::Inline(Secret(value)));
    }
    if let Some(var) = env {
        if var.is_empty() {
            issues.push(format!("{key}.{name}_env"), "is empty");
        } else if var.starts_with(super::ENV_PREFIX) {
            issues.push(
                format!("{key}.{name}_env"),
                format!("{var}: {}* variables override config keys; give the secret another name", super::ENV_PREFIX),
            );
        }
        return Some(SecretSource::Env(var));
    }
    let path = file?;
    if path.as_os_str().is_empty() {
        issues.push(format!("{key}.{name}_file"), "is empty");
    }
    Some(SecretSource::File(path))
}
