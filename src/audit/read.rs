//! Reads the [`Account`] snapshot with read-only calls (`List*`, `Get*`):
//! SES (v1 for notification topics, v2 for the rest), the SNS topics the
//! identities and configuration sets name, the sources' SQS queues and the
//! `s3` sinks' buckets. Lists are paginated; per-identity reads run at most
//! [`CONCURRENCY`] at a time, with the SDK's retries for throttling. A read
//! that is refused becomes an `unreadable` entry naming its action.

use std::collections::BTreeSet;

use aws_sdk_sesv2::error::ProvideErrorMetadata;
use futures_util::StreamExt as _;

use super::account::{Account, Bucket, EventDestination, Identity, Queue, Subscription, Topic};
use crate::aws::describe;
use crate::config::Config;
use crate::config::sink::SinkKind;
use crate::route::Key;
use aws_sdk_sqs::types::QueueAttributeName as Name;

/// Reads at once, per kind of read.
pub const CONCURRENCY: usize = 16;

/// The SDK clients the audit reads with.
pub struct Clients {
    pub ses: aws_sdk_ses::Client,
    pub sesv2: aws_sdk_sesv2::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Clients {
        Clients {
            ses: aws_sdk_ses::Client::new(sdk),
            sesv2: aws_sdk_sesv2::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            s3: crate::aws::s3_client(sdk),
        }
    }
}

/// The account could not be read at all (its identities cannot be listed).
#[derive(Debug)]
pub struct Unreadable(pub String);

/// Reads everything the checks need.
pub async fn account(clients: &Clients, config: &Config) -> Result<Account, Unreadable> {
    let mut account = Account { route_sources: route_sources(config), ..Account::default() };
    let names = list_identities(clients).await?;
    account.identities = futures_util::stream::iter(names)
        .map(|(name, can_send)| identity(clients, name, can_send))
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|(identity, unreadable)| {
            account.unreadable.extend(unreadable);
            identity
        })
        .collect();
    notification_topics(clients, &mut account).await;
    configuration_sets(clients, &mut account).await;
    suppression(clients, &mut account).await;
    topics(clients, &mut account).await;
    queues(clients, config, &mut account).await;
    buckets(clients, config, &mut account).await;
    Ok(account)
}

fn route_sources(config: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for route in config.router.routes() {
        for (key, patterns) in route.matcher.keys() {
            if key == Key::Source {
                out.extend(patterns.iter().map(|p| (route.name.clone(), p.as_str().to_owned())));
            }
        }
    }
    out
}

/// Every identity with whether it may send: verified for sending and sending enabled.
async fn list_identities(clients: &Clients) -> Result<Vec<(String, bool)>, Unreadable> {
    let pages = clients.sesv2.list_email_identities().page_size(1000).into_paginator().send();
    let pages: Vec<_> =
        pages.try_collect().await.map_err(|e| Unreadable(format!("ses:ListEmailIdentities: {}", describe(&e))))?;
    Ok(pages
        .into_iter()
        .flat_map(|page| page.email_identities.unwrap_or_default())
        .filter_map(|i| {
            let can_send = i.sending_enabled
                && i.verification_status
                    .as_ref()
                    .is_none_or(|s| *s == aws_sdk_sesv2::types::VerificationStatus::Success);
            i.identity_name.map(|name| (name, can_send))
        })
        .collect())
}

async fn identity(clients: &Clients, name: String, can_send: bool) -> (Identity, Vec<(String, String)>) {
    let mut identity = Identity { name, can_send, ..Identity::default() };
    let mut unreadable = Vec::new();
    match clients.sesv2.get_email_identity().email_identity(&identity.name).send().await {
        Ok(out) => {
            identity.can_send = identity.can_send && out.verified_for_sending_status;
            identity.default_configuration_set = out.configuration_set_name;
            // SES signs only when signing is on and the DKIM records verified.
            identity.dkim_signing = out
                .dkim_attributes
                .map(|d| d.signing_enabled && d.status.is_none_or(|s| s == aws_sdk_sesv2::types::DkimStatus::Success));
            let mut policies: Vec<(String, String)> = out.policies.unwrap_or_default().into_iter().collect();
            policies.sort();
            identity.policies = policies;
        }
        Err(e) => unreadable.push(("ses:GetEmailIdentity".to_owned(), format!("{}: {}", identity.name, describe(&e)))),
    }
    (identity, unreadable)
}

/// Bounce and complaint topics, from SES v1 (v2 does not show them), 100
/// identities a call, one call at a time (SES v1 allows about one a second;
/// the SDK's retries absorb the throttling).
async fn notification_topics(clients: &Clients, account: &mut Account) {
    let names: Vec<String> = account.identities.iter().map(|i| i.name.clone()).collect();
    for chunk in names.chunks(100) {
        let call = clients.ses.get_identity_notification_attributes().set_identities(Some(chunk.to_vec()));
        match call.send().await {
            Ok(out) => {
                for (name, attributes) in out.notification_attributes {
                    let found = account.identities.iter_mut().find(|i| i.name.eq_ignore_ascii_case(&name));
                    if let Some(identity) = found {
                        identity.topics_known = true;
                        identity.bounce_topic = Some(attributes.bounce_topic).filter(|t| !t.is_empty());
                        identity.complaint_topic = Some(attributes.complaint_topic).filter(|t| !t.is_empty());
                    }
                }
            }
            Err(e) => {
                account.unreadable.push(("ses:GetIdentityNotificationAttributes".to_owned(), describe(&e)));
            }
        }
    }
}

async fn configuration_sets(clients: &Clients, account: &mut Account) {
    let sets: BTreeSet<String> =
        account.identities.iter().filter_map(|i| i.default_configuration_set.clone()).collect();
    for set in sets {
        match clients.sesv2.get_configuration_set_event_destinations().configuration_set_name(&set).send().await {
            Ok(out) => {
                let destinations = out
                    .event_destinations
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| EventDestination {
                        name: d.name,
                        enabled: d.enabled,
                        events: d.matching_event_types.iter().map(|t| t.as_str().to_owned()).collect(),
                        topic_arn: d.sns_destination.map(|s| s.topic_arn),
                    })
                    .collect();
                account.configuration_sets.insert(set, destinations);
            }
            Err(e) => account
                .unreadable
                .push(("ses:GetConfigurationSetEventDestinations".to_owned(), format!("{set}: {}", describe(&e)))),
        }
    }
}

async fn suppression(clients: &Clients, account: &mut Account) {
    match clients.sesv2.get_account().send().await {
        Ok(out) => {
            account.suppression = Some(
                out.suppression_attributes
                    .and_then(|s| s.suppressed_reasons)
                    .unwrap_or_default()
                    .iter()
                    .map(|r| r.as_str().to_owned())
                    .collect(),
            );
        }
        Err(e) => account.unreadable.push(("ses:GetAccount".to_owned(), describe(&e))),
    }
}

async fn topics(clients: &Clients, account: &mut Account) {
    let mut arns: BTreeSet<String> = BTreeSet::new();
    for i in &account.identities {
        arns.extend(i.bounce_topic.iter().chain(&i.complaint_topic).cloned());
    }
    for destinations in account.configuration_sets.values() {
        arns.extend(destinations.iter().filter_map(|d| d.topic_arn.clone()));
    }
    let reads = arns.into_iter().map(|arn| async move {
        let (topic, unreadable) = topic(clients, &arn).await;
        (arn, topic, unreadable)
    });
    let results: Vec<_> = futures_util::stream::iter(reads).buffered(CONCURRENCY).collect().await;
    for (arn, topic, unreadable) in results {
        account.unreadable.extend(unreadable);
        account.topics.insert(arn, topic);
    }
}

async fn topic(clients: &Clients, arn: &str) -> (Topic, Vec<(String, String)>) {
    let mut topic = Topic::default();
    let mut unreadable = Vec::new();
    match clients.sns.get_topic_attributes().topic_arn(arn).send().await {
        Ok(out) => topic.policy = out.attributes.and_then(|mut a| a.remove("Policy")).filter(|p| !p.is_empty()),
        Err(e) => unreadable.push(("sns:GetTopicAttributes".to_owned(), format!("{arn}: {}", describe(&e)))),
    }
    let pages: Result<Vec<_>, _> =
        clients.sns.list_subscriptions_by_topic().topic_arn(arn).into_paginator().send().try_collect().await;
    match pages {
        Ok(pages) => {
            topic.subscriptions_known = true;
            for s in pages.into_iter().flat_map(|p| p.subscriptions.unwrap_or_default()) {
                let (Some(arn), Some(protocol), Some(endpoint)) = (s.subscription_arn, s.protocol, s.endpoint) else {
                    continue;
                };
                // A subscription still pending confirmation has no ARN to read.
                let mut raw_delivery = false;
                if arn.starts_with("arn:") && protocol == "sqs" {
                    match clients.sns.get_subscription_attributes().subscription_arn(&arn).send().await {
                        Ok(out) => {
                            raw_delivery = out
                                .attributes
                                .and_then(|a| a.get("RawMessageDelivery").map(|v| v.eq_ignore_ascii_case("true")))
                                .unwrap_or(false);
                        }
                        Err(e) => unreadable
                            .push(("sns:GetSubscriptionAttributes".to_owned(), format!("{arn}: {}", describe(&e)))),
                    }
                }
                topic.subscriptions.push(Subscription { arn, protocol, endpoint, raw_delivery });
            }
        }
        Err(e) => unreadable.push(("sns:ListSubscriptionsByTopic".to_owned(), format!("{arn}: {}", describe(&e)))),
    }
    (topic, unreadable)
}

async fn queues(clients: &Clients, config: &Config, account: &mut Account) {
    for source in &config.sources {
        let mut queue = Queue {
            source: source.name.clone(),
            url: source.queue_url.clone(),
            arn: None,
            policy: None,
            redrive: false,
            signature: source.signature,
        };
        let read = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&source.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await;
        match read {
            Ok(out) => {
                let mut attributes = out.attributes.unwrap_or_default();
                queue.arn = attributes.remove(&Name::QueueArn);
                queue.policy = attributes.remove(&Name::Policy).filter(|p| !p.is_empty());
                queue.redrive = attributes.get(&Name::RedrivePolicy).is_some_and(|r| !r.is_empty());
            }
            Err(e) => account
                .unreadable
                .push(("sqs:GetQueueAttributes".to_owned(), format!("{}: {}", source.queue_url, describe(&e)))),
        }
        account.queues.push(queue);
    }
}

async fn buckets(clients: &Clients, config: &Config, account: &mut Account) {
    for sink in &config.sinks {
        let SinkKind::S3(s3) = &sink.kind else { continue };
        let mut bucket = Bucket { sink: sink.name.clone(), name: s3.bucket.clone(), ..Bucket::default() };
        let mut unreadable = |action: &str, e: String| {
            account.unreadable.push((action.to_owned(), format!("{}: {e}", s3.bucket)));
        };
        match clients.s3.get_bucket_policy().bucket(&s3.bucket).send().await {
            Ok(out) => bucket.policy = out.policy,
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => {}
            Err(e) => unreadable("s3:GetBucketPolicy", describe(&e)),
        }
        match clients.s3.get_public_access_block().bucket(&s3.bucket).send().await {
            Ok(out) => {
                let block = out.public_access_block_configuration;
                bucket.restrict_public_buckets =
                    block.as_ref().and_then(|b| b.restrict_public_buckets).unwrap_or(false);
                bucket.ignore_public_acls = block.as_ref().and_then(|b| b.ignore_public_acls).unwrap_or(false);
            }
            Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => {}
            Err(e) => unreadable("s3:GetBucketPublicAccessBlock", describe(&e)),
        }
        match clients.s3.get_bucket_acl().bucket(&s3.bucket).send().await {
            Ok(out) => {
                bucket.acl_public_read = out.grants.unwrap_or_default().iter().any(|g| {
                    let everyone = g.grantee.as_ref().and_then(|g| g.uri.as_deref()).is_some_and(|uri| {
                        uri.ends_with("/global/AllUsers") || uri.ends_with("/global/AuthenticatedUsers")
                    });
                    let reads = g.permission.as_ref().is_some_and(|p| {
                        matches!(p, aws_sdk_s3::types::Permission::Read | aws_sdk_s3::types::Permission::FullControl)
                    });
                    everyone && reads
                });
            }
            Err(e) => unreadable("s3:GetBucketAcl", describe(&e)),
        }
        account.buckets.push(bucket);
    }
}
