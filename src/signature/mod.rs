//! Is this body what SNS delivered? Verifies the signature of SNS envelopes
//! (`SignatureVersion` 1 and 2) with the certificate their `SigningCertURL`
//! names, and holds the envelope's topic and the notification's account
//! against a source's allow-lists.
//!
//! A source's [`Policy`] says what to do with the [`Verdict`]: `require`
//! refuses what does not verify (it goes the way of a body that cannot be
//! understood), `log` only reports it, `off` checks nothing.

mod certs;
mod envelope;

use std::time::SystemTime;

use serde::Deserialize;

use crate::config::Source;
use crate::notification::reason::Echo;
use crate::route::Patterns;

pub use certs::{Certificate, Certificates, Fetcher, Unavailable, check_url};
pub use envelope::{Envelope, Version};

/// `sources[].signature`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nothing is checked (raw delivery and `EventBridge` carry no signature).
    #[default]
    Off,
    /// Checked, failures logged and counted, routed anyway: for switching on safely.
    Log,
    /// Only bodies that verify are routed.
    Require,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Log => "log",
            Mode::Require => "require",
        }
    }
}

/// Why a body is not accepted as genuine. The texts quote input only
/// through [`Echo`], never a whole value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    NotSigned(String),
    #[error("SignatureVersion {0} is neither 1 nor 2")]
    Version(Echo),
    #[error("SigningCertURL {url} is not an SNS certificate URL: {why}")]
    CertUrl { url: Echo, why: &'static str },
    #[error("{0}")]
    Certificate(String),
    #[error("the signature does not verify with the certificate of its SigningCertURL")]
    Signature,
    #[error("TopicArn {0} is not one of the source's topics")]
    Topic(Echo),
    #[error("mail.sendingAccountId {0} is not one of the source's accounts")]
    Account(Echo),
}

impl Refusal {
    /// The metric label: a small, fixed set.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::NotSigned(_) => "not-signed",
            Refusal::Version(_) => "bad-version",
            Refusal::CertUrl { .. } => "bad-cert-url",
            Refusal::Certificate(_) => "certificate",
            Refusal::Signature => "bad-signature",
            Refusal::Topic(_) => "topic-not-allowed",
            Refusal::Account(_) => "account-not-allowed",
        }
    }
}

/// What verification concluded about one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Genuine,
    Refused(Refusal),
    /// The certificate cannot be had now: no verdict, the message comes back later.
    Unavailable(Unavailable),
}

/// One source's signature settings, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    topics: Option<Patterns>,
    accounts: Vec<String>,
}

impl Policy {
    pub fn of(source: &Source) -> Policy {
        Policy {
            mode: source.signature,
            topics: (!source.topics.is_empty()).then(|| Patterns::new(&source.topics)),
            accounts: source.accounts.clone(),
        }
    }

    /// Verifies `body` at `now` (unless the mode is `off`).
    pub async fn verify(&self, body: &str, certs: &Certificates, now: SystemTime) -> Verdict {
        if self.mode == Mode::Off {
            return Verdict::Genuine;
        }
        match verify(body, self.topics.as_ref(), certs, now).await {
            Ok(()) => Verdict::Genuine,
            Err(Failure::Refused(refusal)) => Verdict::Refused(refusal),
            Err(Failure::Unavailable(why)) => Verdict::Unavailable(why),
        }
    }

    /// Refuses a notification from an account not in `accounts` (when set),
    /// whatever the mode and the body form.
    pub fn check_account(&self, account: Option<&str>) -> Result<(), Refusal> {
        if self.accounts.is_empty() {
            return Ok(());
        }
        match account {
            Some(account) if self.accounts.iter().any(|a| a == account) => Ok(()),
            Some(account) => Err(Refusal::Account(Echo::new(account))),
            None => Err(Refusal::Account(Echo::new("(none)"))),
        }
    }
}

#[derive(Debug)]
enum Failure {
    Refused(Refusal),
    Unavailable(Unavailable),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::Refused(refusal)
    }
}

async fn verify(body: &str, topics: Option<&Patterns>, certs: &Certificates, now: SystemTime) -> Result<(), Failure> {
    let envelope = Envelope::parse(body)?;
    let version = envelope.version()?;
    let text = envelope.string_to_sign()?;
    let signature = envelope.signature_bytes()?;
    let topic = envelope.topic_arn.as_deref().unwrap_or_default();
    let region =
        topic_region(topic).ok_or_else(|| Refusal::NotSigned("TopicArn is not an SNS topic ARN".to_owned()))?;
    if topics.is_some_and(|topics| !topics.is_match(topic)) {
        return Err(Refusal::Topic(Echo::new(topic)).into());
    }
    let url = envelope.signing_cert_url.as_deref().ok_or_else(|| Refusal::NotSigned("no SigningCertURL".to_owned()))?;
    check_url(url, Some(region)).map_err(|why| Refusal::CertUrl { url: Echo::new(url), why })?;
    let cert = certs.get(url).await.map_err(|e| match e {
        certs::CertError::Refused(refusal) => Failure::Refused(refusal),
        certs::CertError::Unavailable(why) => Failure::Unavailable(why),
    })?;
    cert.check_valid_at(now)?;
    if cert.verifies(version, text.as_bytes(), &signature) { Ok(()) } else { Err(Refusal::Signature.into()) }
}

/// The region of `arn:<partition>:sns:<region>:<account>:<topic>`.
fn topic_region(arn: &str) -> Option<&str> {
    let whole = arn.splitn(6, ':').count() == 6;
    crate::aws::arn_service_region(arn).filter(|(service, _)| whole && *service == "sns").map(|(_, region)| region)
}

#[cfg(test)]
pub(crate) mod tests;
