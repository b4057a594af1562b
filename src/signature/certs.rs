//! SNS signing certificates: which URLs may name one, pinned certificates,
//! and fetched ones cached by URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use x509_cert::der::DecodePem;

use super::Refusal;

/// How long a certificate fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes of a certificate read (SNS's are about 2 KiB of PEM).
const MAX_CERT_BYTES: usize = 64 * 1024;
/// How long a fetched certificate is kept at most (less when it expires sooner).
const CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a failed fetch is remembered before the URL is tried again.
const FAILED_TTL: Duration = Duration::from_secs(10);
/// Certificate URLs kept at once; SNS uses a handful per region.
const MAX_CACHED: usize = 64;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Why a `SigningCertURL` cannot name an SNS certificate, or `Ok`.
///
/// The URL must be `https://sns.<region>.amazonaws.com[.cn]/SimpleNotificationService-<name>.pem`
/// exactly: no user, no port, no query. `region`, when given, must be the
/// URL's (the `TopicArn`'s region); pinned URLs are checked without it.
pub fn check_url(url: &str, region: Option<&str>) -> Result<(), &'static str> {
    let rest = url.strip_prefix("https://").ok_or("not https")?;
    let (host, path) = rest.split_once('/').ok_or("no path")?;
    let name = host.strip_prefix("sns.").ok_or("its host is not sns.<region>.amazonaws.com")?;
    let url_region = name
        .strip_suffix(".amazonaws.com")
        .or_else(|| name.strip_suffix(".amazonaws.com.cn"))
        .ok_or("its host is not sns.<region>.amazonaws.com")?;
    if url_region.len() < 3 || !url_region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("its host is not sns.<region>.amazonaws.com");
    }
    let file = path
        .strip_prefix("SimpleNotificationService-")
        .and_then(|p| p.strip_suffix(".pem"))
        .ok_or("its path is not /SimpleNotificationService-<name>.pem")?;
    if file.is_empty() || !file.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("its path is not /SimpleNotificationService-<name>.pem");
    }
    match region {
        Some(region) if region != url_region => Err("its region is not the TopicArn's"),
        _ => Ok(()),
    }
}

/// What sesroute keeps of a signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The RSA public key, DER (`RSAPublicKey`).
    key: Vec<u8>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Certificate {
    /// Reads a PEM certificate with an RSA key.
    pub fn from_pem(pem: &[u8]) -> Result<Certificate, String> {
        let cert = x509_cert::Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
        let tbs = cert.tbs_certificate();
        let spki = tbs.subject_public_key_info();
        if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
            return Err("the certificate's key is not RSA".to_owned());
        }
        let validity = tbs.validity();
        Ok(Certificate {
            key: spki.subject_public_key.raw_bytes().to_vec(),
            not_before: validity.not_before.to_system_time(),
            not_after: validity.not_after.to_system_time(),
        })
    }

    /// Reads a pinned certificate's file; the error names the file.
    pub fn read(path: &std::path::Path) -> Result<Certificate, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, version: super::Version, message: &[u8], signature: &[u8]) -> bool {
        use aws_lc_rs::signature::{
            RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
        };
        let algorithm = match version {
            super::Version::Sha1 => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            super::Version::Sha256 => &RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, &self.key).verify(message, signature).is_ok()
    }

    /// Refuses a certificate outside its validity at `now`.
    pub fn check_valid_at(&self, now: SystemTime) -> Result<(), Refusal> {
        if now < self.not_before {
            return Err(Refusal::Certificate("the certificate is not valid yet".to_owned()));
        }
        if now > self.not_after {
            return Err(Refusal::Certificate("the certificate has expired".to_owned()));
        }
        Ok(())
    }

    /// How long from `now` until it expires.
    fn remaining(&self, now: SystemTime) -> Duration {
        self.not_after.duration_since(now).unwrap_or_default()
    }
}

/// A certificate that cannot be had now: no verdict, try the message later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Where certificates come from: `[sns] signing_certs`, then (with
/// `fetch_certs`) the shared fetcher.
#[derive(Debug, Default, Clone)]
pub struct Certificates {
    /// URL → the pinned certificate, or why its file could not be read.
    pinned: HashMap<String, Result<Arc<Certificate>, String>>,
    fetcher: Option<Arc<Fetcher>>,
}

impl Certificates {
    /// `pinned` maps URLs to what their files gave; `fetcher` is `None` when
    /// nothing may be fetched.
    pub fn new(pinned: HashMap<String, Result<Arc<Certificate>, String>>, fetcher: Option<Arc<Fetcher>>) -> Self {
        Certificates { pinned, fetcher }
    }

    /// The certificate of `url` (already checked by [`check_url`]).
    pub async fn get(&self, url: &str) -> Result<Arc<Certificate>, CertError> {
        match self.pinned.get(url) {
            Some(Ok(cert)) => Ok(Arc::clone(cert)),
            Some(Err(why)) => Err(CertError::Unavailable(Unavailable(why.clone()))),
            None => match &self.fetcher {
                Some(fetcher) => fetcher.get(url).await.map_err(CertError::Unavailable),
                None => Err(CertError::Refused(Refusal::Certificate(
                    "its SigningCertURL is not in sns.signing_certs and fetch_certs is false".to_owned(),
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertError {
    Refused(Refusal),
    Unavailable(Unavailable),
}

/// Fetches certificates over HTTPS, one fetch at a time per URL however many
/// messages wait for it, and keeps them (bounded, until their TTL or expiry).
#[derive(Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
    /// Tests only: fetch `https://sns.<region>.amazonaws.com/<path>` from
    /// `<origin>/<path>` instead.
    origin: Option<String>,
}

#[derive(Debug, Clone)]
struct Cached {
    result: Result<Arc<Certificate>, Unavailable>,
    until: Instant,
}

impl Fetcher {
    pub fn new() -> Result<Fetcher, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .build()
            .map_err(|e| format!("cannot set up the certificate fetcher: {e}"))?;
        Ok(Fetcher { client, slots: Mutex::new(HashMap::new()), origin: None })
    }

    /// A fetcher that asks `origin` (a local test server, plain HTTP allowed)
    /// for every certificate path. Not reachable from the config or the CLI.
    #[doc(hidden)]
    pub fn for_tests(origin: &str) -> Fetcher {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Fetcher { client, slots: Mutex::new(HashMap::new()), origin: Some(origin.trim_end_matches('/').to_owned()) }
    }

    /// How many certificate URLs are cached now.
    pub fn cached(&self) -> usize {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    async fn get(&self, url: &str) -> Result<Arc<Certificate>, Unavailable> {
        let slot = self.slot(url);
        let mut cached = slot.lock().await;
        if let Some(hit) = cached.as_ref().filter(|c| c.until > Instant::now()) {
            return hit.result.clone();
        }
        let result = self.fetch(url).await;
        let ttl = match &result {
            Ok(cert) => CACHE_TTL.min(cert.remaining(SystemTime::now())),
            Err(_) => FAILED_TTL,
        };
        *cached = Some(Cached { result: result.clone(), until: Instant::now() + ttl });
        result
    }

    /// The URL's cache slot; when the cache is full, expired slots go first,
    /// then the one that expires soonest.
    fn slot(&self, url: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = slots.get(url) {
            return Arc::clone(slot);
        }
        if slots.len() >= MAX_CACHED {
            let now = Instant::now();
            let until = |slot: &Arc<tokio::sync::Mutex<Option<Cached>>>| {
                // A slot being fetched right now is kept.
                slot.try_lock().map_or(Some(Instant::now() + CACHE_TTL), |c| c.as_ref().map(|c| c.until))
            };
            slots.retain(|_, slot| until(slot).is_none_or(|u| u > now));
            if slots.len() >= MAX_CACHED {
                let soonest = slots.iter().min_by_key(|(_, slot)| until(slot)).map(|(url, _)| url.clone());
                if let Some(soonest) = soonest {
                    slots.remove(&soonest);
                }
            }
        }
        Arc::clone(slots.entry(url.to_owned()).or_default())
    }

    async fn fetch(&self, url: &str) -> Result<Arc<Certificate>, Unavailable> {
        let target = match &self.origin {
            Some(origin) => format!("{origin}/{}", url.splitn(4, '/').nth(3).unwrap_or_default()),
            None => url.to_owned(),
        };
        let failed = |why: String| Unavailable(format!("cannot fetch the signing certificate: {why}"));
        let mut response = self.client.get(&target).send().await.map_err(|e| failed(crate::text::chain(&e)))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status().as_u16())));
        }
        let mut pem = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(crate::text::chain(&e)))? {
            if pem.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(failed(format!("more than {MAX_CERT_BYTES} bytes")));
            }
            pem.extend_from_slice(&chunk);
        }
        Certificate::from_pem(&pem).map(Arc::new).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";

    #[test]
    fn only_sns_certificate_urls_of_the_topic_region_are_accepted() {
        assert_eq!(check_url(GOOD, Some("us-east-1")), Ok(()));
        assert_eq!(check_url(GOOD, None), Ok(()));
        let cn = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc123.pem";
        assert_eq!(check_url(cn, Some("cn-north-1")), Ok(()));
        for (url, why) in [
            (GOOD.replacen("https", "http", 1), "not https"),
            (GOOD.replace("sns.us-east-1", "sns.us-east-1.evil"), "host"),
            (GOOD.replace("sns.us-east-1.amazonaws.com", "sns.us-east-1.amazonaws.com.evil.com"), "host"),
            (GOOD.replace("sns.us-east-1.amazonaws.com", "s3.amazonaws.com"), "host"),
            (GOOD.replace("sns.us-east-1.amazonaws.com", "sns-bucket.s3.amazonaws.com"), "host"),
            (GOOD.replace("sns.us-east-1.amazonaws.com", "evil.com@sns.us-east-1.amazonaws.com"), "host"),
            (GOOD.replace("https://", "https://sns.us-east-1.amazonaws.com@evil.com/x?"), "host"),
            (GOOD.replace(".com/", ".com:443/"), "host"),
            (GOOD.replace(".com/", ".com:8443/"), "host"),
            (GOOD.replace("SimpleNotificationService-", "other-"), "path"),
            (GOOD.replace(".pem", ".pem?x=1"), "path"),
            (GOOD.replace(".pem", ".pem#x"), "path"),
            (GOOD.replace("/Simple", "/x/../Simple"), "path"),
            (GOOD.replace("/Simple", "//Simple"), "path"),
            (GOOD.replace("-9c64", "-9c%2e64"), "path"),
            (GOOD.replace("sns.us-east-1", "SNS.us-east-1"), "host"),
            ("https://sns.us-east-1.amazonaws.com".to_owned(), "no path"),
        ] {
            let error = check_url(&url, Some("us-east-1")).unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
        }
        assert_eq!(check_url(GOOD, Some("eu-west-1")), Err("its region is not the TopicArn's"));
    }

    #[test]
    fn a_certificate_is_read_from_pem_and_checked_against_its_validity() {
        let pem = crate::signature::tests::aws_sample().cert_pem;
        let cert = Certificate::from_pem(pem.as_bytes()).unwrap();
        let inside = SystemTime::UNIX_EPOCH + Duration::from_secs(1_659_000_000); // 2022-07-28
        assert_eq!(cert.check_valid_at(inside), Ok(()));
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11
        assert_eq!(cert.check_valid_at(later).unwrap_err().label(), "certificate");
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000); // 2020-09
        assert_eq!(cert.check_valid_at(before).unwrap_err().label(), "certificate");
        assert!(Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(Certificate::from_pem(b"").is_err());
    }
}
