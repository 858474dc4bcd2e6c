//! Status conditions (`Ready`, `Synced`) and the pure logic that updates them.
//!
//! `Ready` says whether the AWS side is usable; `Synced` says whether the last reconcile
//! succeeded (Crossplane's meaning). Transition times only move when the status flips.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the AWS side is in the desired state and usable.
pub const READY: &str = "Ready";
/// Condition type: the last reconcile attempt succeeded.
pub const SYNCED: &str = "Synced";

/// Status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// One observation of an aspect of the object's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Kind of condition: `Ready` or `Synced`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// One CamelCase word saying why the condition has this status.
    pub reason: String,
    /// What happened and, when something is wrong, what to do about it.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition to set, without its timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl DesiredCondition {
    pub fn new(
        type_: &'static str,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Merge `desired` into `existing`: a condition keeps its `lastTransitionTime` unless its
/// status flips; conditions of other types are kept; the result is sorted by type.
pub fn merge_conditions(
    existing: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: &str,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let previous = existing.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == d.status => p.last_transition_time.clone(),
            _ => now.to_string(),
        };
        out.push(Condition {
            type_: d.type_.to_string(),
            status: d.status,
            reason: d.reason.clone(),
            message: d.message.clone(),
            last_transition_time,
            observed_generation: generation,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Find a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the `Ready` condition is `True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    find(conditions, READY).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Schema for a list of conditions: a list-map keyed by `type`, as Kubernetes conventions ask.
pub fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: ConditionStatus, reason: &str) -> DesiredCondition {
        DesiredCondition::new(READY, status, reason, "")
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = merge_conditions(&[], &[ready(ConditionStatus::False, "A")], Some(1), "t1");
        assert_eq!(first[0].last_transition_time, "t1");
        let same = merge_conditions(&first, &[ready(ConditionStatus::False, "B")], Some(2), "t2");
        assert_eq!(same[0].last_transition_time, "t1");
        assert_eq!(same[0].reason, "B");
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = merge_conditions(&same, &[ready(ConditionStatus::True, "C")], Some(2), "t3");
        assert_eq!(flipped[0].last_transition_time, "t3");
    }

    #[test]
    fn other_types_are_kept_and_sorted() {
        let synced = DesiredCondition::new(SYNCED, ConditionStatus::True, "ReconcileSuccess", "");
        let both = merge_conditions(
            &[],
            &[synced, ready(ConditionStatus::True, "Ok")],
            None,
            "t",
        );
        assert_eq!(
            both.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Ready", "Synced"]
        );
        let only_ready =
            merge_conditions(&both, &[ready(ConditionStatus::False, "No")], None, "t2");
        assert_eq!(only_ready.len(), 2);
        assert!(!is_ready(&only_ready));
    }
}
