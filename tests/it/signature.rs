//! SNS signature verification through the library's public API: envelopes
//! signed here with a key and certificate made for the test (version 2;
//! version 1 is covered by AWS's own signatures in the unit tests), the
//! certificate fetcher against a local HTTP server, and the allow-lists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sesroute::signature::{Certificate, Certificates, Envelope, Fetcher, Mode, Policy, Verdict};

/// A source's policy, from a config as a user writes it.
fn policy(mode: &str, topics: &[&str]) -> Policy {
    let text = format!(
        "[[sources]]\nname = \"s\"\nqueue_url = \"https://sqs.eu-west-1.amazonaws.com/123456789012/q\"\nsignature = \"{mode}\"\ntopics = {topics:?}\n"
    );
    let config = sesroute::config::from_toml(&text).expect("a valid config");
    assert_eq!(config.sources[0].signature.as_str(), mode);
    Policy::of(&config.sources[0])
}

fn pinned(urls: &[&str], pem: &str) -> Certificates {
    let cert = Arc::new(Certificate::from_pem(pem.as_bytes()).expect("the test certificate"));
    Certificates::new(urls.iter().map(|u| ((*u).to_owned(), Ok(cert.clone()))).collect(), None)
}

async fn verdict(body: &str, certs: &Certificates, now: SystemTime) -> Verdict {
    policy("require", &[]).verify(body, certs, now).await
}

fn label(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Genuine => "genuine",
        Verdict::Refused(refusal) => refusal.label(),
        Verdict::Unavailable(_) => "unavailable",
    }
}

/// A key and self-signed certificate made for the tests, and what signs with it.
struct Signer {
    key: aws_lc_rs::signature::RsaKeyPair,
    pem: String,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("an RSA key");
        let params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_owned()]).expect("parameters");
        let cert = params.self_signed(&key).expect("a self-signed certificate");
        let rsa = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&key.serialize_der()).expect("the key as PKCS#8");
        Signer { key: rsa, pem: cert.pem() }
    })
}

pub const TEST_CERT_URL: &str = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem";
pub const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ses-bounces";

/// An envelope of `kind` carrying `message`, signed with version 2 by the test key.
pub fn signed(kind: &str, message: &str, subject: Option<&str>) -> String {
    let mut envelope = json!({
        "Type": kind,
        "MessageId": "2a1f9c2e-0b7a-5c6e-9d3f-1e2d3c4b5a69",
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "2025-03-04T09:15:25.101Z",
        "SignatureVersion": "2",
        "SigningCertURL": TEST_CERT_URL,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    });
    if let Some(subject) = subject {
        envelope["Subject"] = json!(subject);
    }
    if kind != "Notification" {
        envelope["Token"] = json!("2336412f37fb687f5d51e6e2425dacbba");
        envelope["SubscribeURL"] = json!("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription");
    }
    sign(&mut envelope);
    envelope.to_string()
}

fn sign(envelope: &mut Value) {
    use base64::Engine as _;
    let text = Envelope::parse(&envelope.to_string()).and_then(|e| e.string_to_sign()).expect("a string to sign");
    let signer = signer();
    let mut signature = vec![0; signer.key.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    signer.key.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, text.as_bytes(), &mut signature).expect("signed");
    envelope["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
}

pub fn test_pem() -> &'static str {
    &signer().pem
}

fn test_certs() -> Certificates {
    pinned(&[TEST_CERT_URL], test_pem())
}

pub const SES_BOUNCE: &str =
    r#"{"notificationType":"Bounce","mail":{"source":"a@example.com","sendingAccountId":"123456789012"}}"#;

#[tokio::test]
async fn envelopes_of_every_type_signed_here_verify_and_a_changed_field_does_not() {
    let certs = test_certs();
    for (kind, subject) in [
        ("Notification", Some("Amazon SES Email Event Notification")),
        ("Notification", None),
        ("SubscriptionConfirmation", None),
        ("UnsubscribeConfirmation", None),
    ] {
        let body = signed(kind, SES_BOUNCE, subject);
        assert_eq!(verdict(&body, &certs, SystemTime::now()).await, Verdict::Genuine, "{kind}");
        let mut value: Value = serde_json::from_str(&body).unwrap();
        let keys: &[&str] = if kind == "Notification" {
            &["Message", "MessageId", "Timestamp", "TopicArn", "Type"]
        } else {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        };
        for key in keys {
            let original = value[*key].clone();
            value[*key] = json!(match *key {
                "TopicArn" => TOPIC.replace("ses-bounces", "ses-other"),
                "Type" if kind == "Notification" => "UnsubscribeConfirmation".to_owned(),
                "Type" => "Notification".to_owned(),
                _ => format!("{}!", original.as_str().unwrap()),
            });
            let refused = verdict(&value.to_string(), &certs, SystemTime::now()).await;
            assert!(matches!(label(&refused), "bad-signature" | "not-signed"), "{kind} {key}: {refused:?}");
            value[*key] = original;
        }
        // Fields SNS does not sign may change (UnsubscribeURL), and escapes are decoded first.
        value["UnsubscribeURL"] = json!("https://sns.eu-west-1.amazonaws.com/?other");
        let escaped = value.to_string().replace("Timestamp\":\"2025", "Timestamp\":\"\\u0032025");
        assert!(escaped.contains("\\u0032025"));
        assert_eq!(verdict(&escaped, &certs, SystemTime::now()).await, Verdict::Genuine, "{kind} escaped");
    }
}

#[tokio::test]
async fn bodies_without_an_envelope_signature_are_refused_as_not_signed() {
    let certs = test_certs();
    let eventbridge = json!({"version":"0","id":"x","detail-type":"Email Bounced","source":"aws.ses","detail":{}});
    let mut unsigned: Value = serde_json::from_str(&signed("Notification", SES_BOUNCE, None)).unwrap();
    unsigned.as_object_mut().unwrap().remove("Signature");
    for body in [SES_BOUNCE.to_owned(), eventbridge.to_string(), unsigned.to_string(), String::new(), "{}".to_owned()] {
        assert_eq!(label(&verdict(&body, &certs, SystemTime::now()).await), "not-signed", "{body}");
    }
    let garbage = signed("Notification", SES_BOUNCE, None).replace("\"Signature\":\"", "\"Signature\":\"%%");
    assert_eq!(label(&verdict(&garbage, &certs, SystemTime::now()).await), "not-signed");
}

#[tokio::test]
async fn certificate_urls_are_held_to_the_topic_region_and_the_sns_host_whatever_is_pinned() {
    let body = signed("Notification", SES_BOUNCE, None);
    for url in [
        "https://sns.eu-west-1.amazonaws.com.evil.com/SimpleNotificationService-0123abcd.pem",
        "https://s3.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.eu-west-1.amazonaws.com/evil/SimpleNotificationService-0123abcd.pem",
        "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-0123abcd.pem",
    ] {
        // Even a pinned certificate does not make a bad URL good.
        let certs = pinned(&[url], test_pem());
        let forged = body.replace(TEST_CERT_URL, url);
        assert_eq!(label(&verdict(&forged, &certs, SystemTime::now()).await), "bad-cert-url", "{url}");
    }
    let elsewhere = pinned(&["https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-ffff.pem"], test_pem());
    let refused = verdict(&body, &elsewhere, SystemTime::now()).await;
    assert_eq!(label(&refused), "certificate", "not pinned, and nothing may be fetched");
}

#[tokio::test]
async fn the_topics_allow_list_holds_under_require_and_log() {
    let certs = test_certs();
    let body = signed("Notification", SES_BOUNCE, None);
    let allowed = policy("require", &["arn:aws:sns:eu-west-1:123456789012:ses-*"]);
    assert_eq!(allowed.verify(&body, &certs, SystemTime::now()).await, Verdict::Genuine);
    let other = policy("require", &["arn:aws:sns:eu-west-1:123456789012:marketing-*"]);
    assert_eq!(label(&other.verify(&body, &certs, SystemTime::now()).await), "topic-not-allowed");
    // `off` checks nothing at all.
    assert_eq!(policy("off", &["nothing"]).verify("junk", &certs, SystemTime::now()).await, Verdict::Genuine);
    let logged = policy("log", &[]);
    assert_eq!(logged.mode, Mode::Log);
    assert_eq!(label(&logged.verify("junk", &certs, SystemTime::now()).await), "not-signed", "log mode checks too");
}

/// A local certificate server: what it answers, and how often it was asked.
struct CertServer {
    origin: String,
    hits: Arc<AtomicUsize>,
}

async fn cert_server(status: u16, body: Vec<u8>, delay: Duration) -> CertServer {
    use axum::http::StatusCode;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let (counter, body) = (counter.clone(), body.clone());
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            let status = StatusCode::from_u16(status).expect("a status");
            (status, [("location", "https://evil.example/cert.pem")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let origin = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    CertServer { origin, hits }
}

fn fetching(server: &CertServer) -> Certificates {
    Certificates::new(HashMap::new(), Some(Arc::new(Fetcher::for_tests(&server.origin))))
}

#[tokio::test]
async fn messages_waiting_for_a_certificate_share_one_fetch_and_the_cache_keeps_it() {
    let server = cert_server(200, test_pem().as_bytes().to_vec(), Duration::from_millis(200)).await;
    let certs = fetching(&server);
    let body = signed("Notification", SES_BOUNCE, None);
    let verdicts = futures_util::future::join_all((0..20).map(|_| verdict(&body, &certs, SystemTime::now()))).await;
    assert!(verdicts.iter().all(|v| *v == Verdict::Genuine), "{verdicts:?}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "one fetch for twenty messages");
    assert_eq!(verdict(&body, &certs, SystemTime::now()).await, Verdict::Genuine);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "then from the cache");
}

#[tokio::test]
async fn a_failed_fetch_is_no_verdict_and_is_not_asked_again_at_once() {
    for (status, body) in [
        (500, test_pem().as_bytes().to_vec()),
        (404, Vec::new()),
        (302, Vec::new()),
        (200, b"not a certificate".to_vec()),
        (200, vec![b'A'; 100 * 1024]),
    ] {
        let server = cert_server(status, body, Duration::ZERO).await;
        let certs = fetching(&server);
        let body = signed("Notification", SES_BOUNCE, None);
        for _ in 0..3 {
            assert_eq!(label(&verdict(&body, &certs, SystemTime::now()).await), "unavailable", "{status}");
        }
        assert_eq!(server.hits.load(Ordering::SeqCst), 1, "{status}: the failure is remembered for a while");
    }
    // Nobody listening.
    let certs = Certificates::new(HashMap::new(), Some(Arc::new(Fetcher::for_tests("http://127.0.0.1:9"))));
    let body = signed("Notification", SES_BOUNCE, None);
    assert_eq!(label(&verdict(&body, &certs, SystemTime::now()).await), "unavailable");
}

#[tokio::test]
async fn the_cache_stays_bounded_however_many_certificate_urls_arrive() {
    let server = cert_server(200, test_pem().as_bytes().to_vec(), Duration::ZERO).await;
    let fetcher = Arc::new(Fetcher::for_tests(&server.origin));
    let certs = Certificates::new(HashMap::new(), Some(fetcher.clone()));
    for i in 0..100 {
        let url = TEST_CERT_URL.replace("0123abcd", &format!("{i:08x}"));
        let body = signed("Notification", SES_BOUNCE, None).replace(TEST_CERT_URL, &url);
        // The signature covers no URL: every one verifies with the test certificate.
        assert_eq!(verdict(&body, &certs, SystemTime::now()).await, Verdict::Genuine);
    }
    assert!(fetcher.cached() <= 64, "{} cached", fetcher.cached());
    assert_eq!(server.hits.load(Ordering::SeqCst), 100);
}
