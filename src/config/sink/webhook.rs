//! `type = "webhook"`: a signed JSON POST, or a Slack message.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::SecretSource;
use crate::config::checks::{Issues, is_http_url, positive, secret};

const DEFAULT_WEBHOOK_TIMEOUT_SECS: u64 = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhookSink {
    /// Where to POST.
    pub url: String,
    /// `json` (the default) or `slack`.
    pub format: Option<String>,
    /// HMAC key for `X-Sesroute-Signature`, inline.
    pub secret: Option<String>,
    /// The environment variable that holds the HMAC key.
    pub secret_env: Option<String>,
    /// A file that holds the HMAC key.
    pub secret_file: Option<PathBuf>,
    /// Per-request timeout; default 10.
    pub timeout_secs: Option<u64>,
    pub max_per_minute: Option<u32>,
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

impl RawWebhookSink {
    pub(super) fn validate(self, issues: &mut Issues, key: &str) -> Webhook {
        let raw = self;
        // Not quoted back: a webhook URL often holds a token.
        if !is_http_url(&raw.url) {
            issues.push(format!("{key}.url"), "is not an http(s) URL");
        }
        let format = match raw.format.as_deref().unwrap_or("json") {
            "json" => WebhookFormat::Json,
            "slack" => WebhookFormat::Slack,
            other => {
                issues.push(format!("{key}.format"), format!("{other:?} is not one of json, slack"));
                WebhookFormat::Json
            }
        };
        let secret = secret(issues, key, "secret", raw.secret, raw.secret_env, raw.secret_file);
        let timeout = Duration::from_secs(positive(
            issues,
            &format!("{key}.timeout_secs"),
            raw.timeout_secs,
            DEFAULT_WEBHOOK_TIMEOUT_SECS,
        ));
        Webhook { url: raw.url, format, secret, timeout }
    }
}

impl Webhook {
    pub(super) fn target(&self) -> String {
        format!("{} ({})", redact_url(&self.url), self.format.as_str())
    }

    pub(super) fn destination(&self) -> String {
        self.url.clone()
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
