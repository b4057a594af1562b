//! Verification against real AWS signatures, at a time inside their
//! certificate's validity. Envelopes signed with a key made for the test,
//! certificate fetching and the daemon are tested in `tests/it/signature.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::*;

/// The messages AWS signed (SHA1 and SHA256) and their certificate.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AwsSample {
    pub cert_url: String,
    pub cert_pem: String,
    pub messages: Vec<Value>,
}

pub fn aws_sample() -> AwsSample {
    let text = include_str!("../../tests/fixtures/real-world/signed/aws-sdk-ruby-signed.json");
    serde_json::from_str(text).expect("the AWS sample parses")
}

/// 2022-07-28T22:00:00Z: inside the AWS certificate's validity.
fn in_2022() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_659_045_600)
}

fn policy(mode: Mode, topics: &[&str], accounts: &[&str]) -> Policy {
    Policy {
        mode,
        topics: (!topics.is_empty()).then(|| Patterns::new(topics)),
        accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn pinned(urls: &[&str], pem: &str) -> Certificates {
    let cert = Arc::new(Certificate::from_pem(pem.as_bytes()).unwrap());
    Certificates::new(urls.iter().map(|u| ((*u).to_owned(), Ok(cert.clone()))).collect(), None)
}

fn aws_certs() -> Certificates {
    let sample = aws_sample();
    // The same certificate serves several regions; the bodies name it per region.
    let urls: Vec<String> =
        ["us-east-1", "us-east-2", "eu-central-1"].iter().map(|r| sample.cert_url.replace("us-east-2", r)).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    pinned(&urls, &sample.cert_pem)
}

async fn verdict(body: &str, certs: &Certificates, now: SystemTime) -> Verdict {
    policy(Mode::Require, &[], &[]).verify(body, certs, now).await
}

fn label(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Genuine => "genuine",
        Verdict::Refused(refusal) => refusal.label(),
        Verdict::Unavailable(_) => "unavailable",
    }
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-world/bodies").join(name);
    std::fs::read_to_string(path).unwrap()
}

const REAL_BODIES: [&str; 4] = [
    "028-djangoses-sns-ep-complaint-signed.json",
    "029-djangoses-sns-bounce-signed-no-subject.json",
    "032-keila-sns-ep-bounce-signed.json",
    "033-keila-sns-subscription-confirmation-signed.json",
];

#[test]
fn accounts_allow_list() {
    let accounts = policy(Mode::Off, &[], &["123456789012"]);
    assert_eq!(accounts.check_account(Some("123456789012")), Ok(()));
    assert_eq!(accounts.check_account(Some("210987654321")).unwrap_err().label(), "account-not-allowed");
    assert_eq!(accounts.check_account(None).unwrap_err().label(), "account-not-allowed");
    assert_eq!(policy(Mode::Off, &[], &[]).check_account(None), Ok(()));
}

#[tokio::test]
async fn real_aws_signatures_of_both_versions_verify_within_the_certificate_validity() {
    let certs = aws_certs();
    for message in aws_sample().messages {
        let body = message.to_string();
        assert_eq!(verdict(&body, &certs, in_2022()).await, Verdict::Genuine, "{}", message["SignatureVersion"]);
        // Pretty-printed the same: whitespace between keys is not signed.
        let pretty = serde_json::to_string_pretty(&message).unwrap();
        assert_eq!(verdict(&pretty, &certs, in_2022()).await, Verdict::Genuine);
    }
    for name in REAL_BODIES {
        let body = fixture(name);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_640_000_000); // 2021-12-20
        assert_eq!(verdict(&body, &certs, at).await, Verdict::Genuine, "{name}");
    }
}

#[tokio::test]
async fn the_same_signatures_are_refused_today_because_the_certificate_has_expired() {
    let certs = aws_certs();
    for message in aws_sample().messages {
        let refused = verdict(&message.to_string(), &certs, SystemTime::now()).await;
        assert_eq!(label(&refused), "certificate");
        assert!(refused_text(&refused).contains("expired"), "{refused:?}");
    }
}

fn refused_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Refused(refusal) => refusal.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn every_signed_field_changed_breaks_a_real_signature() {
    let certs = aws_certs();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for message in aws_sample().messages {
        for key in ["Message", "MessageId", "Timestamp", "Type"] {
            cases.push((message.clone(), key));
        }
        let mut with_subject = message.clone();
        with_subject["Subject"] = json!("added");
        cases.push((with_subject, ""));
    }
    let confirmation: Value = serde_json::from_str(&fixture(REAL_BODIES[3])).unwrap();
    for key in ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token"] {
        cases.push((confirmation.clone(), key));
    }
    let with_subject: Value = serde_json::from_str(&fixture(REAL_BODIES[0])).unwrap();
    cases.push((with_subject, "Subject"));
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_640_000_000);
    for (mut message, key) in cases {
        if !key.is_empty() {
            let value = message[key].as_str().unwrap().to_owned();
            message[key] = json!(match key {
                "Type" => "SubscriptionConfirmation".to_owned(),
                _ => format!("{value}x"),
            });
        }
        let at = if message["TopicArn"].as_str().unwrap().contains("us-east-2") { in_2022() } else { at };
        let refused = verdict(&message.to_string(), &certs, at).await;
        assert!(matches!(label(&refused), "bad-signature" | "not-signed"), "{key}: {refused:?}");
    }
    // A trailing space or a dropped final line break in Message is a change too.
    let mut message = aws_sample().messages[1].clone();
    message["Message"] = json!("Hello world ");
    assert_eq!(label(&verdict(&message.to_string(), &certs, in_2022()).await), "bad-signature");
}

#[tokio::test]
async fn a_signature_of_one_version_does_not_pass_as_the_other() {
    let certs = aws_certs();
    for mut message in aws_sample().messages {
        let other = if message["SignatureVersion"] == "1" { "2" } else { "1" };
        message["SignatureVersion"] = json!(other);
        assert_eq!(label(&verdict(&message.to_string(), &certs, in_2022()).await), "bad-signature");
        message["SignatureVersion"] = json!("3");
        assert_eq!(label(&verdict(&message.to_string(), &certs, in_2022()).await), "bad-version");
    }
}

#[test]
fn topic_regions_come_from_sns_arns_only() {
    assert_eq!(topic_region("arn:aws:sns:eu-west-1:123456789012:t"), Some("eu-west-1"));
    assert_eq!(topic_region("arn:aws-cn:sns:cn-north-1:123456789012:t"), Some("cn-north-1"));
    assert_eq!(topic_region("arn:aws:sqs:eu-west-1:123456789012:t"), None);
    assert_eq!(topic_region("arn:aws:sns::123456789012:t"), None);
    assert_eq!(topic_region("arn:aws:sns:eu-west-1"), None);
    assert_eq!(topic_region(""), None);
}

#[test]
fn a_certificate_whose_key_is_not_rsa_is_not_taken() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_owned()]).unwrap().self_signed(&key).unwrap();
    assert_eq!(Certificate::from_pem(cert.pem().as_bytes()).unwrap_err(), "the certificate's key is not RSA");
}
