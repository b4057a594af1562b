//! What the audit read from the account, as plain data: the checks
//! ([`super::checks`]) run on this snapshot, so they are tested without AWS,
//! and reading the account is one separate step that fills it.

use std::collections::BTreeMap;

use crate::signature::Mode;

/// The SES setup of one account and region, and the resources it and the
/// config point at.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub identities: Vec<Identity>,
    /// Configuration set name → its event destinations.
    pub configuration_sets: BTreeMap<String, Vec<EventDestination>>,
    /// Topic ARN → what was read of it.
    pub topics: BTreeMap<String, Topic>,
    /// The `[[sources]]` queues, in config order.
    pub queues: Vec<Queue>,
    /// The `s3` sinks' buckets.
    pub buckets: Vec<Bucket>,
    /// The account-level suppression list's reasons (`BOUNCE`, `COMPLAINT`);
    /// `None` when it could not be read.
    pub suppression: Option<Vec<String>>,
    /// Reads that were refused or are not supported: (API action, why).
    pub unreadable: Vec<(String, String)>,
    /// Routes' `source` patterns: (route name, pattern).
    pub route_sources: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// An address (`billing@example.com`) or a domain (`example.com`).
    pub name: String,
    /// Verified and allowed to send.
    pub can_send: bool,
    /// Whether its notification topics were read (else the feedback checks skip it).
    pub topics_known: bool,
    pub bounce_topic: Option<String>,
    pub complaint_topic: Option<String>,
    pub default_configuration_set: Option<String>,
    /// Whether DKIM signing is on (`None`: unknown).
    pub dkim_signing: Option<bool>,
    /// Sending-authorization policies: (name, document).
    pub policies: Vec<(String, String)>,
}

impl Identity {
    pub fn is_domain(&self) -> bool {
        !self.name.contains('@')
    }

    /// The domain part of an address identity.
    pub fn domain(&self) -> Option<&str> {
        self.name.rsplit_once('@').map(|(_, domain)| domain)
    }

    pub fn has_topics(&self) -> bool {
        self.bounce_topic.is_some() || self.complaint_topic.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct EventDestination {
    pub name: String,
    pub enabled: bool,
    /// Matching event types, upper case as SES writes them (`BOUNCE`, `COMPLAINT`, ...).
    pub events: Vec<String>,
    pub topic_arn: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Topic {
    /// Whether its subscriptions were read (else the feedback checks skip what it carries).
    pub subscriptions_known: bool,
    pub policy: Option<String>,
    pub subscriptions: Vec<Subscription>,
}

impl Subscription {
    /// A confirmed SQS subscription: one that delivers.
    pub fn delivers_to_queue(&self) -> bool {
        self.protocol == "sqs" && self.arn.starts_with("arn:")
    }
}

#[derive(Debug, Clone)]
pub struct Subscription {
    /// `PendingConfirmation` (or `Deleted`) instead of an ARN while it is not confirmed.
    pub arn: String,
    pub protocol: String,
    /// For `sqs`, the queue ARN.
    pub endpoint: String,
    pub raw_delivery: bool,
}

#[derive(Debug, Clone)]
pub struct Queue {
    /// The source's name.
    pub source: String,
    pub url: String,
    /// `None` when its attributes could not be read.
    pub arn: Option<String>,
    pub policy: Option<String>,
    pub redrive: bool,
    pub signature: Mode,
}

#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// The `s3` sink's name.
    pub sink: String,
    pub name: String,
    pub policy: Option<String>,
    /// `RestrictPublicBuckets` of the bucket's public access block.
    pub restrict_public_buckets: bool,
    /// `IgnorePublicAcls` of the bucket's public access block.
    pub ignore_public_acls: bool,
    /// Whether the ACL grants read to `AllUsers` or `AuthenticatedUsers`.
    pub acl_public_read: bool,
}
