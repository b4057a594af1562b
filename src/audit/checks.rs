//! The contract's checks, each a function over the [`Account`] snapshot
//! that gives its findings, each finding with a concrete fix.

use super::account::{Account, Identity, Subscription};
use super::policy::{Anyone, CALLER_KEYS, Policy, SEND_ACTIONS};
use super::{Check, Finding};
use crate::route::Pattern;
use crate::signature::Mode;

/// Every check, in the contract's order.
pub fn run(account: &Account) -> Vec<Finding> {
    let mut out = Vec::new();
    feedback(account, &mut out);
    identity_policies(account, &mut out);
    topics(account, &mut out);
    queues(account, &mut out);
    archives(account, &mut out);
    suppression(account, &mut out);
    route_senders(account, &mut out);
    dkim(account, &mut out);
    unreadable(account, &mut out);
    out
}

/// One finding per API action, however many reads of it failed: the first
/// failure, and how many more.
fn unreadable(account: &Account, out: &mut Vec<Finding>) {
    let mut actions: Vec<&str> = Vec::new();
    for (action, _) in &account.unreadable {
        if !actions.contains(&action.as_str()) {
            actions.push(action);
        }
    }
    for action in actions {
        let mut failures = account.unreadable.iter().filter(|(a, _)| a == action).map(|(_, why)| why);
        let first = failures.next().map_or("", String::as_str);
        let more = failures.count();
        let more = if more == 0 { String::new() } else { format!(" (and {more} more reads of it)") };
        out.push(Finding::new(
            Check::Unreadable,
            action,
            format!("the audit could not read this: {first}{more}; the checks that need it are incomplete"),
            format!("allow {action} to the identity the audit runs as (deploy/aws/audit-iam-policy.json lists what it reads)"),
        ));
    }
}

/// Whether `subscription` delivers to a source's queue.
fn feeds_a_source(account: &Account, subscription: &Subscription) -> bool {
    subscription.delivers_to_queue() && account.queues.iter().any(|q| q.arn.as_deref() == Some(&subscription.endpoint))
}

/// Whether `topic` has an SQS subscription to a source's queue.
fn reaches_a_source(account: &Account, topic: &str) -> bool {
    account.topics.get(topic).is_some_and(|t| t.subscriptions.iter().any(|s| feeds_a_source(account, s)))
}

/// Whether `event` (`BOUNCE`, `COMPLAINT`) of `identity` reaches a source
/// through its default configuration set's event destinations.
fn reaches_through_configuration_set(account: &Account, identity: &Identity, event: &str) -> bool {
    let Some(set) = &identity.default_configuration_set else { return false };
    account.configuration_sets.get(set).is_some_and(|destinations| {
        destinations.iter().any(|d| {
            d.enabled
                && d.events.iter().any(|e| e.eq_ignore_ascii_case(event))
                && d.topic_arn.as_deref().is_some_and(|t| reaches_a_source(account, t))
        })
    })
}

/// Whether everything that decides where `identity`'s feedback goes was read:
/// its topics, their subscriptions, its configuration set. A failed read is
/// its own `unreadable` finding, not a `feedback-missing` one.
fn wiring_known(account: &Account, identity: &Identity) -> bool {
    let topic_known = |arn: &String| account.topics.get(arn).is_some_and(|t| t.subscriptions_known);
    let set_known = identity.default_configuration_set.as_ref().is_none_or(|set| {
        account
            .configuration_sets
            .get(set)
            .is_some_and(|ds| ds.iter().filter_map(|d| d.topic_arn.as_ref()).all(topic_known))
    });
    identity.topics_known && identity.bounce_topic.iter().chain(&identity.complaint_topic).all(topic_known) && set_known
}

fn feedback(account: &Account, out: &mut Vec<Finding>) {
    if account.queues.iter().any(|q| q.arn.is_none()) {
        return;
    }
    for identity in account.identities.iter().filter(|i| i.can_send && wiring_known(account, i)) {
        let domain = identity.domain().and_then(|d| account.identities.iter().find(|i| i.name.eq_ignore_ascii_case(d)));
        if domain.is_some_and(|d| !d.topics_known) {
            continue;
        }
        let through_set = |event| reaches_through_configuration_set(account, identity, event);
        if !identity.is_domain() && !identity.has_topics() && domain.is_some_and(Identity::has_topics) {
            if through_set("BOUNCE") && through_set("COMPLAINT") {
                continue;
            }
            let domain = domain.map_or("", |d| d.name.as_str());
            out.push(Finding::new(
                Check::FeedbackShadowed,
                identity.name.clone(),
                format!(
                    "this address is an identity of its own with no notification topics, so SES does not use those of {domain}: its bounces and complaints go nowhere"
                ),
                format!(
                    "aws ses set-identity-notification-topic --identity {} --notification-type Bounce --sns-topic <the topic of {domain}> (and again for Complaint), or delete the address identity",
                    identity.name
                ),
            ));
            continue;
        }
        let mut missing = Vec::new();
        for (event, topic) in [("BOUNCE", &identity.bounce_topic), ("COMPLAINT", &identity.complaint_topic)] {
            let by_topic = topic.as_deref().is_some_and(|t| reaches_a_source(account, t));
            if !by_topic && !through_set(event) {
                missing.push(event.to_ascii_lowercase());
            }
        }
        if !missing.is_empty() {
            let what = missing.join(" and ");
            out.push(Finding::new(
                Check::FeedbackMissing,
                identity.name.clone(),
                format!("its {what} feedback reaches no [[sources]] queue (no notification topic or configuration-set destination subscribed by one)"),
                format!(
                    "aws ses set-identity-notification-topic --identity {} --notification-type {} --sns-topic <a topic a source's queue subscribes to>",
                    identity.name,
                    if missing.len() == 2 { "Bounce (and Complaint)" } else if missing[0] == "bounce" { "Bounce" } else { "Complaint" }
                ),
            ));
        }
    }
}

fn identity_policies(account: &Account, out: &mut Vec<Finding>) {
    for identity in &account.identities {
        for (name, text) in &identity.policies {
            let resource = format!("{} policy {name}", identity.name);
            let policy = match Policy::parse(text) {
                Ok(p) => p,
                Err(why) => {
                    // Not a refused read, but a read the checks could not use.
                    out.push(Finding::new(
                        Check::Unreadable,
                        "ses:GetEmailIdentity",
                        format!("{resource} could not be understood ({why}); it was not checked"),
                        "review the policy by hand: aws sesv2 get-email-identity-policies --email-identity <identity>",
                    ));
                    continue;
                }
            };
            let mut open: Vec<String> = Vec::new();
            for action in SEND_ACTIONS {
                for sid in policy.open_to_anyone(action, CALLER_KEYS) {
                    if !open.contains(&sid) {
                        open.push(sid);
                    }
                }
            }
            if !open.is_empty() {
                out.push(Finding::new(
                    Check::IdentityPolicyPublic,
                    resource.clone(),
                    format!("{} lets any AWS account send as {} (principal * without an account, organization or ARN condition)", open.join(", "), identity.name),
                    r#"name the sending accounts as principals, or add "Condition": {"StringEquals": {"aws:PrincipalOrgID": "<your organization id>"}}"#,
                ));
            }
            if identity.is_domain() {
                let any = policy.any_from_address();
                if !any.is_empty() {
                    out.push(Finding::new(
                        Check::IdentityPolicyAnySender,
                        resource,
                        format!("{} lets its principals send from any address of {}", any.join(", "), identity.name),
                        format!(
                            r#"add "Condition": {{"StringLike": {{"ses:FromAddress": "no-reply@{}"}}}} (the addresses that principal may use)"#,
                            identity.name
                        ),
                    ));
                }
            }
        }
    }
}

fn topics(account: &Account, out: &mut Vec<Finding>) {
    for (arn, topic) in &account.topics {
        let fed: Vec<_> = topic.subscriptions.iter().filter(|s| feeds_a_source(account, s)).collect();
        if fed.is_empty() {
            continue;
        }
        if let Some(text) = &topic.policy {
            if let Some(policy) = parsed(text, "sns:GetTopicAttributes", arn, out) {
                let keys = ["aws:sourceaccount", "aws:sourceowner", "aws:sourcearn"];
                let open = policy.open_to(Anyone::AnyAccountOrService, "sns:Publish", &keys);
                if !open.is_empty() {
                    out.push(Finding::new(
                        Check::TopicPolicyOpen,
                        arn.clone(),
                        format!("{} lets any principal publish to this feedback topic, so anyone can forge feedback", open.join(", ")),
                        r#"restrict Publish to SES: "Principal": {"Service": "ses.amazonaws.com"}, "Condition": {"StringEquals": {"AWS:SourceAccount": "<your account id>"}}"#,
                    ));
                }
            }
        }
        for subscription in fed.iter().filter(|s| s.raw_delivery) {
            let queue = account.queues.iter().find(|q| q.arn.as_deref() == Some(subscription.endpoint.as_str()));
            if let Some(queue) = queue.filter(|q| q.signature == Mode::Require) {
                out.push(Finding::new(
                    Check::RawDeliveryUnverifiable,
                    subscription.arn.clone(),
                    format!(
                        "raw message delivery to source {:?}, which requires signatures: raw bodies carry none, so every message would be refused",
                        queue.source
                    ),
                    format!(
                        "aws sns set-subscription-attributes --subscription-arn {} --attribute-name RawMessageDelivery --attribute-value false, or set signature = \"off\" on source {:?}",
                        subscription.arn, queue.source
                    ),
                ));
            }
        }
    }
}

fn queues(account: &Account, out: &mut Vec<Finding>) {
    for queue in &account.queues {
        let policy = queue.policy.as_deref().and_then(|text| parsed(text, "sqs:GetQueueAttributes", &queue.url, out));
        if let Some(policy) = policy {
            let open =
                policy.open_to(Anyone::AnyAccountOrService, "sqs:SendMessage", &["aws:sourcearn", "aws:sourceaccount"]);
            if !open.is_empty() {
                out.push(Finding::new(
                    Check::QueuePolicyOpen,
                    queue.url.clone(),
                    format!("{} lets any principal send to the queue of source {:?}", open.join(", "), queue.source),
                    r#"add "Condition": {"ArnEquals": {"aws:SourceArn": "<the feedback topic ARN>"}} to the statement"#,
                ));
            }
        }
        if queue.arn.is_some() && !queue.redrive {
            out.push(Finding::new(
                Check::QueueNoRedrive,
                queue.url.clone(),
                format!("the queue of source {:?} has no dead-letter queue: a message that keeps failing is retried until it expires", queue.source),
                format!(
                    r#"aws sqs set-queue-attributes --queue-url {} --attributes '{{"RedrivePolicy":"{{\"deadLetterTargetArn\":\"<dead-letter queue ARN>\",\"maxReceiveCount\":\"10\"}}"}}'"#,
                    queue.url
                ),
            ));
        }
    }
}

fn archives(account: &Account, out: &mut Vec<Finding>) {
    for bucket in &account.buckets {
        let mut why = Vec::new();
        if !bucket.restrict_public_buckets {
            let resource = format!("s3://{}", bucket.name);
            if let Some(policy) =
                bucket.policy.as_deref().and_then(|text| parsed(text, "s3:GetBucketPolicy", &resource, out))
            {
                for action in ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"] {
                    for sid in policy.open_to_anyone(action, CALLER_KEYS) {
                        why.push(format!("policy statement {sid} allows {action} to anyone"));
                    }
                }
            }
        }
        if bucket.acl_public_read && !bucket.ignore_public_acls {
            why.push("its ACL grants read to all users".to_owned());
        }
        if !why.is_empty() {
            out.push(Finding::new(
                Check::ArchiveReadable,
                format!("s3://{}", bucket.name),
                format!("the archive of sink {:?} is readable: {}", bucket.sink, why.join("; ")),
                format!(
                    "aws s3api put-public-access-block --bucket {} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
                    bucket.name
                ),
            ));
        }
    }
}

/// A policy document, or `None` after an `unreadable` finding saying it could not be understood.
fn parsed(text: &str, action: &str, resource: &str, out: &mut Vec<Finding>) -> Option<Policy> {
    match Policy::parse(text) {
        Ok(policy) => Some(policy),
        Err(why) => {
            out.push(Finding::new(
                Check::Unreadable,
                action,
                format!("the policy of {resource} could not be understood ({why}); it was not checked"),
                format!("review the policy of {resource} by hand"),
            ));
            None
        }
    }
}

fn suppression(account: &Account, out: &mut Vec<Finding>) {
    let Some(reasons) = &account.suppression else { return };
    let missing: Vec<&str> = ["BOUNCE", "COMPLAINT"]
        .into_iter()
        .filter(|r| !reasons.iter().any(|have| have.eq_ignore_ascii_case(r)))
        .collect();
    if !missing.is_empty() {
        out.push(Finding::new(
            Check::SuppressionOff,
            "account suppression list",
            format!("the account-level suppression list does not cover {}", missing.join(" and ")),
            "aws sesv2 put-account-suppression-attributes --suppressed-reasons BOUNCE COMPLAINT",
        ));
    }
}

/// Whether a route's `source` pattern can match an address some identity can send as.
fn sender_known(pattern: &Pattern, identities: &[Identity]) -> bool {
    let domain_part = pattern.as_str().rsplit_once('@').map(|(_, d)| (Pattern::new(d), d.to_ascii_lowercase()));
    identities.iter().filter(|i| i.can_send).any(|i| {
        let Some((part, literal)) = domain_part.as_ref().filter(|_| i.is_domain()) else {
            return pattern.is_match(&i.name);
        };
        // A verified domain also sends for its subdomains.
        part.is_match(&i.name) || literal.ends_with(&format!(".{}", i.name.to_ascii_lowercase()))
    })
}

fn route_senders(account: &Account, out: &mut Vec<Finding>) {
    for (route, text) in &account.route_sources {
        let pattern = Pattern::new(text);
        if pattern.is_any() || sender_known(&pattern, &account.identities) {
            continue;
        }
        out.push(Finding::new(
            Check::RouteSenderUnknown,
            format!("route {route:?}"),
            format!("its source pattern {text:?} matches no address a verified identity can send as: a typo, or a missing identity"),
            "correct the pattern, or verify the identity: aws sesv2 create-email-identity --email-identity <address or domain>",
        ));
    }
}

fn dkim(account: &Account, out: &mut Vec<Finding>) {
    for identity in account.identities.iter().filter(|i| i.is_domain() && i.can_send && i.dkim_signing == Some(false)) {
        out.push(Finding::new(
            Check::DkimOff,
            identity.name.clone(),
            "the domain sends without DKIM signatures: receivers trust its mail less and DMARC cannot align on DKIM",
            format!(
                "aws sesv2 put-email-identity-dkim-attributes --email-identity {} --signing-enabled",
                identity.name
            ),
        ));
    }
}

#[cfg(test)]
mod tests;
