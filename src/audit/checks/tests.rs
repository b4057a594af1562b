//! One account holding every problem of the contract's table next to
//! resources set up correctly: each problem is reported once, on its
//! resource, and the correct resources are silent.

use super::run;
use crate::audit::account::{Account, Bucket, EventDestination, Identity, Queue, Subscription, Topic};
use crate::audit::{Check, Finding};
use crate::signature::Mode;

const ACCOUNT: &str = "111122223333";

fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:eu-west-1:{ACCOUNT}:{name}")
}

fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:eu-west-1:{ACCOUNT}:{name}")
}

fn subscription(topic: &str, queue: &str, raw: bool) -> Subscription {
    Subscription {
        arn: format!("{}:{queue}", topic_arn(topic)),
        protocol: "sqs".to_owned(),
        endpoint: queue_arn(queue),
        raw_delivery: raw,
    }
}

fn identity(name: &str, topic: Option<&str>) -> Identity {
    Identity {
        name: name.to_owned(),
        can_send: true,
        topics_known: true,
        bounce_topic: topic.map(topic_arn),
        complaint_topic: topic.map(topic_arn),
        dkim_signing: Some(true),
        ..Identity::default()
    }
}

const SAFE_TOPIC_POLICY: &str = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ses.amazonaws.com"},"Action":"SNS:Publish","Resource":"*","Condition":{"StringEquals":{"AWS:SourceAccount":"111122223333"}}}]}"#;
const OPEN_POLICY: &str =
    r#"{"Statement":[{"Sid":"Open","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
const SAFE_QUEUE_POLICY: &str = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:eu-west-1:111122223333:feedback"}}}]}"#;
const SAFE_SENDING_POLICY: &str = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"ses:SendRawEmail","Resource":"*","Condition":{"StringEquals":{"ses:FromAddress":"no-reply@good.example"}}}]}"#;

/// Good: good.example (topics to the feedback source), its address
/// billing@good.example with topics of its own, events.good.example by its
/// configuration set; safe policies, a redrive queue, a private archive.
/// Bad: one resource per check.
fn account() -> Account {
    let mut by_set = identity("events.good.example", None);
    by_set.default_configuration_set = Some("tracked".to_owned());
    let mut good_domain = identity("good.example", Some("feedback"));
    good_domain.policies.push(("partner".to_owned(), SAFE_SENDING_POLICY.to_owned()));
    let mut public = identity("public.example", Some("feedback"));
    public.policies.push(("anyone".to_owned(), OPEN_POLICY.to_owned()));
    let mut unsigned = identity("nodkim.example", Some("feedback"));
    unsigned.dkim_signing = Some(false);
    let mut unverified = identity("pending.example", None);
    unverified.can_send = false;
    let identities = vec![
        good_domain,
        identity("billing@good.example", Some("feedback")),
        by_set,
        identity("orphan.example", Some("elsewhere")),
        identity("shadowed@good.example", None),
        public,
        unsigned,
        unverified,
    ];

    let mut account = Account {
        identities,
        suppression: Some(vec!["BOUNCE".to_owned()]),
        unreadable: vec![("ses:GetAccount".to_owned(), "AccessDenied".to_owned())],
        route_sources: vec![
            ("billing".to_owned(), "billing@good.example".to_owned()),
            ("dev".to_owned(), "*@dev.good.example".to_owned()),
            ("typo".to_owned(), "billing@goood.example".to_owned()),
            ("all".to_owned(), "*".to_owned()),
        ],
        ..Account::default()
    };
    account.configuration_sets.insert(
        "tracked".to_owned(),
        vec![EventDestination {
            name: "to-sns".to_owned(),
            enabled: true,
            events: vec!["BOUNCE".to_owned(), "COMPLAINT".to_owned(), "DELIVERY".to_owned()],
            topic_arn: Some(topic_arn("events")),
        }],
    );
    let topic = |policy: &str, subscriptions| Topic {
        subscriptions_known: true,
        policy: Some(policy.to_owned()),
        subscriptions,
    };
    account
        .topics
        .insert(topic_arn("feedback"), topic(SAFE_TOPIC_POLICY, vec![subscription("feedback", "feedback", false)]));
    account.topics.insert(topic_arn("events"), topic(OPEN_POLICY, vec![subscription("events", "events", true)]));
    account.topics.insert(topic_arn("elsewhere"), topic(OPEN_POLICY, vec![]));
    let queue = |name: &str, policy: &str, redrive, signature| Queue {
        source: name.to_owned(),
        url: format!("https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/{name}"),
        arn: Some(queue_arn(name)),
        policy: Some(policy.to_owned()),
        redrive,
        signature,
    };
    account.queues = vec![
        queue("feedback", SAFE_QUEUE_POLICY, true, Mode::Require),
        queue("events", OPEN_POLICY, false, Mode::Require),
    ];
    account.buckets = vec![
        Bucket {
            sink: "archive".to_owned(),
            name: "private-archive".to_owned(),
            policy: Some(OPEN_POLICY.to_owned()),
            restrict_public_buckets: true,
            ignore_public_acls: true,
            acl_public_read: true,
        },
        Bucket {
            sink: "leaky".to_owned(),
            name: "leaky-archive".to_owned(),
            acl_public_read: true,
            ..Bucket::default()
        },
    ];
    account
}

fn summary(findings: &[Finding]) -> Vec<(Check, String)> {
    let mut out: Vec<(Check, String)> = findings.iter().map(|f| (f.check, f.resource.clone())).collect();
    out.sort_by_key(|(check, resource)| (format!("{check:?}"), resource.clone()));
    out
}

#[test]
fn every_problem_is_reported_once_on_its_resource_and_correct_resources_are_silent() {
    let findings = run(&account());
    let mut expected = vec![
        (Check::ArchiveReadable, "s3://leaky-archive".to_owned()),
        (Check::DkimOff, "nodkim.example".to_owned()),
        (Check::FeedbackMissing, "orphan.example".to_owned()),
        (Check::FeedbackShadowed, "shadowed@good.example".to_owned()),
        (Check::IdentityPolicyAnySender, "public.example policy anyone".to_owned()),
        (Check::IdentityPolicyPublic, "public.example policy anyone".to_owned()),
        (Check::QueueNoRedrive, format!("https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/events")),
        (Check::QueuePolicyOpen, format!("https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/events")),
        (Check::RawDeliveryUnverifiable, format!("{}:events", topic_arn("events"))),
        (Check::RouteSenderUnknown, "route \"typo\"".to_owned()),
        (Check::SuppressionOff, "account suppression list".to_owned()),
        (Check::TopicPolicyOpen, topic_arn("events")),
        (Check::Unreadable, "ses:GetAccount".to_owned()),
    ];
    expected.sort_by_key(|(check, resource)| (format!("{check:?}"), resource.clone()));
    assert_eq!(summary(&findings), expected, "{findings:#?}");
    for f in &findings {
        assert_eq!(f.level, f.check.level());
        assert!(!f.message.is_empty() && !f.fix.is_empty(), "{f:?}");
    }
}

#[test]
fn a_correct_account_has_no_findings() {
    let mut account = account();
    let bad = ["orphan.example", "shadowed@good.example", "public.example", "nodkim.example"];
    account.identities.retain(|i| !bad.contains(&i.name.as_str()));
    account.topics.remove(&topic_arn("elsewhere"));
    for topic in account.topics.values_mut() {
        topic.policy = Some(SAFE_TOPIC_POLICY.to_owned());
        for s in &mut topic.subscriptions {
            s.raw_delivery = false;
        }
    }
    for queue in &mut account.queues {
        queue.policy = Some(SAFE_QUEUE_POLICY.to_owned());
        queue.redrive = true;
    }
    account.buckets.retain(|b| b.sink == "archive");
    account.suppression = Some(vec!["COMPLAINT".to_owned(), "BOUNCE".to_owned()]);
    account.unreadable.clear();
    account.route_sources.retain(|(route, _)| route != "typo");
    let findings = run(&account);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn feedback_is_missing_for_the_one_event_that_reaches_no_source() {
    let mut account = account();
    account.identities.retain(|i| i.name == "good.example");
    account.identities[0].complaint_topic = None;
    let findings = run(&account);
    let missing: Vec<&Finding> = findings.iter().filter(|f| f.check == Check::FeedbackMissing).collect();
    assert_eq!(missing.len(), 1, "{findings:#?}");
    assert!(missing[0].message.contains("complaint feedback"), "{}", missing[0].message);
    assert!(!missing[0].message.contains("bounce"), "{}", missing[0].message);
    assert!(missing[0].fix.contains("--notification-type Complaint"), "{}", missing[0].fix);
}

#[test]
fn a_shadowed_address_is_covered_by_its_configuration_set_and_a_disabled_destination_is_not() {
    let mut account = account();
    let shadowed = account.identities.iter_mut().find(|i| i.name == "shadowed@good.example").expect("the address");
    shadowed.default_configuration_set = Some("tracked".to_owned());
    assert!(!run(&account).iter().any(|f| f.resource == "shadowed@good.example"));
    account.configuration_sets.get_mut("tracked").expect("the set")[0].enabled = false;
    let findings = run(&account);
    assert!(findings.iter().any(|f| f.check == Check::FeedbackShadowed && f.resource == "shadowed@good.example"));
    assert!(findings.iter().any(|f| f.check == Check::FeedbackMissing && f.resource == "events.good.example"));
}

#[test]
fn an_unknown_suppression_list_or_queue_is_not_a_finding_of_its_own() {
    let mut account = account();
    account.suppression = None;
    for queue in &mut account.queues {
        queue.arn = None;
    }
    let findings = run(&account);
    assert!(
        !findings.iter().any(|f| matches!(f.check, Check::SuppressionOff | Check::QueueNoRedrive)),
        "{findings:#?}"
    );
}

#[test]
fn refused_reads_make_one_unreadable_finding_per_action_named_by_it() {
    let mut account = account();
    account.unreadable = (0..500)
        .map(|i| ("ses:GetEmailIdentity".to_owned(), format!("d{i}.example: AccessDenied")))
        .chain([("sqs:GetQueueAttributes".to_owned(), "AccessDenied".to_owned())])
        .collect();
    account.identities[0].policies.push(("broken".to_owned(), "{not json".to_owned()));
    let findings = run(&account);
    let unreadable: Vec<&Finding> = findings.iter().filter(|f| f.check == Check::Unreadable).collect();
    let resources: Vec<&str> = unreadable.iter().map(|f| f.resource.as_str()).collect();
    assert_eq!(
        resources,
        ["ses:GetEmailIdentity", "ses:GetEmailIdentity", "sqs:GetQueueAttributes"],
        "{unreadable:#?}"
    );
    assert!(
        unreadable[1].message.contains("d0.example: AccessDenied (and 499 more reads of it)"),
        "{}",
        unreadable[1].message
    );
    assert!(unreadable[0].message.contains("good.example policy broken"), "{}", unreadable[0].message);
}

#[test]
fn an_unconfirmed_subscription_does_not_wire_feedback() {
    let mut account = account();
    let feedback = account.topics.get_mut(&topic_arn("feedback")).expect("the topic");
    feedback.subscriptions[0].arn = "PendingConfirmation".to_owned();
    let findings = run(&account);
    assert!(
        findings.iter().any(|f| f.check == Check::FeedbackMissing && f.resource == "good.example"),
        "{findings:#?}"
    );
}

#[test]
fn a_failed_read_is_unreadable_and_not_a_storm_of_feedback_findings() {
    let mut account = account();
    account.topics.get_mut(&topic_arn("feedback")).expect("the topic").subscriptions_known = false;
    account.identities.iter_mut().find(|i| i.name == "orphan.example").expect("orphan").topics_known = false;
    let findings = run(&account);
    let missing: Vec<&Finding> = findings.iter().filter(|f| f.check == Check::FeedbackMissing).collect();
    assert!(missing.is_empty(), "{missing:#?}");
    // A shadowed address needs no subscription to be one.
    assert!(findings.iter().any(|f| f.check == Check::FeedbackShadowed));
    let mut account = self::account();
    account.queues[0].arn = None;
    assert!(!run(&account).iter().any(|f| f.check == Check::FeedbackMissing));
}

#[test]
fn a_service_principal_without_a_source_condition_opens_a_queue_and_a_topic() {
    let mut account = account();
    let unpinned = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}"#;
    account.queues[0].policy = Some(unpinned.to_owned());
    let ses_unpinned = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ses.amazonaws.com"},"Action":"SNS:Publish","Resource":"*"}]}"#;
    account.topics.get_mut(&topic_arn("feedback")).expect("the topic").policy = Some(ses_unpinned.to_owned());
    let findings = run(&account);
    assert!(findings.iter().any(|f| f.check == Check::QueuePolicyOpen && f.resource.ends_with("/feedback")));
    assert!(findings.iter().any(|f| f.check == Check::TopicPolicyOpen && f.resource == topic_arn("feedback")));
}
