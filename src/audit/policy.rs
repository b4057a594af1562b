//! IAM-style resource policies (SES sending authorization, SNS topic, SQS
//! queue and S3 bucket policies) read as data, and the two questions the
//! audit asks of them: who outside the account may do an action, and may a
//! sender use any From address. Pure functions over the policy JSON.
//!
//! The reading is deliberately conservative in one direction only: a
//! statement counts as restricting when its condition pins the caller
//! (account, organization, ARN, VPC endpoint, a source IP range narrower
//! than the whole internet) or the sender (`ses:FromAddress`) with values
//! that are not wildcards. `...IfExists` operators do not restrict (a caller
//! without the key passes), nor do negated operators on an `Allow`.

use serde_json::Value;
use wildmatch::WildMatch;

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement. `principals` holds the AWS principals (`"*"` for
/// everyone, as written in `Principal: "*"` or `{"AWS": "*"}`) and service
/// principals (`ses.amazonaws.com`); with `not_principal` they are the ones
/// excluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principals: Vec<String>,
    pub not_principal: bool,
    pub actions: Vec<String>,
    pub not_action: bool,
    /// `Resource` (or, with `not_resource`, `NotResource`) as written.
    pub resources: Vec<String>,
    pub not_resource: bool,
    pub conditions: Vec<Condition>,
}

/// One `operator: { key: values }` entry of a statement's `Condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// As written, e.g. `StringLike`, `ForAllValues:StringNotLike`.
    pub operator: String,
    /// Lower-cased: condition keys are case-insensitive.
    pub key: String,
    pub values: Vec<String>,
}

/// Condition keys that pin who is calling, by account, organization or ARN,
/// or by source network: a statement restricted
/// by one of these (with a positive operator) is not open to the world.
/// (`aws:SourceIp` counts when its ranges are private or at least a /16.)
pub const CALLER_KEYS: &[&str] = &[
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:sourceip",
];

/// The sending actions of SES v1 and v2.
pub const SEND_ACTIONS: &[&str] =
    &["ses:SendEmail", "ses:SendRawEmail", "ses:SendTemplatedEmail", "ses:SendBulkTemplatedEmail", "ses:SendBulkEmail"];

/// Who counts as "anyone" for a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anyone {
    /// Principal `*` (or `{"AWS": "*"}`) and `NotPrincipal`.
    AnyAccount,
    /// Those, and AWS service principals (`sns.amazonaws.com`): a service
    /// acts for every account that uses it, so without a condition on the
    /// source it delivers for strangers too (the confused deputy).
    AnyAccountOrService,
}

impl Policy {
    /// Reads a policy document; the error names what is malformed.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(items)) => items.iter().map(Statement::read).collect::<Result<_, _>>()?,
            Some(item @ Value::Object(_)) => vec![Statement::read(item)?],
            Some(_) => return Err("Statement is neither an object nor a list".to_owned()),
            None => Vec::new(),
        };
        Ok(Policy { statements })
    }

    /// The `Allow` statements that let anyone (any AWS account) do `action`
    /// without a condition that pins the caller by one of `keys`, and that no
    /// `Deny` statement of the policy takes back for callers outside such a
    /// condition. Their Sids (or `statement N`) name them in findings.
    pub fn open_to_anyone(&self, action: &str, keys: &[&str]) -> Vec<String> {
        self.open_to(Anyone::AnyAccount, action, keys)
    }

    /// [`Policy::open_to_anyone`], with `anyone` saying whether service principals count.
    pub fn open_to(&self, anyone: Anyone, action: &str, keys: &[&str]) -> Vec<String> {
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.effect == Effect::Allow && s.is_open_to(anyone) && s.covers(action) && !s.restricts(keys)
            })
            .filter(|(_, allow)| {
                !self.statements.iter().any(|deny| {
                    deny.effect == Effect::Deny
                        && deny.covers(action)
                        && deny.denies_outsiders(keys)
                        && deny.covers_resources_of(allow)
                })
            })
            .map(|(i, s)| s.name(i))
            .collect()
    }

    /// The `Allow` statements granting a sending action ([`SEND_ACTIONS`])
    /// with no restriction on `ses:FromAddress`, unless a `Deny` of that
    /// action refuses the From addresses outside a list (`StringNotLike` /
    /// `StringNotEquals` on `ses:FromAddress`, and no other condition).
    pub fn any_from_address(&self) -> Vec<String> {
        let mut out = Vec::new();
        for action in SEND_ACTIONS {
            // A Deny of the other From addresses, on its own condition, closes this action.
            let denied = self.statements.iter().any(|s| {
                s.effect == Effect::Deny
                    && s.covers(action)
                    && !s.conditions.is_empty()
                    && s.conditions.iter().all(|c| c.key == "ses:fromaddress" && c.is_negated() && c.pins())
            });
            if denied {
                continue;
            }
            for (i, s) in self.statements.iter().enumerate() {
                let open = s.effect == Effect::Allow
                    && s.covers(action)
                    && !s.conditions.iter().any(|c| c.key == "ses:fromaddress" && c.is_positive() && c.pins());
                if open && !out.contains(&s.name(i)) {
                    out.push(s.name(i));
                }
            }
        }
        out
    }
}

impl Statement {
    fn read(item: &Value) -> Result<Statement, String> {
        let Value::Object(map) = item else { return Err("a statement is not an object".to_owned()) };
        let effect = match map.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(format!("Effect is {other:?}, not \"Allow\" or \"Deny\"")),
        };
        let (principal, not_principal) = match (map.get("Principal"), map.get("NotPrincipal")) {
            (Some(p), None) => (p, false),
            (None, Some(p)) => (p, true),
            (None, None) => (&Value::Null, false),
            (Some(_), Some(_)) => return Err("a statement has both Principal and NotPrincipal".to_owned()),
        };
        let (action, not_action) = match (map.get("Action"), map.get("NotAction")) {
            (Some(a), None) => (a, false),
            (None, Some(a)) => (a, true),
            _ => return Err("a statement needs exactly one of Action and NotAction".to_owned()),
        };
        let (resource, not_resource) = match (map.get("Resource"), map.get("NotResource")) {
            (Some(r), None) => (Some(r), false),
            (None, Some(r)) => (Some(r), true),
            _ => (None, false),
        };
        let resources = match resource {
            Some(r) => strings(r).ok_or("Resource is neither a string nor a list of strings")?,
            None => vec!["*".to_owned()],
        };
        Ok(Statement {
            sid: map.get("Sid").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned),
            effect,
            principals: principals(principal)?,
            not_principal,
            actions: strings(action).ok_or("Action is neither a string nor a list of strings")?,
            not_action,
            resources,
            not_resource,
            conditions: conditions(map.get("Condition"))?,
        })
    }

    fn name(&self, index: usize) -> String {
        self.sid.clone().unwrap_or_else(|| format!("statement {}", index + 1))
    }

    /// Whether the statement is about everyone: `*` among its principals,
    /// or a `NotPrincipal` (everyone but those listed).
    pub fn is_public(&self) -> bool {
        self.not_principal || self.principals.iter().any(|p| p == "*")
    }

    fn is_open_to(&self, anyone: Anyone) -> bool {
        self.is_public()
            || (anyone == Anyone::AnyAccountOrService && self.principals.iter().any(|p| p.ends_with(".amazonaws.com")))
    }

    /// Whether the statement applies to `action` (IAM wildcards, case-insensitive).
    pub fn covers(&self, action: &str) -> bool {
        let listed = self.actions.iter().any(|pattern| WildMatch::new_case_insensitive(pattern).matches(action));
        listed != self.not_action
    }

    /// Whether a positive condition on one of `keys` pins the caller.
    fn restricts(&self, keys: &[&str]) -> bool {
        self.conditions.iter().any(|c| keys.contains(&c.key.as_str()) && c.is_positive() && c.pins())
    }

    /// Whether every resource `other` names is one of this statement's
    /// (IAM wildcards; a `NotResource` on either side needs `*` here).
    fn covers_resources_of(&self, other: &Statement) -> bool {
        if self.not_resource {
            return false;
        }
        let mine = |r: &str| self.resources.iter().any(|p| WildMatch::new(p).matches(r));
        if other.not_resource {
            mine("*") && self.resources.iter().any(|p| p == "*")
        } else {
            other.resources.iter().all(|r| mine(r))
        }
    }

    /// Whether this `Deny` refuses everyone outside a pinned caller set
    /// (`StringNotEquals aws:SourceAccount`, `NotIpAddress aws:SourceIp`, ...):
    /// public, over every resource, and with no other condition (conditions
    /// all have to hold: another one would let outsiders through when it is false).
    fn denies_outsiders(&self, keys: &[&str]) -> bool {
        self.is_public()
            && !self.conditions.is_empty()
            && self.conditions.iter().all(|c| keys.contains(&c.key.as_str()) && c.is_negated() && c.pins())
    }
}

impl Condition {
    fn base(&self) -> &str {
        let op = self.operator.rsplit(':').next().unwrap_or(&self.operator);
        op.strip_suffix("IfExists").unwrap_or(op)
    }

    fn if_exists(&self) -> bool {
        self.operator.ends_with("IfExists")
    }

    /// `StringEquals`, `StringLike`, `ArnLike`, `IpAddress`, ... without
    /// `IfExists` or `ForAllValues:` (both hold when the key is absent).
    fn is_positive(&self) -> bool {
        !self.if_exists()
            && !self.operator.starts_with("ForAllValues:")
            && !self.is_negated()
            && !matches!(self.base(), "Null" | "Bool")
    }

    /// `StringNotEquals`, `StringNotLike`, `ArnNotLike`, `NotIpAddress`, ...
    fn is_negated(&self) -> bool {
        let base = self.base();
        base.contains("Not") && base != "Null"
    }

    /// Whether the values narrow the key to known callers: accounts and
    /// organizations without wildcards, ARNs whose account is not a
    /// wildcard, source IPs in private ranges only; other keys (such as
    /// `ses:FromAddress`) any value but a bare wildcard.
    fn pins(&self) -> bool {
        !self.values.is_empty() && self.values.iter().all(|v| pins_value(&self.key, v.trim()))
    }
}

fn pins_value(key: &str, value: &str) -> bool {
    let wild = |s: &str| s.contains(['*', '?']);
    match key {
        "aws:sourceaccount" | "aws:sourceowner" | "aws:principalaccount" => {
            value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
        }
        "aws:sourceorgid" | "aws:principalorgid" => !value.is_empty() && !wild(value),
        "aws:sourceorgpaths" | "aws:principalorgpaths" => {
            value.split('/').next().is_some_and(|org| !org.is_empty() && !wild(org))
        }
        "aws:sourcearn" | "aws:principalarn" => {
            let fields: Vec<&str> = value.splitn(6, ':').collect();
            fields.len() == 6 && fields[0] == "arn" && !fields[4].is_empty() && !wild(fields[4])
        }
        "aws:sourceip" => is_narrow_range(value),
        _ => !value.is_empty() && value.chars().any(|c| c != '*' && c != '?'),
    }
}

/// A source IP range that names a network, not a swath of the internet:
/// inside `10/8`, `172.16/12`, `192.168/16` or `fc00::/7`, or at least a `/16` (IPv4)
/// or `/48` (IPv6). `3.0.0.0/8` (much of EC2) or `0.0.0.0/1` do not.
fn is_narrow_range(value: &str) -> bool {
    let (addr, len) = value.split_once('/').unwrap_or((value, ""));
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else { return false };
    let full = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = if len.is_empty() { full } else { len.parse().unwrap_or(0) };
    let narrow = if ip.is_ipv4() { len >= 16 } else { len >= 48 };
    (narrow && len <= full) || is_private_range(value)
}

/// An address or CIDR range inside `10/8`, `172.16/12`, `192.168/16` or `fc00::/7`.
fn is_private_range(value: &str) -> bool {
    let (addr, len) = value.split_once('/').unwrap_or((value, ""));
    let Ok(addr) = addr.parse::<std::net::IpAddr>() else { return false };
    let len: Option<u8> = if len.is_empty() { None } else { len.parse().ok() };
    match addr {
        std::net::IpAddr::V4(v4) => {
            // The range stays private only as long as its prefix keeps the private block's.
            let min = match v4.octets()[0] {
                10 => 8,
                172 => 12,
                _ => 16,
            };
            v4.is_private() && len.is_none_or(|l| (min..=32).contains(&l))
        }
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00 && len.is_none_or(|l| (7..=128).contains(&l)),
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// A condition's values: strings, booleans and numbers, bare or in a list.
fn scalars(value: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|v| vec![v]),
    }
}

fn principals(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(_) => strings(value).ok_or_else(String::new),
        Value::Object(map) => {
            let mut out = Vec::new();
            for (kind, who) in map {
                out.extend(strings(who).ok_or_else(|| format!("Principal.{kind} is not a string or list"))?);
            }
            Ok(out)
        }
        _ => Err("Principal is neither \"*\" nor an object".to_owned()),
    }
}

fn conditions(value: Option<&Value>) -> Result<Vec<Condition>, String> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let Value::Object(ops) = value else { return Err("Condition is not an object".to_owned()) };
    let mut out = Vec::new();
    for (operator, keys) in ops {
        let Value::Object(keys) = keys else { return Err(format!("Condition.{operator} is not an object")) };
        for (key, values) in keys {
            let values = scalars(values)
                .ok_or_else(|| format!("Condition.{operator}.{key} is not a value or list of values"))?;
            out.push(Condition { operator: operator.clone(), key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
