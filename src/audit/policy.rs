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

/// Condition keys that pin who is calling: a statement restricted by one of
/// these (with a positive operator) is not open to the world.
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
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
];

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
        let denied =
            self.statements.iter().any(|s| s.effect == Effect::Deny && s.covers(action) && s.denies_outsiders(keys));
        if denied {
            return Vec::new();
        }
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| s.effect == Effect::Allow && s.is_public() && s.covers(action) && !s.restricts(keys))
            .map(|(i, s)| s.name(i))
            .collect()
    }

    /// The `Allow` statements granting `ses:SendEmail` or `ses:SendRawEmail`
    /// with no restriction on `ses:FromAddress`, unless a `Deny` statement
    /// refuses the From addresses outside a list (`StringNotLike` /
    /// `StringNotEquals` on `ses:FromAddress`).
    pub fn any_from_address(&self) -> Vec<String> {
        let sends = |s: &Statement| ["ses:SendEmail", "ses:SendRawEmail"].iter().any(|a| s.covers(a));
        let denied = self.statements.iter().any(|s| {
            s.effect == Effect::Deny
                && sends(s)
                && s.conditions.iter().any(|c| c.key == "ses:fromaddress" && c.is_negated() && c.pins())
        });
        if denied {
            return Vec::new();
        }
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.effect == Effect::Allow
                    && sends(s)
                    && !s.conditions.iter().any(|c| c.key == "ses:fromaddress" && c.is_positive() && c.pins())
            })
            .map(|(i, s)| s.name(i))
            .collect()
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
        Ok(Statement {
            sid: map.get("Sid").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned),
            effect,
            principals: principals(principal)?,
            not_principal,
            actions: strings(action).ok_or("Action is neither a string nor a list of strings")?,
            not_action,
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

    /// Whether the statement applies to `action` (IAM wildcards, case-insensitive).
    pub fn covers(&self, action: &str) -> bool {
        let listed = self.actions.iter().any(|pattern| WildMatch::new_case_insensitive(pattern).matches(action));
        listed != self.not_action
    }

    /// Whether a positive condition on one of `keys` pins the caller.
    fn restricts(&self, keys: &[&str]) -> bool {
        self.conditions.iter().any(|c| keys.contains(&c.key.as_str()) && c.is_positive() && c.pins())
    }

    /// Whether this `Deny` refuses everyone outside a pinned caller set
    /// (`StringNotEquals aws:SourceAccount`, `NotIpAddress aws:SourceIp`, ...).
    fn denies_outsiders(&self, keys: &[&str]) -> bool {
        self.is_public() && self.conditions.iter().any(|c| keys.contains(&c.key.as_str()) && c.is_negated() && c.pins())
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

    /// `StringEquals`, `StringLike`, `ArnLike`, `IpAddress`, ... without `IfExists`.
    fn is_positive(&self) -> bool {
        !self.if_exists() && !self.is_negated() && !matches!(self.base(), "Null" | "Bool")
    }

    /// `StringNotEquals`, `StringNotLike`, `ArnNotLike`, `NotIpAddress`, ...
    fn is_negated(&self) -> bool {
        let base = self.base();
        base.contains("Not") && base != "Null"
    }

    /// Whether the values narrow anything: none is a bare wildcard, and an IP
    /// range is narrower than the whole address space.
    fn pins(&self) -> bool {
        !self.values.is_empty()
            && self.values.iter().all(|v| {
                let v = v.trim();
                !v.is_empty() && v.chars().any(|c| c != '*' && c != '?') && !is_everywhere(v)
            })
    }
}

/// `0.0.0.0/0`, `::/0` and other zero-length prefixes.
fn is_everywhere(value: &str) -> bool {
    value.split_once('/').is_some_and(|(addr, len)| len.trim() == "0" && addr.parse::<std::net::IpAddr>().is_ok())
}

fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
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
            let values = match values {
                Value::Bool(b) => vec![b.to_string()],
                Value::Number(n) => vec![n.to_string()],
                other => strings(other).ok_or_else(|| format!("Condition.{operator}.{key} is not a string or list"))?,
            };
            out.push(Condition { operator: operator.clone(), key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
