//! The policy shapes of the SES sending-authorization documentation and of
//! the security guidance, and the open and closed shapes of SNS, SQS and S3
//! policies.

use super::{CALLER_KEYS, Policy};

fn policy(text: &str) -> Policy {
    Policy::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const SEND: &str = "ses:SendRawEmail";

#[test]
fn a_public_principal_without_a_condition_is_open_in_each_spelling() {
    for principal in [r#""*""#, r#"{"AWS": "*"}"#, r#"{"AWS": ["111122223333", "*"]}"#] {
        let p = policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Anyone","Effect":"Allow","Principal":{principal},"Action":["ses:SendEmail","ses:SendRawEmail"],"Resource":"*"}}]}}"#
        ));
        assert_eq!(p.open_to_anyone(SEND, CALLER_KEYS), vec!["Anyone"], "{principal}");
    }
}

#[test]
fn the_documentations_cross_account_grant_is_not_public() {
    // SES developer guide: an account principal, restricted to a From address.
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"AuthorizeAccount","Effect":"Allow","Resource":"arn:aws:ses:us-east-1:123456789012:identity/example.com","Principal":{"AWS":["111122223333"]},"Action":["ses:SendEmail","ses:SendRawEmail"],"Condition":{"StringLike":{"ses:FromAddress":"marketing@example.com"}}}]}"#,
    );
    assert!(p.open_to_anyone(SEND, CALLER_KEYS).is_empty());
    assert!(p.any_from_address().is_empty());
}

#[test]
fn a_public_principal_pinned_by_account_organization_arn_or_a_narrow_ip_range_is_not_open() {
    for condition in [
        r#"{"StringEquals":{"aws:SourceAccount":"111122223333"}}"#,
        r#"{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}"#,
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/mailer"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.10/32"]}}"#,
        r#"{"StringEquals":{"AWS:SOURCEACCOUNT":"111122223333"}}"#,
    ] {
        let p = policy(&format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"ses:*","Resource":"*","Condition":{condition}}}}}"#
        ));
        assert!(p.open_to_anyone(SEND, CALLER_KEYS).is_empty(), "{condition}");
    }
}

#[test]
fn conditions_that_let_anyone_through_do_not_restrict() {
    for condition in [
        r#"{"StringLike":{"aws:SourceAccount":"*"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::/0"]}}"#,
        r#"{"StringEqualsIfExists":{"aws:SourceAccount":"111122223333"}}"#,
        r#"{"StringNotEquals":{"aws:SourceAccount":"111122223333"}}"#,
        r#"{"StringLike":{"ses:Recipients":"*@example.com"}}"#,
    ] {
        let p = policy(&format!(
            r#"{{"Statement":[{{"Sid":"S","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"ses:SendRawEmail","Resource":"*","Condition":{condition}}}]}}"#
        ));
        assert_eq!(p.open_to_anyone(SEND, CALLER_KEYS), vec!["S"], "{condition}");
    }
}

#[test]
fn a_deny_for_callers_outside_a_network_or_account_closes_a_public_allow() {
    // Security guidance: Allow with FromAddress, Deny with NotIpAddress.
    let p = policy(
        r#"{"Statement":[
            {"Sid":"Send","Effect":"Allow","Principal":"*","Action":"ses:SendRawEmail","Resource":"*","Condition":{"StringEquals":{"ses:FromAddress":"no-reply@example.com"}}},
            {"Sid":"OnlyOffice","Effect":"Deny","Principal":"*","Action":"ses:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#,
    );
    assert!(p.open_to_anyone(SEND, CALLER_KEYS).is_empty());
    assert!(p.any_from_address().is_empty());
    // A Deny for another action takes nothing back.
    let other = policy(
        r#"{"Statement":[
            {"Sid":"Send","Effect":"Allow","Principal":"*","Action":"ses:SendRawEmail","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"ses:SendBounce","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#,
    );
    assert_eq!(other.open_to_anyone(SEND, CALLER_KEYS), vec!["Send"]);
}

#[test]
fn from_address_is_restricted_by_an_allow_condition_or_a_deny_of_the_others() {
    // Allow with StringLike FromAddress and SourceIp.
    let allow = policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ses:SendEmail","ses:SendRawEmail"],"Resource":"*","Condition":{"StringLike":{"ses:FromAddress":"*@marketing.example.com"},"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}]}"#,
    );
    assert!(allow.any_from_address().is_empty());
    // Deny with StringNotLike FromAddress: the no-reply pattern.
    let deny = policy(
        r#"{"Statement":[
            {"Sid":"Send","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"ses:*","Resource":"*"},
            {"Sid":"OnlyNoReply","Effect":"Deny","Principal":{"AWS":"111122223333"},"Action":"ses:Send*","Resource":"*","Condition":{"StringNotLike":{"ses:FromAddress":"no-reply@example.com"}}}]}"#,
    );
    assert!(deny.any_from_address().is_empty());
}

#[test]
fn any_sender_is_reported_without_a_from_address_condition() {
    // Deny with ForAllValues:StringNotLike ses:Recipients restricts the recipients, not the sender.
    let recipients = policy(
        r#"{"Statement":[
            {"Sid":"Send","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ses:SendEmail","ses:SendRawEmail"],"Resource":"*"},
            {"Sid":"OnlyOurs","Effect":"Deny","Principal":{"AWS":"111122223333"},"Action":"ses:SendRawEmail","Resource":"*","Condition":{"ForAllValues:StringNotLike":{"ses:Recipients":"*@example.com"}}}]}"#,
    );
    assert_eq!(recipients.any_from_address(), vec!["Send"]);
    // A wildcard FromAddress restricts nothing; NotAction covers sending too.
    let wildcard = policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"ses:SendEmail","Resource":"*","Condition":{"StringLike":{"ses:FromAddress":"*"}}},
            {"Effect":"Allow","Principal":{"AWS":"111122223333"},"NotAction":"ses:DeleteIdentity","Resource":"*"}]}"#,
    );
    assert_eq!(wildcard.any_from_address(), vec!["statement 1", "statement 2"]);
}

#[test]
fn not_principal_and_not_action_are_read_as_everyone_and_everything_else() {
    let p = policy(
        r#"{"Statement":[{"Sid":"AllButOne","Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"NotAction":"sqs:DeleteQueue","Resource":"*"}]}"#,
    );
    assert_eq!(p.open_to_anyone("sqs:SendMessage", &["aws:sourcearn"]), vec!["AllButOne"]);
    assert!(p.open_to_anyone("sqs:DeleteQueue", &["aws:sourcearn"]).is_empty());
}

#[test]
fn sns_sqs_and_s3_shapes() {
    // The queue policy SNS's console writes: SourceArn pins the topic.
    let queue = policy(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:feedback","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:ses-bounces"}}},
            {"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:ses-bounces"}}}]}"#,
    );
    assert!(queue.open_to_anyone("sqs:SendMessage", &["aws:sourcearn", "aws:sourceaccount"]).is_empty());
    let open_queue =
        policy(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"SQS:SendMessage","Resource":"*"}]}"#);
    assert_eq!(open_queue.open_to_anyone("sqs:SendMessage", &["aws:sourcearn"]), vec!["statement 1"]);
    // SNS's default topic policy: everyone, pinned by SourceOwner.
    let topic = policy(
        r#"{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:Publish"],"Resource":"arn:aws:sns:us-east-1:111122223333:ses-bounces","Condition":{"StringEquals":{"AWS:SourceOwner":"111122223333"}}}]}"#,
    );
    assert!(topic.open_to_anyone("sns:Publish", &["aws:sourceowner", "aws:sourceaccount", "aws:sourcearn"]).is_empty());
    // A public-read bucket.
    let bucket = policy(
        r#"{"Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::archive/*"}]}"#,
    );
    assert_eq!(bucket.open_to_anyone("s3:GetObject", CALLER_KEYS), vec!["PublicRead"]);
    assert!(bucket.open_to_anyone("s3:ListBucket", CALLER_KEYS).is_empty());
}

#[test]
fn malformed_policies_are_errors_that_say_what_is_wrong() {
    for (text, words) in [
        ("{", "not JSON"),
        (r#"{"Statement":"x"}"#, "neither an object nor a list"),
        (r#"{"Statement":[{"Effect":"Maybe","Action":"*"}]}"#, "Effect"),
        (r#"{"Statement":[{"Effect":"Allow"}]}"#, "Action"),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"StringEquals":"x"}}]}"#,
            "Condition.StringEquals",
        ),
    ] {
        let err = Policy::parse(text).expect_err(text);
        assert!(err.contains(words), "{text}: {err}");
    }
    assert!(Policy::parse("{}").expect("an empty policy").statements.is_empty());
}

#[test]
fn conditions_that_look_narrow_but_let_strangers_in_do_not_restrict() {
    for condition in [
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/mailer"}}"#,
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
        r#"{"StringLike":{"aws:PrincipalOrgID":"o-*"}}"#,
        r#"{"StringLike":{"aws:SourceAccount":"1111*"}}"#,
        r#"{"ForAllValues:StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":"3.0.0.0/8"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":["0.0.0.0/1","128.0.0.0/1"]}}"#,
    ] {
        let p = policy(&format!(
            r#"{{"Statement":[{{"Sid":"S","Effect":"Allow","Principal":"*","Action":"ses:SendRawEmail","Resource":"*","Condition":{condition}}}]}}"#
        ));
        assert_eq!(p.open_to_anyone(SEND, CALLER_KEYS), vec!["S"], "{condition}");
    }
}

#[test]
fn a_deny_takes_back_only_what_it_covers_on_its_own_condition() {
    let allow = r#"{"Sid":"Read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::archive/*"}"#;
    for (deny, closed) in [
        (
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::archive/*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"111122223333"}}}"#,
            true,
        ),
        // Scoped to a prefix: the rest of the bucket stays readable.
        (
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::archive/secret/*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"111122223333"}}}"#,
            false,
        ),
        // ANDed with another condition: outsiders get in over HTTPS.
        (
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"111122223333"},"Bool":{"aws:SecureTransport":[false]}}}"#,
            false,
        ),
    ] {
        let p = policy(&format!(r#"{{"Statement":[{allow},{deny}]}}"#));
        assert_eq!(p.open_to_anyone("s3:GetObject", CALLER_KEYS).is_empty(), closed, "{deny}");
    }
}

#[test]
fn every_sending_action_counts_and_a_deny_of_one_does_not_close_the_others() {
    let templated = policy(
        r#"{"Statement":[{"Sid":"T","Effect":"Allow","Principal":"*","Action":"ses:SendTemplatedEmail","Resource":"*"}]}"#,
    );
    assert_eq!(templated.open_to_anyone("ses:SendTemplatedEmail", CALLER_KEYS), vec!["T"]);
    assert_eq!(templated.any_from_address(), vec!["T"]);
    let partial = policy(
        r#"{"Statement":[
            {"Sid":"Send","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ses:SendEmail","ses:SendRawEmail"],"Resource":"*"},
            {"Effect":"Deny","Principal":{"AWS":"111122223333"},"Action":"ses:SendEmail","Resource":"*","Condition":{"StringNotLike":{"ses:FromAddress":"no-reply@example.com"}}}]}"#,
    );
    assert_eq!(partial.any_from_address(), vec!["Send"], "SendRawEmail stays unrestricted");
}
